#if canImport(Glibc)
import Glibc
#endif

extension PrometheusExposition {
    /// Reads `input` as `old`, the text the arrays describe, with only sample values changed:
    /// every byte between one sample's value and the next must be the same in both, each new
    /// value must be a number, and then the arrays are what a full parse would make, so they
    /// are updated in place (values read, offsets moved by how much the values before them
    /// grew or shrank). False at the first difference, with the arrays half updated: the
    /// caller parses in full. A 2 MB scrape costs about a memcmp of its text this way, instead
    /// of a byte-by-byte parse of every name and label.
    mutating func reparseValues(comparedWith old: UnsafeBufferPointer<UInt8>) -> Bool {
        let input = input
        guard let new = input.baseAddress, let oldBase = old.baseAddress else { return false }
        let newCount = input.count
        // Family names, help texts and first label names lie between values too: each moves
        // by the shift of the stretch it lies in.
        var moving: [(position: Int32, index: Int, field: UInt8)] = []
        moving.reserveCapacity(families.count * 2 + labelNames.count)
        for (index, family) in families.enumerated() {
            moving.append((Int32(truncatingIfNeeded: family.name.lowerBound), index, 0))
            if let help = family.help { moving.append((Int32(truncatingIfNeeded: help.lowerBound), index, 1)) }
        }
        for (index, name) in labelNames.enumerated() { moving.append((Int32(truncatingIfNeeded: name.lowerBound), index, 2)) }
        moving.sort { $0.position < $1.position }
        // Each one's shift, settled as the walk passes it (applied once the texts matched).
        var shifts = [Int](repeating: 0, count: moving.count)
        var nextMoving = 0
        func settle(before position: Int, shift: Int) {
            while nextMoving < moving.count, Int(moving[nextMoving].position) < position {
                shifts[nextMoving] = shift
                nextMoving += 1
            }
        }

        var oldPosition = 0  // after the last value compared, in each text
        var newPosition = 0
        let matched = samples.withUnsafeMutableBufferPointer { samples in
            labels.withUnsafeMutableBufferPointer { labels in
                for index in samples.indices {
                    let oldValueStart = Int(samples[index].valueStart)
                    let stretch = oldValueStart - oldPosition
                    guard stretch >= 0, newPosition + stretch <= newCount,
                        bytesEqual(new + newPosition, oldBase + oldPosition, stretch)
                    else { return false }
                    let valueStart = newPosition + stretch
                    // The value's end as the full parse finds it: a space, a tab or the line's
                    // end (a CR ending the line is not part of it); the bytes after it are
                    // compared with the next stretch.
                    var valueEnd = valueStart
                    while valueEnd < newCount {
                        let byte = new[valueEnd]
                        if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { break }
                        valueEnd += 1
                    }
                    var end = valueStart
                    guard valueEnd > valueStart, let (value, _) = Self.number(input, &end, valueEnd), end == valueEnd else { return false }
                    let shift = valueStart - oldValueStart
                    oldPosition = Int(samples[index].valueEnd)
                    newPosition = valueEnd
                    settle(before: oldValueStart, shift: shift)
                    if shift != 0 {
                        let delta = Int32(truncatingIfNeeded: shift)
                        samples[index].nameStart += delta
                        samples[index].nameEnd += delta
                        let first = Int(samples[index].labelStart)
                        for label in first..<(first + Int(samples[index].labelCount)) {
                            labels[label].nameStart += delta
                            labels[label].nameEnd += delta
                            labels[label].valueStart += delta
                            labels[label].valueEnd += delta
                        }
                    }
                    samples[index].value = value
                    samples[index].valueStart = Int32(truncatingIfNeeded: valueStart)
                    samples[index].valueEnd = Int32(truncatingIfNeeded: valueEnd)
                }
                return true
            }
        }
        guard matched, old.count - oldPosition == newCount - newPosition,
            bytesEqual(new + newPosition, oldBase + oldPosition, newCount - newPosition)
        else { return false }
        settle(before: Int.max, shift: newPosition - oldPosition)
        for ((_, index, field), shift) in zip(moving, shifts) where shift != 0 {
            func moved(_ range: Range<Int>) -> Range<Int> { (range.lowerBound + shift)..<(range.upperBound + shift) }
            switch field {
            case 0: families[index].name = moved(families[index].name)
            case 1: families[index].help = families[index].help.map(moved)
            default: labelNames[index] = moved(labelNames[index])
            }
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension PrometheusExposition {
    /// Reads `input` as `old`, the text the arrays describe, with only sample values changed:
    /// every byte between one sample's value and the next must be the same in both, each new
    /// value must be a number, and then the arrays are what a full parse would make, so they
    /// are updated in place (values read, offsets moved by how much the values before them
    /// grew or shrank). False at a difference outside the values, with the arrays half
    /// updated: the caller parses in full. A 2 MB scrape costs about a memcmp of its text this way, instead
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

        var oldPosition = 0  // where the texts are known to be equal up to, in each
        var newPosition = 0
        let oldCount = old.count
        let matched = samples.withUnsafeMutableBufferPointer { samples in
            labels.withUnsafeMutableBufferPointer { labels in
                // Moves a sample whose bytes are unchanged by how much the values before it grew.
                func move(_ index: Int, by shift: Int) {
                    let delta = Int32(truncatingIfNeeded: shift)
                    samples[index].nameStart += delta
                    samples[index].nameEnd += delta
                    samples[index].valueStart += delta
                    samples[index].valueEnd += delta
                    let first = Int(samples[index].labelStart)
                    for label in first..<(first + Int(samples[index].labelCount)) {
                        labels[label].nameStart += delta
                        labels[label].nameEnd += delta
                        labels[label].valueStart += delta
                        labels[label].valueEnd += delta
                    }
                }
                var index = 0
                while index < samples.count {
                    // Up to the first difference the texts are the same: the samples that end
                    // (value and the byte after it) before it keep their values, and only move.
                    let difference =
                        oldPosition
                        + Self.firstDifference(oldBase + oldPosition, new + newPosition, min(oldCount - oldPosition, newCount - newPosition))
                    let shift = newPosition - oldPosition
                    while index < samples.count, Int(samples[index].valueEnd) < difference {
                        if shift != 0 { move(index, by: shift) }
                        index += 1
                    }
                    guard index < samples.count else {
                        (oldPosition, newPosition) = (difference, difference + shift)  // the tail starts there
                        break
                    }
                    // The difference lies in this sample's value or right after it, or
                    // elsewhere (another shape).
                    let oldValueStart = Int(samples[index].valueStart)
                    guard difference >= oldValueStart else { return false }
                    settle(before: oldValueStart, shift: shift)
                    let valueStart = oldValueStart + shift
                    // The value's end as the full parse finds it: a space, a tab or the line's
                    // end (a CR ending the line is not part of it); the bytes after it are
                    // compared next.
                    var valueEnd = valueStart
                    while valueEnd < newCount {
                        let byte = new[valueEnd]
                        if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { break }
                        valueEnd += 1
                    }
                    var end = valueStart
                    guard valueEnd > valueStart, let (value, _) = Self.number(input, &end, valueEnd), end == valueEnd else { return false }
                    oldPosition = Int(samples[index].valueEnd)
                    newPosition = valueEnd
                    if shift != 0 { move(index, by: shift) }
                    samples[index].value = value
                    samples[index].valueEnd = Int32(truncatingIfNeeded: valueEnd)
                    index += 1
                }
                return true
            }
        }
        // The moving ranges after the last value read lie in bytes compared only below.
        guard matched, oldCount - oldPosition == newCount - newPosition,
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

    /// How many bytes `a` and `b` have in common from the start, up to `count`: eight at a
    /// step (a memcmp per stretch between two values cost more in calls than in comparing).
    static func firstDifference(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Int {
        let a = UnsafeRawPointer(a), b = UnsafeRawPointer(b)
        var offset = 0
        while offset + 32 <= count {
            let x0 = a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let x1 = a.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let x2 = a.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            let x3 = a.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            if x0 | x1 | x2 | x3 != 0 { break }
            offset += 32
        }
        while offset + 8 <= count {
            let x = a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            if x != 0 { return offset + x.littleEndian.trailingZeroBitCount / 8 }
            offset += 8
        }
        while offset < count, a.load(fromByteOffset: offset, as: UInt8.self) == b.load(fromByteOffset: offset, as: UInt8.self) { offset += 1 }
        return offset
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Writes Prometheus text format 0.0.4.
struct PrometheusWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func write(_ text: String) { bytes.append(contentsOf: text.utf8) }
    mutating func write(_ slice: ArraySlice<UInt8>) { bytes.append(contentsOf: slice) }

    /// `source[range]` and a newline: whole lines of an input copied in one go.
    mutating func writeLines(_ source: [UInt8], _ range: Range<Int>) {
        source.withUnsafeBufferPointer { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
        bytes.append(0x0A)
    }

    /// `# HELP` (escaped as 0.0.4 wants: backslash and newline) and `# TYPE` lines.
    mutating func header(name: String, help: String, type: String) {
        write("# HELP \(name) ")
        for byte in help.utf8 {
            switch byte {
            case 0x5C: write("\\\\")
            case 0x0A: write("\\n")
            default: bytes.append(byte)
            }
        }
        write("\n# TYPE \(name) \(type)\n")
    }

    /// One sample with labels whose values are escaped here.
    mutating func sample(name: String, labels: [(String, String)], value: Double) {
        write(name)
        if !labels.isEmpty {
            bytes.append(0x7B)
            for (index, (key, labelValue)) in labels.enumerated() {
                if index > 0 { bytes.append(0x2C) }
                write(key)
                write("=\"")
                for byte in labelValue.utf8 {
                    switch byte {
                    case 0x5C: write("\\\\")
                    case 0x22: write("\\\"")
                    case 0x0A: write("\\n")
                    default: bytes.append(byte)
                    }
                }
                bytes.append(0x22)
            }
            bytes.append(0x7D)
        }
        bytes.append(0x20)
        write(Self.format(value))
        bytes.append(0x0A)
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

extension PrometheusExposition {
    /// The family a sample is exposed under in 0.0.4, and its type there: an OpenMetrics
    /// counter `foo` with sample `foo_total` becomes family `foo_total`; `_created` samples
    /// become gauges of their own; types 0.0.4 lacks become gauge or untyped.
    func wireFamily(of sample: Sample) -> (name: Range<Int>, type: String) {
        guard sample.family >= 0 else { return (sample.name, "untyped") }
        let family = families[Int(sample.family)]
        let isCreated = sample.name.count > 8 && bytes[(sample.name.upperBound - 8)..<sample.name.upperBound].elementsEqual(Self.createdSuffix)
        switch family.type {
        case .counter: return (sample.name, isCreated ? "gauge" : "counter")
        case .histogram, .summary:
            return isCreated ? (sample.name, "gauge") : (family.name, family.type.rawValue)
        case .gauge, .info, .stateset: return (sample.name, "gauge")
        case .untyped, .unknown, .gaugehistogram: return (sample.name, "untyped")
        }
    }

    private static let createdSuffix = Array("_created".utf8)

    /// Writes every sample of one or more expositions as valid 0.0.4 text: one HELP and TYPE
    /// per family (samples of a family split across the input, or across engines, are
    /// gathered), timestamps and exemplars dropped, `extraLabels` added to each sample.
    static func writeOriginals(_ sources: [(PrometheusExposition, [(String, String)])], into writer: inout PrometheusWriter) {
        struct Group {
            var type: String
            var help: (source: Int, range: Range<Int>)?
            var samples: [(source: Int, index: Int)]
        }
        var order: [String] = []
        var groups: [Group] = []
        var groupIndex: [String: Int] = [:]
        for (sourceIndex, (exposition, _)) in sources.enumerated() {
            let bytes = exposition.bytes
            var previous: Range<Int>? = nil
            var current = -1
            for (index, sample) in exposition.samples.enumerated() {
                let (name, type) = exposition.wireFamily(of: sample)
                // Samples of a family come in runs: look the group up only when the name changes.
                let sameAsPrevious = previous.map { previous in
                    previous.count == name.count && bytes.withUnsafeBufferPointer { buffer in
                        memcmp(buffer.baseAddress! + previous.lowerBound, buffer.baseAddress! + name.lowerBound, name.count) == 0
                    }
                } ?? false
                if !sameAsPrevious {
                    let key = exposition.text(name)
                    if let known = groupIndex[key] {
                        current = known
                    } else {
                        current = groups.count
                        groupIndex[key] = current
                        order.append(key)
                        let help = sample.family >= 0 ? exposition.families[Int(sample.family)].help.map { (sourceIndex, $0) } : nil
                        groups.append(Group(type: type, help: help, samples: []))
                    }
                }
                previous = name
                groups[current].samples.append((sourceIndex, index))
            }
        }
        let extras: [[UInt8]] = sources.map { _, labels in
            Array(labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",").utf8)
        }
        for (position, key) in order.enumerated() {
            let group = groups[position]
            writer.write("# HELP \(key) ")
            if let help = group.help { sources[help.source].0.writeHelp(help.range, into: &writer) }
            writer.write("\n# TYPE \(key) \(group.type)\n")
            // Canonical samples on consecutive input lines (nothing between one's value and the
            // next one's name but the newline) are copied as one run.
            var run: (source: Int, start: Int, end: Int)? = nil
            for (source, index) in group.samples {
                let exposition = sources[source].0
                let bytes = exposition.bytes
                let sample = exposition.samples[index]
                let extra = extras[source]
                if extra.isEmpty, sample.canonical {
                    if let current = run, current.source == source, sample.name.lowerBound == current.end + 1 {
                        run?.end = sample.valueText.upperBound
                        continue
                    }
                    if let current = run { writer.writeLines(sources[current.source].0.bytes, current.start..<current.end) }
                    run = (source, sample.name.lowerBound, sample.valueText.upperBound)
                    continue
                }
                if let current = run {
                    writer.writeLines(sources[current.source].0.bytes, current.start..<current.end)
                    run = nil
                }
                writer.write(bytes[sample.name])
                if sample.labelCount > 0 || !extra.isEmpty {
                    writer.bytes.append(0x7B)
                    var first = true
                    for label in exposition.labels(of: sample) {
                        if !first { writer.bytes.append(0x2C) }
                        first = false
                        writer.write(bytes[label.name])
                        writer.write("=\"")
                        writer.write(bytes[label.value])
                        writer.bytes.append(0x22)
                    }
                    if !extra.isEmpty {
                        if !first { writer.bytes.append(0x2C) }
                        writer.bytes.append(contentsOf: extra)
                    }
                    writer.bytes.append(0x7D)
                }
                writer.bytes.append(0x20)
                writer.write(bytes[sample.valueText])
                writer.bytes.append(0x0A)
            }
            if let current = run { writer.writeLines(sources[current.source].0.bytes, current.start..<current.end) }
        }
    }

    /// HELP text is already escaped; OpenMetrics also escapes `"`, which 0.0.4 does not.
    func writeHelp(_ range: Range<Int>, into writer: inout PrometheusWriter) {
        var index = range.lowerBound
        while index < range.upperBound {
            if bytes[index] == 0x5C, index + 1 < range.upperBound, bytes[index + 1] == 0x22 {
                writer.bytes.append(0x22)
                index += 2
            } else {
                writer.bytes.append(bytes[index])
                index += 1
            }
        }
    }

    /// A label value without its escapes.
    func unescapedValue(_ label: Label) -> String { Self.unescape(bytes[label.value]) }

    /// Removes the text format's escapes (`\\`, `\"`, `\n`) from a label value.
    static func unescape(_ raw: ArraySlice<UInt8>) -> String {
        guard raw.contains(0x5C) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        var index = raw.startIndex
        while index < raw.endIndex {
            if raw[index] == 0x5C, index + 1 < raw.endIndex {
                let next = raw[index + 1]
                out.append(next == 0x6E ? 0x0A : next)
                index += 2
            } else {
                out.append(raw[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

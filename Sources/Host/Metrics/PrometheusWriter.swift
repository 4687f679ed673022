#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Writes Prometheus text format 0.0.4 into a `ByteBuffer`: the buffer a `/metrics` response
/// sends, without a copy, and that the next render takes back when no response holds it any
/// more (a fresh multi-megabyte buffer costs more in page faults than writing it).
struct PrometheusWriter {
    private(set) var buffer: ByteBuffer

    init(capacity: Int = 0) { buffer = ByteBufferAllocator().buffer(capacity: capacity) }

    /// Writes over `previous` (taken, left nil) when nothing else holds it, else into new storage.
    init(reusing previous: inout ByteBuffer?, capacity: Int) {
        guard var reused = previous else {
            buffer = ByteBufferAllocator().buffer(capacity: capacity)
            return
        }
        previous = nil  // the last other reference, so that `clear` finds the storage unique
        reused.clear(minimumCapacity: capacity)
        buffer = reused
    }

    /// What was written, as an array (tests, and callers that want one).
    var bytes: [UInt8] { Array(buffer.readableBytesView) }

    mutating func append(_ byte: UInt8) { buffer.writeInteger(byte) }
    mutating func append(contentsOf bytes: [UInt8]) { buffer.writeBytes(bytes) }
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) { buffer.writeBytes(UnsafeRawBufferPointer(bytes)) }

    mutating func write(_ text: String) { buffer.writeString(text) }

    mutating func write(_ source: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        append(contentsOf: UnsafeBufferPointer(rebasing: source[range]))
    }

    /// `source[range]` and a newline: whole lines of an input copied in one go.
    mutating func writeLines(_ source: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        write(source, range)
        append(0x0A)
    }

    /// `# HELP` (escaped as 0.0.4 wants: backslash and newline) and `# TYPE` lines.
    mutating func header(name: String, help: String, type: String) {
        write("# HELP \(name) ")
        for byte in help.utf8 {
            switch byte {
            case 0x5C: write("\\\\")
            case 0x0A: write("\\n")
            default: append(byte)
            }
        }
        write("\n# TYPE \(name) \(type)\n")
    }

    /// One sample with labels whose values are escaped here.
    mutating func sample(name: String, labels: [(String, String)], value: Double) {
        write(name)
        if !labels.isEmpty {
            append(0x7B)
            for (index, (key, labelValue)) in labels.enumerated() {
                if index > 0 { append(0x2C) }
                write(key)
                write("=\"")
                for byte in labelValue.utf8 {
                    switch byte {
                    case 0x5C: write("\\\\")
                    case 0x22: write("\\\"")
                    case 0x0A: write("\\n")
                    default: append(byte)
                    }
                }
                append(0x22)
            }
            append(0x7D)
        }
        append(0x20)
        write(Self.format(value))
        append(0x0A)
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
        bytes.withUnsafeBufferPointer { Self.wireFamily(of: sample, families, $0) }
    }

    private static func wireFamily(of sample: Sample, _ families: [Family], _ bytes: UnsafeBufferPointer<UInt8>) -> (name: Range<Int>, type: String) {
        guard sample.family >= 0 else { return (sample.name, "untyped") }
        let family = families[Int(sample.family)]
        let isCreated =
            sample.nameEnd - sample.nameStart > 8
            && createdSuffix.withUnsafeBufferPointer { memcmp(bytes.baseAddress! + Int(sample.nameEnd) - 8, $0.baseAddress!, 8) == 0 }
        switch family.type {
        case .counter: return (sample.name, isCreated ? "gauge" : "counter")
        case .histogram, .summary:
            return isCreated ? (sample.name, "gauge") : (family.name, family.type.rawValue)
        case .gauge, .info, .stateset: return (sample.name, "gauge")
        case .untyped, .unknown, .gaugehistogram: return (sample.name, "untyped")
        }
    }

    private static let createdSuffix = Array("_created".utf8)

    /// Which families the originals of some expositions are written under, in what order,
    /// and which runs of samples each has: it depends only on the expositions' shapes, so a
    /// render of expositions shaped as the last render's reuses it.
    struct OriginalsLayout: Sendable {
        struct Group: Sendable {
            var name: String
            var type: String
            /// The source and family whose HELP text the group takes.
            var help: (source: Int, family: Int)?
            /// Consecutive samples of one source: a family's samples come in one run or a few.
            var runs: [(source: Int, samples: Range<Int>)]
        }
        var shapes: [UInt64]
        var groups: [Group]

        func fits(_ sources: [(PrometheusExposition, [(String, String)])]) -> Bool {
            shapes.count == sources.count && !shapes.contains(0) && zip(shapes, sources).allSatisfy { $0 == $1.0.shape }
        }
    }

    /// Writes every sample of one or more expositions as valid 0.0.4 text: one HELP and TYPE
    /// per family (samples of a family split across the input, or across engines, are
    /// gathered), timestamps and exemplars dropped, `extraLabels` added to each sample.
    static func writeOriginals(_ sources: [(PrometheusExposition, [(String, String)])], into writer: inout PrometheusWriter) {
        var layout: OriginalsLayout? = nil
        writeOriginals(sources, into: &writer, layout: &layout)
    }

    /// The same with `layout` when it was made for expositions of these shapes, else making it.
    static func writeOriginals(
        _ sources: [(PrometheusExposition, [(String, String)])], into writer: inout PrometheusWriter, layout: inout OriginalsLayout?
    ) {
        if layout?.fits(sources) != true { layout = Self.layout(of: sources) }
        let extras: [[UInt8]] = sources.map { _, labels in
            Array(labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",").utf8)
        }
        for group in layout!.groups {
            writer.write("# HELP \(group.name) ")
            if let (source, family) = group.help, let help = sources[source].0.families[family].help {
                sources[source].0.writeHelp(help, into: &writer)
            }
            writer.write("\n# TYPE \(group.name) \(group.type)\n")
            for run in group.runs {
                sources[run.source].0.write(samples: run.samples, extraLabels: extras[run.source], into: &writer)
            }
        }
    }

    private static func layout(of sources: [(PrometheusExposition, [(String, String)])]) -> OriginalsLayout {
        var groups: [OriginalsLayout.Group] = []
        var groupIndex: [String: Int] = [:]
        for (sourceIndex, (exposition, _)) in sources.enumerated() {
            exposition.bytes.withUnsafeBufferPointer { bytes in
                exposition.samples.withUnsafeBufferPointer { samples in
                    let base = bytes.baseAddress!
                    var previous: Range<Int>? = nil
                    var current = -1
                    var runStart = 0
                    for index in samples.indices {
                        let (name, type) = wireFamily(of: samples[index], exposition.families, bytes)
                        // Look the group up only when the name changes.
                        if let previous, previous.count == name.count,
                            memcmp(base + previous.lowerBound, base + name.lowerBound, name.count) == 0
                        {
                            continue
                        }
                        if current >= 0 { groups[current].runs.append((sourceIndex, runStart..<index)) }
                        previous = name
                        runStart = index
                        let key = exposition.text(name)
                        if let known = groupIndex[key] {
                            current = known
                        } else {
                            current = groups.count
                            groupIndex[key] = current
                            let family = Int(samples[index].family)
                            let help = family >= 0 && exposition.families[family].help != nil ? (sourceIndex, family) : nil
                            groups.append(.init(name: key, type: type, help: help, runs: []))
                        }
                    }
                    if current >= 0 { groups[current].runs.append((sourceIndex, runStart..<samples.count)) }
                }
            }
        }
        return OriginalsLayout(shapes: sources.map(\.0.shape), groups: groups)
    }

    /// Writes consecutive samples as 0.0.4 lines. Canonical samples on consecutive input lines
    /// (nothing between one's value and the next one's name but the newline) are copied as one
    /// block.
    private func write(samples range: Range<Int>, extraLabels extra: [UInt8], into writer: inout PrometheusWriter) {
        bytes.withUnsafeBufferPointer { bytes in
            samples.withUnsafeBufferPointer { samples in
                labels.withUnsafeBufferPointer { labels in
                    var block: (start: Int, end: Int)? = nil
                    for index in range {
                        let sample = samples[index]
                        if extra.isEmpty, sample.canonical {
                            if let current = block, Int(sample.nameStart) == current.end + 1 {
                                block!.end = Int(sample.valueEnd)
                                continue
                            }
                            if let current = block { writer.writeLines(bytes, current.start..<current.end) }
                            block = (Int(sample.nameStart), Int(sample.valueEnd))
                            continue
                        }
                        if let current = block {
                            writer.writeLines(bytes, current.start..<current.end)
                            block = nil
                        }
                        writer.write(bytes, sample.name)
                        if sample.labelCount > 0 || !extra.isEmpty {
                            writer.append(0x7B)
                            var first = true
                            for label in labels[Int(sample.labelStart)..<Int(sample.labelStart + sample.labelCount)] {
                                if !first { writer.append(0x2C) }
                                first = false
                                writer.write(bytes, label.name)
                                writer.write("=\"")
                                writer.write(bytes, label.value)
                                writer.append(0x22)
                            }
                            if !extra.isEmpty {
                                if !first { writer.append(0x2C) }
                                writer.append(contentsOf: extra)
                            }
                            writer.append(0x7D)
                        }
                        writer.append(0x20)
                        writer.write(bytes, sample.valueText)
                        writer.append(0x0A)
                    }
                    if let current = block { writer.writeLines(bytes, current.start..<current.end) }
                }
            }
        }
    }

    /// HELP text is already escaped; OpenMetrics also escapes `"`, which 0.0.4 does not.
    func writeHelp(_ range: Range<Int>, into writer: inout PrometheusWriter) {
        var index = range.lowerBound
        while index < range.upperBound {
            if bytes[index] == 0x5C, index + 1 < range.upperBound, bytes[index + 1] == 0x22 {
                writer.append(0x22)
                index += 2
            } else {
                writer.append(bytes[index])
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

#if canImport(Glibc)
import Glibc
#endif

/// The metric types of the text formats (0.0.4 and OpenMetrics).
public enum MetricType: String, Sendable, Equatable {
    case counter, gauge, histogram, summary, untyped
    // OpenMetrics-only types; rendered in 0.0.4 as gauges or untyped.
    case info, stateset, gaugehistogram, unknown

    init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard let text = String(validating: bytes, as: UTF8.self), let type = MetricType(rawValue: text) else { return nil }
        self = type
    }
}

/// A Prometheus text exposition parsed in place: samples and labels are byte ranges into
/// `bytes`, so a multi-megabyte scrape is parsed without building a string per sample.
///
/// Accepts text format 0.0.4 and OpenMetrics: `# HELP`, `# TYPE`, `# UNIT`, escaped label
/// values and help text, NaN and ±Inf, timestamps, exemplars, `_created` samples, `# EOF`.
/// A malformed line is skipped and counted, never fatal.
public struct PrometheusExposition: Sendable {
    /// One `# TYPE` / `# HELP` family.
    public struct Family: Sendable, Equatable {
        public var name: Range<Int>
        public var type: MetricType
        public var help: Range<Int>?
    }

    /// One sample line. Offsets are 32-bit (a scrape is at most 64 MiB): a 2 MB exposition has
    /// ~30,000 samples and ~90,000 labels, and halving their size halves the fresh pages each
    /// scrape touches.
    public struct Sample: Sendable, Equatable {
        var nameStart: Int32
        var nameEnd: Int32
        /// Index of the first label in `labels`, and how many.
        public var labelStart: Int32
        public var labelCount: Int32
        public var value: Double
        var valueStart: Int32
        var valueEnd: Int32
        /// Index into `families`, or -1 when no family declared it.
        public var family: Int32
        /// True when name, labels and value are written as 0.0.4 writes them (no spaces
        /// inside the label set), so the writer may copy them verbatim.
        public var canonical: Bool

        public var name: Range<Int> { Int(nameStart)..<Int(nameEnd) }
        /// The value as written (copied to the output unchanged).
        public var valueText: Range<Int> { Int(valueStart)..<Int(valueEnd) }
    }

    /// A label; `value` is the escaped text between the quotes.
    public struct Label: Sendable, Equatable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
        /// Index of the name in `labelNames`.
        var nameID: Int32

        public var name: Range<Int> { Int(nameStart)..<Int(nameEnd) }
        public var value: Range<Int> { Int(valueStart)..<Int(valueEnd) }
    }

    // Set here and by the reparse of a text shaped like the last (PrometheusReparse.swift).
    public internal(set) var bytes: [UInt8]
    public internal(set) var families: [Family] = []
    public internal(set) var samples: [Sample] = []
    public internal(set) var labels: [Label] = []
    /// Every distinct label name, where it first appears: labels refer to it by `nameID`, so
    /// the standardizer decides what to do per name, not per label.
    public internal(set) var labelNames: [Range<Int>] = []
    /// Label names to their IDs when the previous sample does not predict them.
    private var labelNameTable = ByteKeyTable(capacity: 32)
    /// Lines that were neither a sample, a known comment, nor blank.
    public internal(set) var malformedLines = 0
    /// Names the text's shape, everything in it but the sample values: two expositions with
    /// the same shape have the same families, samples and labels in the same order, so what
    /// was derived from one's names and labels holds for the other (the standardizer's plan).
    /// A new one per full parse; a reparse keeps its template's.
    public internal(set) var shape: UInt64 = 0
    /// Whether this text was read as the last one with new values (it kept the last shape).
    public private(set) var reparsed = false
    /// The text the last exposition was parsed from, no longer needed once this one has been
    /// compared with it: handed back by `takeStorage` for the next scrape to fill.
    private var retiredText: [UInt8] = []

    /// The bytes being parsed, as a raw buffer: set only while `init` parses (array
    /// subscripts in the per-byte loops cost bounds and uniqueness checks).
    nonisolated(unsafe) var input = UnsafeBufferPointer<UInt8>(start: nil, count: 0)

    /// The arrays of a parsed exposition, for a later parse to write over: a 2 MB scrape's
    /// ~30,000 samples and ~90,000 labels fill 3 MB, and faulting in fresh pages for them cost
    /// about as much as the parsing.
    ///
    /// With them, the text they describe: a next text of the same shape (an engine's series
    /// rarely change between scrapes, their values do) is compared with it and only its values
    /// are read, as Prometheus's own scrape cache skips the labels of series it saw in the
    /// last scrape.
    public struct Storage: Sendable {
        var families: [Family] = []
        var samples: [Sample] = []
        var labels: [Label] = []
        var labelNames: [Range<Int>] = []
        var text: [UInt8] = []
        var shape: UInt64 = 0
        var malformedLines = 0

        public init() {}
    }

    /// Empties the exposition and hands over its arrays with its text (uniquely referenced if
    /// this was the last copy), and the text before it, which nothing refers to any more, for
    /// a next scrape to write over.
    public mutating func takeStorage() -> (spareText: [UInt8], storage: Storage) {
        var taken: (spareText: [UInt8], storage: Storage) = ([], Storage())
        swap(&taken.spareText, &retiredText)
        swap(&taken.storage.text, &bytes)
        swap(&taken.storage.families, &families)
        swap(&taken.storage.samples, &samples)
        swap(&taken.storage.labels, &labels)
        swap(&taken.storage.labelNames, &labelNames)
        taken.storage.shape = shape
        taken.storage.malformedLines = malformedLines
        labelNameTable = ByteKeyTable(capacity: 32)
        malformedLines = 0
        shape = 0
        reparsed = false
        return taken
    }

    /// Parses `source` in place: the exposition keeps the caller's storage (no copy of a
    /// multi-megabyte text, whose pages would all be faulted in again).
    public init(bytes source: [UInt8]) {
        var none = Storage()
        self.init(bytes: source, reusing: &none)
    }

    /// Parses `source` into the arrays of `storage` (taken, left empty). When `source` differs
    /// from the text the arrays describe only in sample values, only the values are read.
    public init(bytes source: [UInt8], reusing storage: inout Storage) {
        bytes = source
        swap(&families, &storage.families)
        swap(&samples, &storage.samples)
        swap(&labels, &storage.labels)
        swap(&labelNames, &storage.labelNames)
        swap(&retiredText, &storage.text)
        let template = (shape: storage.shape, malformedLines: storage.malformedLines)
        storage.shape = 0
        storage.malformedLines = 0
        let matched =
            template.shape != 0 && !retiredText.isEmpty && source.count < Int(Int32.max)
            && source.withUnsafeBufferPointer { [old = retiredText] buffer in
                old.withUnsafeBufferPointer { old in
                    input = buffer
                    defer { input = UnsafeBufferPointer(start: nil, count: 0) }
                    return reparseValues(comparedWith: old)
                }
            }
        reparsed = matched
        if matched {
            shape = template.shape
            malformedLines = template.malformedLines
            return
        }
        labelNames.removeAll(keepingCapacity: true)
        families.removeAll(keepingCapacity: true)
        samples.removeAll(keepingCapacity: true)
        labels.removeAll(keepingCapacity: true)
        source.withUnsafeBufferPointer { buffer in
            input = buffer
            parse(count: Self.parsedLength(buffer))
        }
        input = UnsafeBufferPointer(start: nil, count: 0)
        shape = UInt64.random(in: 1...UInt64.max)
    }

    public func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    public func labels(of sample: Sample) -> ArraySlice<Label> {
        labels[Int(sample.labelStart)..<Int(sample.labelStart + sample.labelCount)]
    }

    // MARK: Parsing

    /// The bytes 32-bit offsets reach: all of them, or those up to the last line end below
    /// 2 GiB (the rest counted malformed; the runtime never reads a scrape that large).
    private static func parsedLength(_ buffer: UnsafeBufferPointer<UInt8>) -> Int {
        guard buffer.count >= Int(Int32.max) else { return buffer.count }
        var end = Int(Int32.max) - 1
        while end > 0, buffer[end - 1] != 0x0A { end -= 1 }
        return end
    }

    private mutating func parse(count: Int) {
        var lineStart = 0
        var currentFamily: Int32 = -1
        // A sample per ~60 bytes is typical; reserving avoids regrowing big arrays.
        samples.reserveCapacity(count / 64)
        labels.reserveCapacity(count / 24)
        while lineStart < count {
            let base = input.baseAddress!
            let lineEnd = memchr(base + lineStart, 0x0A, count - lineStart).map {
                base.distance(to: $0.assumingMemoryBound(to: UInt8.self))
            } ?? count
            var end = lineEnd
            if end > lineStart, input[end - 1] == 0x0D { end -= 1 }  // CRLF
            parseLine(lineStart..<end, currentFamily: &currentFamily)
            lineStart = lineEnd + 1
        }
        if count < input.count { malformedLines += 1 }
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
    private static func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F || byte == 0x3A
    }
    private static func isNameByte(_ byte: UInt8) -> Bool { isNameStart(byte) || (byte >= 0x30 && byte <= 0x39) }
    private static func isLabelStart(_ byte: UInt8) -> Bool { isNameStart(byte) && byte != 0x3A }
    private static func isLabelByte(_ byte: UInt8) -> Bool { isNameByte(byte) && byte != 0x3A }

    /// Advances `index` past bytes that are neither `"` nor a backslash, eight at a time (the
    /// SWAR zero-byte test), stopping at the first word that holds one; the byte loop after it
    /// finds which. Label values are scanned byte by byte otherwise.
    @inline(__always)
    private static func skipPlainBytes(_ base: UnsafePointer<UInt8>, _ index: inout Int, _ end: Int) {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= end {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            let quotes = word ^ (ones &* 0x22)
            let backslashes = word ^ (ones &* 0x5C)
            // A zero byte in either: (x - 0x01..) & ~x & 0x80.. is nonzero.
            let found = ((quotes &- ones) & ~quotes & highs) | ((backslashes &- ones) & ~backslashes & highs)
            if found != 0 { return }
            index += 8
        }
    }

    private func skipSpaces(_ index: inout Int, _ end: Int) {
        while index < end, Self.isSpace(input[index]) { index += 1 }
    }

    /// Reads a metric name at `index`; nil when there is none.
    private func name(at index: inout Int, _ end: Int, label: Bool = false) -> Range<Int>? {
        let start = index
        guard index < end, label ? Self.isLabelStart(input[index]) : Self.isNameStart(input[index]) else { return nil }
        index += 1
        while index < end, label ? Self.isLabelByte(input[index]) : Self.isNameByte(input[index]) { index += 1 }
        return start..<index
    }

    private mutating func parseLine(_ line: Range<Int>, currentFamily: inout Int32) {
        var index = line.lowerBound
        let end = line.upperBound
        skipSpaces(&index, end)
        if index == end { return }  // blank
        if input[index] == 0x23 {  // '#'
            parseComment(index + 1, end, currentFamily: &currentFamily)
            return
        }
        guard parseSample(&index, end, currentFamily: currentFamily) else {
            malformedLines += 1
            return
        }
    }

    private mutating func parseComment(_ start: Int, _ end: Int, currentFamily: inout Int32) {
        var index = start
        skipSpaces(&index, end)
        let keywordStart = index
        while index < end, !Self.isSpace(input[index]) { index += 1 }
        let keyword = input[keywordStart..<index]
        let isHelp = keyword.elementsEqual("HELP".utf8)
        let isType = keyword.elementsEqual("TYPE".utf8)
        if keyword.elementsEqual("EOF".utf8) || (!isHelp && !isType && !keyword.elementsEqual("UNIT".utf8)) {
            return  // # EOF, UNIT handled below, other comments ignored
        }
        skipSpaces(&index, end)
        guard let familyName = name(at: &index, end) else {
            malformedLines += 1
            return
        }
        if keyword.elementsEqual("UNIT".utf8) { return }
        let existing = families.lastIndex { family in
            family.name.count == familyName.count
                && memcmp(input.baseAddress! + family.name.lowerBound, input.baseAddress! + familyName.lowerBound, familyName.count) == 0
        }
        var familyIndex: Int
        if let existing {
            familyIndex = existing
        } else {
            families.append(Family(name: familyName, type: .untyped, help: nil))
            familyIndex = families.count - 1
        }
        currentFamily = Int32(familyIndex)
        skipSpaces(&index, end)
        if isHelp {
            families[familyIndex].help = index..<end
        } else if isType {
            var typeEnd = end
            while typeEnd > index, Self.isSpace(input[typeEnd - 1]) { typeEnd -= 1 }
            guard let type = MetricType(bytes: input[index..<typeEnd]) else {
                malformedLines += 1
                return
            }
            families[familyIndex].type = type
        }
    }

    /// The previous sample predicts the next: the same name, and the same label names in the
    /// same order, nearly always. A prediction is checked with one memcmp (and the byte after
    /// it), which is cheaper than validating the name byte by byte; it also gives the label's
    /// name ID and the sample's family without looking them up.
    private mutating func parseSample(_ index: inout Int, _ end: Int, currentFamily: Int32) -> Bool {
        let previous = samples.last
        let sampleName: Range<Int>
        var family: Int32 = -1
        if let previous, matches(previous.nameStart, previous.nameEnd, at: index, end, followedBy: { $0 == 0x7B || Self.isSpace($0) })
        {
            sampleName = index..<(index + Int(previous.nameEnd - previous.nameStart))
            index = sampleName.upperBound
            family = previous.family == currentFamily ? previous.family : (belongs(sampleName, to: currentFamily) ? currentFamily : -1)
        } else {
            guard let name = name(at: &index, end) else { return false }
            sampleName = name
            family = belongs(sampleName, to: currentFamily) ? currentFamily : -1
        }
        let labelStart = labels.count
        var canonical = true
        let afterName = index
        skipSpaces(&index, end)
        if index < end, input[index] == 0x7B {  // '{'
            if index != afterName { canonical = false }
            index += 1
            let predicted = previous.map { Int($0.labelStart)..<Int($0.labelStart + $0.labelCount) } ?? 0..<0
            guard parseLabels(&index, end, canonical: &canonical, predicted: predicted) else {
                labels.removeSubrange(labelStart...)
                return false
            }
        }
        skipSpaces(&index, end)
        guard let (value, valueText) = number(&index, end) else {
            labels.removeSubrange(labelStart...)
            return false
        }
        skipSpaces(&index, end)
        // Optional timestamp, then an optional OpenMetrics exemplar: both are dropped.
        if index < end, input[index] != 0x23 {
            guard number(&index, end) != nil else {
                labels.removeSubrange(labelStart...)
                return false
            }
            skipSpaces(&index, end)
        }
        if index < end, input[index] != 0x23 {
            labels.removeSubrange(labelStart...)
            return false
        }
        samples.append(
            Sample(
                nameStart: Int32(truncatingIfNeeded: sampleName.lowerBound), nameEnd: Int32(truncatingIfNeeded: sampleName.upperBound),
                labelStart: Int32(truncatingIfNeeded: labelStart), labelCount: Int32(truncatingIfNeeded: labels.count - labelStart),
                value: value, valueStart: Int32(truncatingIfNeeded: valueText.lowerBound),
                valueEnd: Int32(truncatingIfNeeded: valueText.upperBound), family: family, canonical: canonical))
        return true
    }

    /// Whether the bytes at `index` repeat `start..<stop` and the byte after them (or the line
    /// end) passes `after`.
    private func matches(_ start: Int32, _ stop: Int32, at index: Int, _ end: Int, followedBy after: (UInt8) -> Bool) -> Bool {
        let length = Int(stop - start)
        guard length > 0, index + length <= end else { return false }
        let base = input.baseAddress!
        guard bytesEqual(base + index, base + Int(start), length) else { return false }
        return index + length == end ? false : after(input[index + length])
    }

    /// `name="value",...}`; index ends after the closing brace. `predicted`: the previous
    /// sample's labels, whose names the labels here likely repeat in order.
    private mutating func parseLabels(_ index: inout Int, _ end: Int, canonical: inout Bool, predicted: Range<Int>) -> Bool {
        var position = predicted.lowerBound
        while true {
            let before = index
            skipSpaces(&index, end)
            if index != before { canonical = false }
            guard index < end else { return false }
            if input[index] == 0x7D {  // '}'
                index += 1
                return true
            }
            let labelName: Range<Int>
            let nameID: Int32
            if position < predicted.upperBound,
                case let guess = labels[position],
                matches(guess.nameStart, guess.nameEnd, at: index, end, followedBy: { $0 == 0x3D || Self.isSpace($0) })
            {
                labelName = index..<(index + Int(guess.nameEnd - guess.nameStart))
                index = labelName.upperBound
                nameID = guess.nameID
            } else {
                guard let name = name(at: &index, end, label: true) else { return false }
                labelName = name
                nameID = internLabelName(name)
            }
            position += 1
            let afterLabel = index
            skipSpaces(&index, end)
            guard index < end, input[index] == 0x3D else { return false }  // '='
            index += 1
            let afterEquals = index
            skipSpaces(&index, end)
            if index != afterEquals || afterEquals != afterLabel + 1 { canonical = false }
            guard index < end, input[index] == 0x22 else { return false }  // '"'
            index += 1
            let valueStart = index
            Self.skipPlainBytes(input.baseAddress!, &index, end)
            while index < end {
                let byte = input[index]
                if byte == 0x22 { break }
                if byte == 0x5C {  // backslash: \\, \", \n
                    guard index + 1 < end else { return false }
                    let escaped = input[index + 1]
                    guard escaped == 0x5C || escaped == 0x22 || escaped == 0x6E else { return false }
                    index += 1
                }
                index += 1
            }
            guard index < end else { return false }
            labels.append(
                Label(
                    nameStart: Int32(truncatingIfNeeded: labelName.lowerBound), nameEnd: Int32(truncatingIfNeeded: labelName.upperBound),
                    valueStart: Int32(truncatingIfNeeded: valueStart), valueEnd: Int32(truncatingIfNeeded: index), nameID: nameID))
            index += 1
            let afterValue = index
            skipSpaces(&index, end)
            if index != afterValue { canonical = false }
            guard index < end else { return false }
            if input[index] == 0x2C { index += 1 }  // ','
            else if input[index] != 0x7D { return false }
        }
    }

    /// The ID of a label name, numbered in first-seen order.
    private mutating func internLabelName(_ name: Range<Int>) -> Int32 {
        let (id, inserted) = labelNameTable.index(of: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(input)[name]))
        if inserted { labelNames.append(name) }
        return Int32(truncatingIfNeeded: id)
    }

    /// A float (Go syntax: NaN, +Inf, -Inf, decimals, exponents); index ends after it.
    private func number(_ index: inout Int, _ end: Int) -> (Double, Range<Int>)? { Self.number(input, &index, end) }

    static func number(_ input: UnsafeBufferPointer<UInt8>, _ index: inout Int, _ end: Int) -> (Double, Range<Int>)? {
        let start = index
        if let (value, stop) = Self.plainDecimal(input.baseAddress!, start, end) {
            index = stop
            return (value, start..<stop)
        }
        while index < end, !Self.isSpace(input[index]) { index += 1 }
        guard index > start else { return nil }
        for byte in input[start..<index] {
            let allowed =
                (byte >= 0x30 && byte <= 0x39) || byte == 0x2B || byte == 0x2D || byte == 0x2E || byte == 0x65 || byte == 0x45
                || byte == 0x49 || byte == 0x6E || byte == 0x66 || byte == 0x4E || byte == 0x61 || byte == 0x5F
            guard allowed else { return nil }  // digits, sign, '.', e/E, Inf, NaN, '_'
        }
        // strtod stops at the byte after the number, a space or line end inside the buffer;
        // a number that ends the buffer is copied out with a terminator first.
        guard index == input.count else {
            let base = UnsafeRawPointer(input.baseAddress! + start).assumingMemoryBound(to: CChar.self)
            var stop: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(base, &stop)
            let expectedEnd = UnsafeRawPointer(input.baseAddress!.advanced(by: index))
            guard let stop, UnsafeRawPointer(stop) == expectedEnd else { return nil }
            return (value, start..<index)
        }
        let length = index - start
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { scratch -> Double? in
            UnsafeMutableRawPointer(scratch.baseAddress!).copyMemory(from: input.baseAddress! + start, byteCount: length)
            scratch[length] = 0
            var stop: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(scratch.baseAddress!, &stop)
            return stop == scratch.baseAddress! + length ? value : nil
        }
        return value.map { ($0, start..<index) }
    }

    /// Powers of ten a double holds exactly.
    private static let exactPowersOfTen: [Double] = (0...22).map { power in (0..<power).reduce(1.0) { value, _ in value * 10 } }

    /// `[-]digits[.digits]` with at most 15 significant digits, the values engines write
    /// (`0.0`, `12`, `0.25`), read while scanning and without strtod: the digits are an exact
    /// integer and dividing it by an exact power of ten rounds once, so the result is
    /// strtod's (Clinger's fast path). Nil for anything else, which strtod reads.
    static func plainDecimal(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let base = text.baseAddress, let (value, stop) = plainDecimal(base, 0, text.count), stop == text.count else { return nil }
        return value
    }

    /// The same at `start`, ending at a space, a tab or `end`: the value and where it stops.
    static func plainDecimal(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (Double, Int)? {
        var index = start
        let negative = index < end && base[index] == 0x2D
        if negative { index += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var fraction = -1  // digits after the point, -1 without a point
        while index < end {
            let byte = base[index]
            if byte &- 0x30 < 10 {
                mantissa = mantissa &* 10 &+ UInt64(byte &- 0x30)
                digits += 1
                if fraction >= 0 { fraction += 1 }
            } else if byte == 0x2E, fraction < 0 {
                fraction = 0
            } else if byte == 0x20 || byte == 0x09 {
                break
            } else {
                return nil
            }
            index += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        var value = Double(mantissa)
        if fraction > 0 { value /= exactPowersOfTen[fraction] }
        return (negative ? -value : value, index)
    }

    /// Whether a sample name is the family's own or one of its suffixed series.
    private func belongs(_ sample: Range<Int>, to family: Int32) -> Bool {
        guard family >= 0 else { return false }
        let familyName = families[Int(family)].name
        guard sample.count >= familyName.count else { return false }
        do {
            let base = input.baseAddress!
            guard memcmp(base + sample.lowerBound, base + familyName.lowerBound, familyName.count) == 0 else { return false }
            let suffixLength = sample.count - familyName.count
            if suffixLength == 0 { return true }
            let suffixStart = base + sample.lowerBound + familyName.count
            for candidate in Self.suffixes where candidate.count == suffixLength {
                if candidate.withUnsafeBufferPointer({ memcmp(suffixStart, $0.baseAddress!, suffixLength) }) == 0 { return true }
            }
            return false
        }
    }

    static let suffixes: [[UInt8]] = ["_total", "_created", "_bucket", "_sum", "_count", "_info", "_gsum", "_gcount"].map { Array($0.utf8) }
}

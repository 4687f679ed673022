#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Host
import NIOCore
import Testing

/// The storage a `/metrics` render takes over from the last one, and the byte-keyed table of
/// the standardizer: reuse must never write over a body that something still holds.
@Suite struct MetricsReuseTests {
    private func address(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func aWriterTakesOverABodyNothingElseHolds() {
        var first = PrometheusWriter(capacity: 1 << 16)
        first.write("# first render\n")
        var previous: ByteBuffer? = first.buffer
        let firstAddress = address(previous!)
        first = PrometheusWriter()  // the writer's own copy goes

        var second = PrometheusWriter(reusing: &previous, capacity: 1 << 16)
        #expect(previous == nil)
        second.write("second\n")
        #expect(address(second.buffer) == firstAddress, "the last body's storage is written over")
        #expect(String(buffer: second.buffer) == "second\n")
    }

    @Test func aBodyStillBeingSentIsNeverWrittenOver() {
        var first = PrometheusWriter(capacity: 1 << 16)
        first.write("# sent to a slow scraper\n")
        let inFlight = first.buffer  // a response still writing it
        var previous: ByteBuffer? = first.buffer
        first = PrometheusWriter()

        var second = PrometheusWriter(reusing: &previous, capacity: 1 << 16)
        second.write("next render\n")
        #expect(address(second.buffer) != address(inFlight))
        #expect(String(buffer: inFlight) == "# sent to a slow scraper\n", "the body in flight is unchanged")
    }

    @Test func aParseWritesOverTheLastOnesArraysWithTheSameResult() {
        func text(_ value: Int, label: String = "model_name") -> [UInt8] {
            Array((0..<500).map { "vllm:num_requests_running{engine=\"\($0)\",\(label)=\"m\"} \($0 * value).0\n" }.joined().utf8)
        }
        func address(_ array: [UInt8]) -> UInt { array.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } }
        let first = text(1), second = text(13), third = text(2, label: "model")
        var last = PrometheusExposition(bytes: first)
        let samplesAddress = last.samples.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        var (spare, storage) = last.takeStorage()
        #expect(last.samples.isEmpty && last.bytes.isEmpty)
        #expect(spare.isEmpty, "no text came before the first")
        #expect(address(storage.text) == address(first), "the arrays keep the text they describe")

        // New values: read into the same arrays, as a full parse reads them.
        var reused = PrometheusExposition(bytes: second, reusing: &storage)
        #expect(storage.samples.isEmpty && storage.labels.isEmpty && storage.text.isEmpty, "the arrays and text were taken")
        #expect(reused.samples.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == samplesAddress)
        let fresh = PrometheusExposition(bytes: second)
        #expect(reused.samples == fresh.samples && reused.labels == fresh.labels && reused.families == fresh.families)
        (spare, storage) = reused.takeStorage()
        #expect(address(spare) == address(first), "the text before is handed back for a next scrape to fill")

        // Another shape: parsed in full, into the same arrays again.
        let other = PrometheusExposition(bytes: third, reusing: &storage)
        #expect(other.samples.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == samplesAddress)
        let freshOther = PrometheusExposition(bytes: third)
        #expect(other.samples == freshOther.samples && other.labels == freshOther.labels && other.labelNames == freshOther.labelNames)
    }

    @Test func handoffGivesItsValueOnce() {
        let handoff = Handoff([UInt8](repeating: 7, count: 100))
        let taken = handoff.take()
        #expect(taken?.count == 100)
        #expect(handoff.take() == nil)
    }

    @Test func byteKeyTableNumbersKeysInFirstSeenOrder() {
        var table = ByteKeyTable(capacity: 2)  // grows many times below
        func index(_ text: String) -> (Int, Bool) {
            Array(text.utf8).withUnsafeBytes { table.index(of: $0) }
        }
        #expect(index("") == (0, true))
        let keys = (0..<5000).map { "le=\"\($0)\"\u{0}\u{1}model=\"m\($0 % 7)\"" }
        for (number, key) in keys.enumerated() { #expect(index(key) == (number + 1, true)) }
        for (number, key) in keys.enumerated().reversed() { #expect(index(key) == (number + 1, false)) }
        #expect(index("") == (0, false))
        // Prefixes and keys that differ past the first eight bytes are keys of their own.
        #expect(index("le=\"1\"").1)
        #expect(index("le=\"1\"\u{0}").1)
        #expect(table.count == 5003)
        // Equal hashes are confirmed by the bytes.
        let a = Array("abcdefgh".utf8), b = Array("abcdefgi".utf8)
        let seed: UInt64 = 42
        #expect(a.withUnsafeBytes { ByteKeyTable.hash($0, seed: seed) } != b.withUnsafeBytes { ByteKeyTable.hash($0, seed: seed) })
    }

    /// Label values are scanned eight bytes at a time: an escape or the closing quote at any
    /// offset of a word, and values ending near the end of the text, still parse exactly.
    @Test func escapesAtEveryOffsetOfALongValue() {
        for position in 0..<24 {
            var value = Array(repeating: "v", count: 24)
            value[position] = "\\\""
            let raw = value.joined()
            for tail in ["", " 1", " 1\n"] {
                let line = "m{a=\"\(raw)\",b=\"0123456789abcdef\"}" + (tail.isEmpty ? " 2" : tail)
                let exposition = PrometheusExposition(bytes: Array(line.utf8))
                #expect(exposition.malformedLines == 0, "\(line)")
                let labels = Array(exposition.labels(of: exposition.samples[0]))
                #expect(exposition.unescapedValue(labels[0]) == raw.replacingOccurrences(of: "\\\"", with: "\""))
                #expect(exposition.unescapedValue(labels[1]) == "0123456789abcdef")
            }
        }
        // A value whose closing quote is missing is malformed however long it is.
        #expect(PrometheusExposition(bytes: Array("m{a=\"\(String(repeating: "x", count: 40)) 1\n".utf8)).malformedLines == 1)
    }

    @Test func plainDecimalsReadAsStrtodReadsThem() {
        for text in ["0", "0.0", "-0.0", "12", "1.5", "0.25", "123456789012345", "3.14159", "99.999", "1.", "0.1", "-7.125"] {
            let bytes = Array(text.utf8)
            let fast = bytes.withUnsafeBufferPointer { PrometheusExposition.plainDecimal($0) }
            #expect(fast != nil, "\(text)")
            let slow = text.withCString { strtod($0, nil) }
            #expect(fast.map { $0.bitPattern } == slow.bitPattern, "\(text)")
        }
        // Left to strtod: exponents, specials, too many digits, no digits, stray bytes.
        for text in ["1e5", "NaN", "+Inf", "-Inf", "+1", "1234567890123456", ".", "-", "1.2.3", "1_000", ""] {
            #expect(Array(text.utf8).withUnsafeBufferPointer { PrometheusExposition.plainDecimal($0) } == nil, "\(text)")
        }
    }
}

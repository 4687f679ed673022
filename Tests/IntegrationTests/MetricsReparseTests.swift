import Foundation
import TestSupport
import Testing

@testable import Host

/// A scrape read as the last one with new values (`PrometheusExposition.reparseValues`) and
/// standardized with the last one's plan must give exactly what a full parse and a fresh
/// standardization give, and anything but new values must send it down the full path.
@Suite struct MetricsReparseTests {
    static let fixtures = ["vllm-0.33", "sglang-0.5.23"]

    private func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/metrics/\(name).prom")))
    }

    private func rules(_ name: String) throws -> [MetricRule] {
        let path = name.hasPrefix("vllm") ? TestPaths.vllmDriver : TestPaths.sglangDriver
        return try DriverLoader.load(path: path).get().metricRules
    }

    /// `text` parsed into the arrays left by a parse of `earlier`, as the next scrape is.
    private func parse(_ text: [UInt8], after earlier: [UInt8]) -> (template: UInt64, exposition: PrometheusExposition) {
        var first = PrometheusExposition(bytes: earlier)
        let template = first.shape
        var storage = first.takeStorage().storage
        return (template, PrometheusExposition(bytes: text, reusing: &storage))
    }

    /// Whether two parses made the same arrays (values compared by bits: NaN is NaN).
    private func same(_ a: PrometheusExposition, _ b: PrometheusExposition) -> Bool {
        func valueless(_ samples: [PrometheusExposition.Sample]) -> [PrometheusExposition.Sample] {
            samples.map { sample in
                var sample = sample
                sample.value = 0
                return sample
            }
        }
        return a.bytes == b.bytes && a.families == b.families && a.labels == b.labels && a.labelNames == b.labelNames
            && a.malformedLines == b.malformedLines && valueless(a.samples) == valueless(b.samples)
            && a.samples.map(\.value.bitPattern) == b.samples.map(\.value.bitPattern)
    }

    /// Every sample value rewritten in one of the forms engines and the format allow, so the
    /// values' lengths change and every later offset moves.
    private func withNewValues(_ text: [UInt8], _ generator: inout SplitMix64) -> [UInt8] {
        func form() -> String {
            switch generator.next() % 9 {
            case 0: return "\(generator.next() % 1_000_000)"
            case 1: return "\(Double(generator.next() % 100_000) / 64)"
            case 2: return "\(generator.next() % 10).0"
            case 3: return "1.5e\(Int(generator.next() % 19) - 9)"
            case 4: return "NaN"
            case 5: return "+Inf"
            case 6: return "-Inf"
            case 7: return "-0.0"
            default: return "\(1 + generator.next() % 9)23456789012345678"
            }
        }
        let parsed = PrometheusExposition(bytes: text)
        var out: [UInt8] = []
        var position = 0
        for sample in parsed.samples {
            out += text[position..<sample.valueText.lowerBound]
            out += Array(form().utf8)
            position = sample.valueText.upperBound
        }
        return out + text[position...]
    }

    /// The standard set and the originals, as `/metrics` writes them (with the last render's
    /// layout of the originals, when given one).
    private func written(
        _ exposition: PrometheusExposition, _ families: [MetricStandardizer.Family], layout: inout PrometheusExposition.OriginalsLayout?
    ) -> [UInt8] {
        var writer = PrometheusWriter()
        MetricStandardizer.write([families], into: &writer)
        PrometheusExposition.writeOriginals([(exposition, [("engine_name", "a")]), (exposition, [])], into: &writer, layout: &layout)
        return writer.bytes
    }

    private func written(_ exposition: PrometheusExposition, _ families: [MetricStandardizer.Family]) -> [UInt8] {
        var fresh: PrometheusExposition.OriginalsLayout? = nil
        return written(exposition, families, layout: &fresh)
    }

    @Test(arguments: fixtures)
    func newValuesAreReadAndFoldedAsInFull(name: String) throws {
        let rules = try rules(name)
        let standardizer = MetricStandardizer(rules: rules, constantLabels: [("engine", "x")])
        var generator = SplitMix64(seed: 7)
        var storage = PrometheusExposition.Storage()
        var plan: StandardizerPlan? = nil
        var shape: UInt64 = 0
        var text = try fixture(name)
        var outputs: [[UInt8]] = []
        var layout: PrometheusExposition.OriginalsLayout? = nil
        for round in 0..<12 {
            var exposition = PrometheusExposition(bytes: text, reusing: &storage)
            let standard = standardizer.standardize(exposition, plan: &plan)
            if round == 0 {
                shape = exposition.shape
            } else {
                #expect(exposition.shape == shape, "round \(round) was parsed in full")
            }
            #expect(plan?.fits(exposition, standardizer) == true)
            let full = PrometheusExposition(bytes: text)
            #expect(same(exposition, full), "round \(round): the arrays differ from a full parse")
            var standardOnly = PrometheusWriter()
            MetricStandardizer.write([standard], into: &standardOnly)
            outputs.append(standardOnly.bytes)
            let expected = written(full, standardizer.standardize(full))
            let got = written(exposition, standard, layout: &layout)
            #expect(layout?.fits([(exposition, []), (exposition, [])]) == true)
            #expect(got == expected, "round \(round): the output differs from a full parse's")
            if got != expected { break }
            storage = exposition.takeStorage().storage
            text = withNewValues(text, &generator)
        }
        // The standard series followed the values.
        #expect(Set(outputs).count == outputs.count)
    }

    /// One edit each, of what may differ from one scrape to the next only in values or not.
    static let template = """
        # HELP a_total Requests.\n\"Counted\"
        # TYPE a_total counter
        a_total{model="m",reason="stop"} 1
        a_total{model="m",reason="length"} 2 1700000000000
        # TYPE b gauge
        b{model="m"} 3.5 # {trace_id="x"} 1
        b 4
        # a comment
        c_untyped 5
        not a sample
        d{x="1"} 6
        """

    static let valueEdits: [(String, String)] = [
        ("stop\"} 1\n", "stop\"} 123456\n"), ("} 3.5 ", "} NaN "), ("b 4", "b -Inf"), ("c_untyped 5", "c_untyped 1e-7"), ("} 6", "} 60000.25"),
        ("} 2 ", "} +Inf "),
    ]

    static let shapeEdits: [(String, String)] = [
        ("reason=\"stop\"", "reason=\"stoq\""), ("reason=\"stop\"", "reason=\"stop\",x=\"y\""), ("# HELP a_total Requests.", "# HELP a_total Request."),
        ("# TYPE b gauge", "# TYPE b counter"), ("stop\"} 1\n", "stop\"} abc\n"), ("stop\"} 1\n", "stop\"} 1 5\n"), ("stop\"} 1\n", "stop\"} \n"),
        ("stop\"} 1\n", "stop\"} 1#\n"),
        ("1700000000000", "1700000000001"), ("trace_id=\"x\"", "trace_id=\"y\""), ("b 4\n", "b 4\nb2 5\n"), ("b 4\n", ""), ("# a comment\n", ""),
        ("not a sample", "not_a sample"), ("} 6", "} 6\n"), ("stop\"} 1\n", "stop\"} 1\r\n"), ("d{x=\"1\"} 6", "d{x=\"1\"} 6 "), ("b 4", "b  4"),
        ("stop\"} 1\n", "stop\"}\t1\n"), ("stop\"} 1\n", "stop\"} 1\t\n"), ("} 6", "} 6\u{0}"), ("a_total{", "a_total {"),
    ]

    @Test func newValuesAreReparsedAndAnyOtherEditParsesInFull() {
        let template = Array(Self.template.utf8)
        func check(_ edit: (String, String), reparsed expected: Bool) {
            let edited = Self.template.replacingOccurrences(of: edit.0, with: edit.1)
            #expect(edited != Self.template, "\(edit) applies")
            let (shape, exposition) = parse(Array(edited.utf8), after: template)
            #expect((exposition.shape == shape) == expected, "\(edit): \(expected ? "parsed in full" : "reparsed")")
            #expect(same(exposition, PrometheusExposition(bytes: Array(edited.utf8))), "\(edit)")
        }
        for edit in Self.valueEdits { check(edit, reparsed: true) }
        for edit in Self.shapeEdits { check(edit, reparsed: false) }
        // All values at once, and a CRLF text read after itself with new values.
        var all = Self.template
        for (from, to) in Self.valueEdits { all = all.replacingOccurrences(of: from, with: to) }
        let allAtOnce = parse(Array(all.utf8), after: template)
        #expect(allAtOnce.exposition.shape == allAtOnce.template)
        let crlf = Self.template.replacingOccurrences(of: "\n", with: "\r\n")
        let (shape, exposition) = parse(Array(crlf.replacingOccurrences(of: "stop\"} 1\r", with: "stop\"} 17\r").utf8), after: Array(crlf.utf8))
        #expect(exposition.shape == shape)
        #expect(exposition.samples[0].value == 17)
    }

    /// Random edits anywhere in a real exposition: whichever path a parse takes, it makes what
    /// a full parse makes.
    @Test func randomEditsParseAsInFull() throws {
        var generator = SplitMix64(seed: 11)
        let base = try fixture("vllm-0.33")
        var reparsed = 0
        var full = 0
        for round in 0..<120 {
            var input = round % 2 == 0 ? withNewValues(base, &generator) : base
            if round % 4 != 0 {
                for _ in 0..<(1 + Int(generator.next() % 3)) {
                    let position = Int(generator.next() % UInt64(input.count))
                    switch generator.next() % 3 {
                    case 0: input[position] = Array(" 0123456789.e+-\n\"{}=,#\tx".utf8).randomElement(using: &generator)!
                    case 1: input.remove(at: position)
                    default: input.insert(Array(" 1.\n".utf8).randomElement(using: &generator)!, at: position)
                    }
                }
            }
            let (shape, exposition) = parse(input, after: base)
            if exposition.shape == shape { reparsed += 1 } else { full += 1 }
            #expect(same(exposition, PrometheusExposition(bytes: input)), "round \(round)")
        }
        #expect(reparsed >= 30 && full >= 60, "both paths taken: \(reparsed) reparsed, \(full) in full")
    }

    @Test func theFirstDifferenceIsFoundAtEveryOffset() {
        let a = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        for count in [0, 1, 7, 8, 9, 31, 32, 33, 64, 100] {
            #expect(a.withUnsafeBufferPointer { PrometheusExposition.firstDifference($0.baseAddress!, $0.baseAddress!, count) } == count)
            for position in 0..<count {
                var b = a
                b[position] ^= 0x40
                let found = a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { PrometheusExposition.firstDifference(a.baseAddress!, $0.baseAddress!, count) }
                }
                #expect(found == position, "count \(count), difference at \(position)")
            }
        }
    }

    @Test func aPlanIsUsedOnlyForItsShapeAndItsStandardizer() throws {
        let text = try fixture("vllm-0.33")
        let vllm = MetricStandardizer(rules: try rules("vllm-0.33"), constantLabels: [("engine", "x")])
        let other = MetricStandardizer(rules: try rules("vllm-0.33"), constantLabels: [("engine", "y")])
        let exposition = PrometheusExposition(bytes: text)
        var plan: StandardizerPlan? = nil
        _ = vllm.standardize(exposition, plan: &plan)
        let made = try #require(plan)
        #expect(made.fits(exposition, vllm) && !made.fits(exposition, other))
        // Another standardizer makes its own plan, and its output is its own.
        let theirs = other.standardize(exposition, plan: &plan)
        #expect(plan?.fits(exposition, other) == true)
        #expect(written(exposition, theirs) == written(exposition, other.standardize(exposition)))
        // An exposition of another shape (a series more) is standardized afresh.
        let grown = PrometheusExposition(bytes: text + Array("vllm:num_requests_running{engine=\"99\",model_name=\"m\"} 5\n".utf8))
        #expect(!plan!.fits(grown, other))
        let standard = other.standardize(grown, plan: &plan)
        #expect(written(grown, standard) == written(grown, other.standardize(grown)))
        #expect(plan?.fits(grown, other) == true)
        // So is the layout of the originals.
        var layout: PrometheusExposition.OriginalsLayout? = nil
        let first = written(exposition, theirs, layout: &layout)
        #expect(first == written(exposition, theirs))
        #expect(layout?.fits([(exposition, []), (exposition, [])]) == true && layout?.fits([(grown, []), (grown, [])]) == false)
        #expect(written(grown, standard, layout: &layout) == written(grown, standard))
        #expect(layout?.fits([(grown, []), (grown, [])]) == true)
    }

    /// The real binary scraping nginx: new values are read as the last scrape with new values
    /// (counted), and its body is what a runtime that never saw the earlier text serves.
    @Test func theRuntimeServesNewValuesAsAFreshRuntimeDoes() async throws {
        let nginx = try await NginxServer.start()
        var generator = SplitMix64(seed: 3)
        let first = try fixture("vllm-0.33")
        let second = withNewValues(first, &generator)
        let grown = second + Array("vllm:num_requests_running{engine=\"99\",model_name=\"m\"} 5\n".utf8)
        try nginx.put("/metrics", first)
        func start() async throws -> ServerProcess {
            try await ServerProcess.runtime(
                for: nil, flavor: "vllm", endpoint: nginx.baseURL, environment: ["ENGINE_RUNTIME_METRICS_CACHE_MS": "0"])
        }
        func reparses(_ body: String) -> String? {
            body.split(separator: "\n").first { $0.hasPrefix("engine_runtime_scrapes_reparsed_total{") }.map { String($0.split(separator: " ").last!) }
        }
        let runtime = try await start()
        let before = try await runtime.get("/metrics").text
        #expect(reparses(before) == "0")
        for (text, expected) in [(second, "1"), (grown, "1"), (first, "1"), (first, "2")] {
            try nginx.put("/metrics", text)
            let body = try await runtime.get("/metrics").text
            #expect(reparses(body) == expected)
            let fresh = try await start()
            let freshBody = try await fresh.get("/metrics").text
            #expect(MetricsGoldenTests.stable(body) == MetricsGoldenTests.stable(freshBody))
        }
        // A failed scrape leaves what the last good one kept: the text that comes back after
        // it is still read as the last one with new values.
        try FileManager.default.removeItem(atPath: nginx.root + "/metrics")
        #expect(reparses(try await runtime.get("/metrics").text) == "2")
        try nginx.put("/metrics", second)
        #expect(reparses(try await runtime.get("/metrics").text) == "3")
    }
}

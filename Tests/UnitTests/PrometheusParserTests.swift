import Foundation
@testable import Host
import TestSupport
import Testing

/// The byte-level exposition parser and the 0.0.4 writer.
@Suite struct PrometheusParserTests {
    private func parse(_ text: String) -> PrometheusExposition { PrometheusExposition(bytes: Array(text.utf8)) }

    private func originals(_ text: String) -> String {
        var writer = PrometheusWriter()
        PrometheusExposition.writeOriginals([(parse(text), [])], into: &writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func everyConstructOfBothFormats() {
        let text = """
            # HELP http_requests_total The total number of HTTP requests, with a \\\\ and a\\nnew line.
            # TYPE http_requests_total counter
            http_requests_total{method="post",code="200"} 1027 1395066363000
            http_requests_total{method="post",code="400"}    3 1395066363000
            # A plain comment
            # TYPE msdos_file_access_time_seconds untyped
            msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
            metric_without_timestamp_and_labels 12.47
            # TYPE a_gauge gauge
            a_gauge{x="1"} NaN
            a_gauge{x="2"} +Inf
            a_gauge{x="3"} -Inf
            # TYPE rpc_duration_seconds summary
            rpc_duration_seconds{quantile="0.5"} 4773
            rpc_duration_seconds_sum 1.7560473e+07
            rpc_duration_seconds_count 2693
            # TYPE om_counter counter
            # UNIT om_counter seconds
            # HELP om_counter An OpenMetrics counter with \\"quotes\\".
            om_counter_total{a="b"} 17.0 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.789
            om_counter_created{a="b"} 1520430000.123
            # TYPE latency histogram
            latency_bucket{le="0.1"} 1 # {trace_id="x"} 0.05
            latency_bucket{le="+Inf"} 2
            latency_sum 0.3
            latency_count 2
            # EOF
            """
        let exposition = parse(text)
        #expect(exposition.malformedLines == 0)
        #expect(exposition.samples.count == 16)
        let values = exposition.samples.map(\.value)
        #expect(values[0] == 1027)
        #expect(values[4].isNaN)
        #expect(values[5] == .infinity && values[6] == -.infinity)
        let path = exposition.labels(of: exposition.samples[2]).first!
        #expect(exposition.unescapedValue(path) == "C:\\DIR\\FILE.TXT")
        let error = exposition.labels(of: exposition.samples[2]).last!
        #expect(exposition.unescapedValue(error) == "Cannot find file:\n\"FILE.TXT\"")

        let output = originals(text)
        // Timestamps and exemplars dropped; OpenMetrics counter and _created split into 0.0.4 families.
        #expect(output.contains("http_requests_total{method=\"post\",code=\"200\"} 1027\n"))
        #expect(output.contains("# TYPE om_counter_total counter\nom_counter_total{a=\"b\"} 17.0\n"))
        #expect(output.contains("# TYPE om_counter_created gauge\nom_counter_created{a=\"b\"} 1520430000.123\n"))
        #expect(output.contains("# HELP om_counter_total An OpenMetrics counter with \"quotes\".\n"))
        #expect(output.contains("# TYPE latency histogram\nlatency_bucket{le=\"0.1\"} 1\n"))
        #expect(output.contains("# TYPE rpc_duration_seconds summary\n"))
        #expect(!output.contains("trace_id"))
        #expect(!output.contains("# EOF"))
        #expect(!output.contains("1395066363000"))
    }

    @Test func malformedLinesAreSkippedAndCounted() {
        let text = """
            good 1
            bad{ 1
            bad{a="unterminated} 1
            bad{a=unquoted} 1
            1bad 1
            nolabelvalue{a="1"}
            badvalue abc
            bad{a="1"} 1 2 3
            bad{a="\\x"} 1
            # TYPE weird nonsense
            also_good{le="1"} 2
            """
        let exposition = parse(text)
        #expect(exposition.samples.count == 2)
        #expect(exposition.malformedLines == 9)
    }

    @Test func spacesInsideLabelSetsAreNormalized() {
        let output = originals("# TYPE g gauge\ng {a = \"1\" , b=\"2\" } 3\ng{a=\"x\"} 4\n")
        #expect(output == "# HELP g \n# TYPE g gauge\ng{a=\"1\",b=\"2\"} 3\ng{a=\"x\"} 4\n")
    }

    @Test func familiesSplitAcrossTheInputAreGathered() {
        let output = originals("# TYPE g gauge\ng{a=\"1\"} 1\n# TYPE h gauge\nh 2\ng{a=\"2\"} 3\n")
        #expect(output == "# HELP g \n# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"2\"} 3\n# HELP h \n# TYPE h gauge\nh 2\n")
    }

    /// Random bytes and mutations of a real exposition never crash or hang the parser, and the
    /// writer's output of whatever was accepted parses again without a malformed line.
    @Test func randomAndMutatedInput() {
        var generator = SplitMix64(seed: 42)
        let seeds = [EngineExpositions.vllmShaped, EngineExpositions.sglangShaped].map { Array($0.utf8) }
        let rounds = Int(ProcessInfo.processInfo.environment["ENGINE_RUNTIME_FUZZ_ROUNDS"] ?? "") ?? 3000
        for round in 0..<rounds {
            var input: [UInt8]
            if round % 4 == 0 {
                input = (0..<Int(generator.next() % 400)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            } else {
                input = seeds[round % 2]
                for _ in 0..<(1 + Int(generator.next() % 8)) {
                    let position = Int(generator.next() % UInt64(input.count))
                    switch generator.next() % 4 {
                    case 0: input[position] = UInt8(truncatingIfNeeded: generator.next())
                    case 1: input.remove(at: position)
                    case 2:
                        let specials = Array("{}\"\\ #=,\n".utf8)
                        input.insert(specials[Int(generator.next() % UInt64(specials.count))], at: position)
                    default: input.removeSubrange(position..<min(input.count, position + Int(generator.next() % 64)))
                    }
                    if input.isEmpty { break }
                }
            }
            let exposition = PrometheusExposition(bytes: input)
            var writer = PrometheusWriter()
            PrometheusExposition.writeOriginals([(exposition, [])], into: &writer)
            let again = PrometheusExposition(bytes: writer.bytes)
            #expect(again.malformedLines == 0, "round \(round)")
            #expect(again.samples.count == exposition.samples.count, "round \(round)")
            if again.malformedLines != 0 { break }
        }
    }
}

import Crypto
import Foundation
import TestSupport
import Testing

@testable import Host

/// `/metrics` of the real binary is byte for byte what it was, in every mode, for recorded
/// engine expositions (Tests/Fixtures/metrics, taken from the simulator's vLLM 0.33 and SGLang
/// 0.5.23 profiles with many data-parallel ranks), served by nginx as the engine's /metrics.
/// The series that vary by themselves (scrape durations, the runtime's request counters) are
/// left out. The hot path can be rewritten for speed; this says its output did not move.
///
/// On a mismatch the new output is written next to the test's scratch directory for a diff;
/// `ENGINE_RUNTIME_GOLDEN_UPDATE=1` prints the new digests instead of failing.
struct MetricsGoldenTests {
    static let digests: [String: String] = [
        "vllm-0.33/standard": "a8d57b89abfe29c173522131dceda537ecfb60c1877642e59c295084f6e01848",
        "vllm-0.33/original": "391a60705c2d695d7003bfcc0814015e19f2ed053f7502a632fcc0805256aeed",
        "vllm-0.33/both": "487522976c216997fc498e71ecce8ecd188117d58f23d0623e267d8f2c0b0368",
        "vllm-0.33/aibrix": "67bb739fa068525a60b77717ba3e680a28e4504bd076b6b152aac00ac9dcfb1a",
        "sglang-0.5.23/standard": "db9b0ad190bcb027829e729cc7ed25bb38044cd54cb52beb15532de576f7106b",
        "sglang-0.5.23/original": "dd008591715fd8857f73668ff6b03da9ff8816169afee03f7ca77bff2859b586",
        "sglang-0.5.23/both": "19a796ed3cd6e864cd5a28f2ae88dd7e3de1c72fed453d87f1629f9b601ca71a",
        "sglang-0.5.23/aibrix": "7b8a2388515ade8c23064f432eb40ab972dc6a67dcf09d121dc48adab2e6108c",
    ]

    /// Families whose values change from one scrape to the next whatever the engine says.
    static let varying = ["llm_engine_scrape_duration_seconds", "engine_runtime_", "aibrix:api_request"]

    /// The body without the varying families (HELP, TYPE and samples).
    static func stable(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            var name = Substring(line)
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { name = line.dropFirst(7) }
            return !varying.contains { name.hasPrefix($0) }
        }.joined(separator: "\n")
    }

    static let cases = ["vllm-0.33", "sglang-0.5.23"].flatMap { engine in ["standard", "original", "both", "aibrix"].map { (engine, $0) } }

    @Test(arguments: cases)
    func metricsBodyIsUnchanged(engine: String, mode: String) async throws {
        let nginx = try await NginxServer.start()
        let fixture = TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/metrics/\(engine).prom").path
        try nginx.put("/metrics", Array(try Data(contentsOf: URL(fileURLWithPath: fixture))))
        let runtime = try await ServerProcess.runtime(
            for: nil, flavor: engine.engineKindOfFixture, endpoint: nginx.baseURL,
            environment: ["ENGINE_RUNTIME_METRICS_MODE": mode, "ENGINE_RUNTIME_METRICS_CACHE_MS": "0"])
        let answer = try await runtime.get("/metrics")
        #expect(answer.status == 200)
        let body = Self.stable(answer.text)
        #expect(body.utf8.count > 1000, "\(body.prefix(500))")
        let digest = FileDigest.hex(SHA256.hash(data: Array(body.utf8)))
        let key = "\(engine)/\(mode)"
        if ProcessInfo.processInfo.environment["ENGINE_RUNTIME_GOLDEN_UPDATE"] == "1" {
            print("golden \"\(key)\": \"\(digest)\",")
            return
        }
        if digest != Self.digests[key] {
            let saved = NSTemporaryDirectory() + "metrics-golden-\(engine)-\(mode).prom"
            try? body.write(toFile: saved, atomically: true, encoding: .utf8)
            Issue.record("/metrics for \(key) changed (digest \(digest)); the new body is in \(saved)")
        }
    }
}

extension String {
    /// "vllm" of "vllm-0.33".
    var engineKindOfFixture: String { String(split(separator: "-", maxSplits: 1).first ?? Substring(self)) }
}

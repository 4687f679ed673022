import Foundation
import Host
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The binary started exactly as AIBrix's sidecar webhook starts its container: the program
/// `aibrix_runtime` (the image's link to engine-runtime), the arguments `--port 8080`, the
/// environment `INFERENCE_ENGINE=vllm`, `INFERENCE_ENGINE_ENDPOINT=http://localhost:8000`
/// (pkg/webhook/sidecar_injection.go). The fixed ports must be free on the test machine.
@Suite(.enabled(if: webhookPortsFree([8000, 8080]), "ports 8000 and 8080 are in use on this machine"))
struct AIBrixDropInTests {
    /// A directory with AIBrix's program names as links to the binary, as the image has them.
    private static func aibrixNames() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for name in ["aibrix_runtime", "aibrix_download"] {
            try FileManager.default.createSymbolicLink(atPath: directory.path + "/" + name, withDestinationPath: TestPaths.binary)
        }
        return directory
    }

    @Test func theWebhooksCommandLineServesTheControllersCalls() async throws {
        let names = try Self.aibrixNames()
        defer { names.remove() }
        let engine = try await ServerProcess.simulator("vllm", port: 8000)
        let runtime = try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: names.path + "/aibrix_runtime", arguments: ["--port", "8080"],
                environment: ["INFERENCE_ENGINE": "vllm", "INFERENCE_ENGINE_ENDPOINT": "http://localhost:8000"],
                marker: "engine-runtime listening")
        }
        #expect(runtime.port == 8080)
        // The webhook's probes, then the ModelAdapter controller's list, load and unload.
        #expect(try await runtime.get("/healthz").status == 200)
        #expect(try await runtime.get("/ready").status == 200)
        #expect(runtime.output.contains("driver loaded"), "drivers found next to the real binary behind the link")
        let adapter = try TemporaryDirectory()
        defer { adapter.remove() }
        let load = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"sql-lora","lora_path":"\#(adapter.path)"}"#)
        #expect(load.status == 200, "\(load.text)")
        #expect(try await runtime.get("/v1/models").text.contains(#""id":"sql-lora""#))
        #expect(try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"sql-lora"}"#).status == 200)
        let metrics = try await runtime.get("/metrics").text
        #expect(metrics.contains(#"llm_engine_up{engine="vllm"} 1"#))
        #expect(metrics.contains("# TYPE vllm:num_requests_running gauge"), "the engine's own series, for the gateway's parser")
        #expect(runtime.terminate() == 0)
        _ = engine
    }

    @Test func aibrixDownloadIsTheDownloadCommand() async throws {
        let names = try Self.aibrixNames()
        defer { names.remove() }
        let source = try TemporaryDirectory()
        defer { source.remove() }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: source.path + "/config.json"))
        let target = try TemporaryDirectory()
        defer { target.remove() }
        let result = try await Program.run(
            names.path + "/aibrix_download", ["--model-uri", source.path, "--local-dir", target.path, "--model-name", "copied"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: target.path + "/copied/config.json"))
    }
}

/// True when every port can be bound on loopback now.
func webhookPortsFree(_ ports: [Int]) -> Bool {
    ports.allSatisfy { port in
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = loopbackAddress(port: port)
        return withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

import Foundation
import Host
import TestSupport
import Testing

/// The OpenAPI document: served as kept in docs/, and the running server checked against it
/// by an external tool (schemathesis): no 5xx, every status, content type and body as documented.
@Suite struct OpenAPITests {
    static let schemathesis = ProcessInfo.processInfo.environment["ENGINE_RUNTIME_SCHEMATHESIS"]
        ?? TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/schemathesis").path

    @Test func theServedDocumentIsTheOneInDocs() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let served = try await runtime.get("/openapi.json")
        #expect(served.status == 200)
        let kept = try Data(contentsOf: TestPaths.packageRoot.appendingPathComponent("docs/openapi.json"))
        #expect(served.text == String(decoding: kept, as: UTF8.self), "GET /openapi.json differs from docs/openapi.json")
        let check = try await Program.run("/usr/bin/env", ["python3", TestPaths.packageRoot.appendingPathComponent("scripts/openapi.py").path, "--check"])
        #expect(check.status == 0, "\(check.stderr)")
    }

    @Test(arguments: ["vllm", "sglang"])
    func schemathesisFindsNoServerErrorAndNoMismatch(flavor: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.schemathesis), "schemathesis missing: run scripts/setup.sh")
        let engine = try await ServerProcess.simulator(flavor)
        // schemathesis also asks for downloads: they stay in a scratch directory and on loopback.
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let dead = "http://127.0.0.1:9"
        let runtime = try await ServerProcess.runtime(
            for: engine, flavor: flavor,
            environment: [
                "DOWNLOADER_LOCAL_DIR": scratch.path + "/models", "ENGINE_RUNTIME_ADAPTER_DIR": scratch.path + "/adapters",
                "ENGINE_RUNTIME_SECRETS_DIR": scratch.path + "/secrets", "DOWNLOADER_ALLOWED_HOSTS": "127.0.0.1",
                "HF_ENDPOINT": dead, "AWS_ENDPOINT_URL": dead, "TOS_ENDPOINT": dead, "GCS_ENDPOINT": dead,
            ])
        let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
        // 501 is the documented answer for what the engine lacks (SGLang has no sleep level 0
        // or multimodal cache, vLLM no reload from disk), not a server fault.
        try "[checks.not_a_server_error]\nexpected-statuses = [\"2xx\", \"3xx\", \"4xx\", \"501\"]\n"
            .write(toFile: scratch.path + "/schemathesis.toml", atomically: true, encoding: .utf8)
        // schemathesis keeps a cache in its working directory: not in the checkout.
        let result = try await Program.run(
            Self.schemathesis,
            [
                "run", runtime.baseURL + "/openapi.json", "--url", runtime.baseURL, "--checks", checks, "--mode", "all",
                "--max-examples", "40", "--seed", "7", "--no-color",
            ], directory: scratch.path)
        #expect(result.status == 0, "\(result.stdout.suffix(4000))")
        #expect(result.stdout.contains("passed") || result.stdout.contains("generated"))
        #expect(!result.stdout.contains("Server error"))
    }
}

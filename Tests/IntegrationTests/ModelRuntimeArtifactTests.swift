import Crypto
import Foundation
import Host
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The model runtime bringing a real llama-server from an artifact to a serving engine: a
/// local GGUF, an `s3://` object on moto, a Hugging Face-style mirror on nginx (its download
/// visible as progress), and an artifact that does not exist (a clear error, no process).
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: TestPaths.llamaServer), "llama-server missing: run scripts/setup.sh"))
struct ModelRuntimeArtifactTests {
    /// A tiny GGUF model (scripts/tiny_gguf.py), as bytes.
    private static func tinyModel(seed: Int = 1, width: Int? = nil) async throws -> [UInt8] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let python = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/python").path
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/tiny_gguf.py").path
        let made = try await Program.run(
            python, [script, "model", directory.path + "/tiny.gguf", "--seed", "\(seed)"] + (width.map { ["--width", "\($0)"] } ?? []))
        #expect(made.status == 0, "\(made.stderr)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: directory.path + "/tiny.gguf")))
    }

    private static func harness(ports: ClosedRange<Int>, _ extra: [String: String] = [:]) throws -> ModelRuntimeHarness {
        try ModelRuntimeHarness(
            ports: ports, environment: ["ENGINE_RUNTIME_MODEL_LLAMACPP_COMMAND": TestPaths.llamaServer, "LLAMA_CACHE": "/nonexistent"].merging(extra) { $1 })
    }

    @Test func aLocalGGUFOnARealLlamaServer() async throws {
        let harness = try Self.harness(ports: 23200...23219)
        defer { harness.cleanUp() }
        try FileManager.default.createDirectory(atPath: harness.models + "/tiny", withIntermediateDirectories: true)
        let file = harness.models + "/tiny/tiny.gguf"
        try Data(try await Self.tinyModel()).write(to: URL(fileURLWithPath: file))
        try await harness.start()
        let activated = try await harness.post(
            "/v1/runtime/models/activate",
            #"{"model_name":"tiny","artifact_url":"\#(harness.models)/tiny","engine":"llamacpp","engine_config":{"args":{"-c":"512","-t":"1"}}}"#)
        #expect(activated.status == 200, "\(activated.text)")
        let port = try JSONCoding.decode(ActivateAnswer.self, from: activated.body).port
        let ready = try await harness.waitFor("tiny") { $0.ready }
        #expect(ready.request_metrics_observed, "llama.cpp's requests_processing through the standard set")
        let engine = try #require(try await harness.pid("tiny"))
        #expect(
            Array(ProcInfo.commandLine(engine).dropFirst()) == [
                "-m", file, "--alias", "tiny", "--host", "127.0.0.1", "--port", "\(port)", "--metrics", "-c", "512", "-t", "1",
            ])
        let models = try await ServerProcess.get("http://127.0.0.1:\(port)/v1/models")
        #expect(models.text.contains(#""id":"tiny""#), "\(models.text)")
        let again = try await harness.post("/v1/runtime/models/activate", #"{"model_name":"tiny","artifact_url":"\#(harness.models)/tiny","engine":"llamacpp","engine_config":{"args":{"-c":"512","-t":"1"}}}"#)
        #expect(try JSONCoding.decode(ActivateAnswer.self, from: again.body).port == port)
        // llama-server has no sleep the runtime can drive.
        let sleep = try await harness.post("/v1/runtime/models/sleep", #"{"model_name":"tiny","operation_id":"s1"}"#)
        #expect(sleep.status == 409 && sleep.text.contains("sleep is unsupported for engine 'llamacpp'"), "\(sleep.text)")
        let metrics = try await harness.runtime!.get("/metrics").text
        #expect(metrics.contains(#"llm_engine_up{engine="llamacpp",model="tiny"} 1"#), "\(metrics.prefix(2000))")
        #expect(try await harness.post("/v1/runtime/models/deactivate", #"{"model_name":"tiny"}"#).status == 200)
        #expect(!ProcInfo.isRunning(engine))
    }

    @Test func fromS3AndABadArtifact() async throws {
        let model = try await Self.tinyModel(seed: 2)
        let moto = try await MotoServer.start()
        let staging = try TemporaryDirectory()
        defer { staging.remove() }
        try Data(model).write(to: URL(fileURLWithPath: staging.path + "/tiny.gguf"))
        try await moto.populate(
            """
            s3.create_bucket(Bucket="models")
            s3.upload_file("\(staging.path)/tiny.gguf", "models", "tiny-s3/tiny.gguf")
            """)
        let harness = try Self.harness(
            ports: 23220...23239,
            ["AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "s3-secret", "AWS_REGION": "us-east-1"])
        defer { harness.cleanUp() }
        try await harness.start()
        let activated = try await harness.post(
            "/v1/runtime/models/activate", #"{"model_name":"from-s3","artifact_url":"s3://models/tiny-s3/","engine":"llamacpp"}"#)
        #expect(activated.status == 200, "\(activated.text)")
        try await harness.waitFor("from-s3", seconds: 60) { $0.ready }
        let entry = try #require(try await harness.list().first)
        #expect(entry.download?.state == .completed && entry.download?.bytes_done == Int64(model.count), "\(String(describing: entry.download))")
        let engine = try #require(entry.pid)
        #expect(ProcInfo.commandLine(engine).dropFirst(2).first == harness.models + "/tiny-s3/tiny.gguf")
        #expect(ProcInfo.environment(engine)["AWS_SECRET_ACCESS_KEY"] == nil)

        let missing = try await harness.post(
            "/v1/runtime/models/activate", #"{"model_name":"missing","artifact_url":"s3://models/no-such-model/","engine":"llamacpp"}"#)
        #expect(missing.status == 200, "accepted; the download fails")
        let failed = try await harness.waitFor("missing", seconds: 60) { $0.phase == "failed" }
        #expect(failed.last_error?.contains("s3://models/no-such-model/") == true, "\(failed.last_error ?? "")")
        #expect(!failed.alive)
        #expect(try await harness.list().first { $0.model_name == "missing" }?.pid == nil, "no process was started")
    }

    @Test func fromAHuggingFaceMirrorWithProgress() async throws {
        let model = try await Self.tinyModel(seed: 3)
        // 48 KB/s after the first 16 KB: the download takes about ten seconds, long enough to be
        // seen in progress by polls that wait for a test thread on a loaded machine.
        let nginx = try await NginxServer.start(rate: "48k", rateAfter: "16k")
        try nginx.put("repos/org/tiny/tiny.gguf", model)
        let blob = Insecure.SHA1.hash(data: Array("blob \(model.count)\u{0}".utf8) + model).map { String(format: "%02x", $0) }.joined()
        let info = """
            {"id":"org/tiny","sha":"0123456789abcdef0123456789abcdef01234567","siblings":[
              {"rfilename":"tiny.gguf","size":\(model.count),"blobId":"\(blob)"}]}
            """
        try nginx.put("api/models/org/tiny/revision/main", Array(info.utf8))
        let harness = try Self.harness(ports: 23240...23259, ["HF_ENDPOINT": nginx.baseURL, "HF_TOKEN": "hf-secret"])
        defer { harness.cleanUp() }
        try await harness.start()
        let activated = try await harness.post("/v1/runtime/models/activate", #"{"model_name":"from-hf","artifact_url":"hf://org/tiny","engine":"llamacpp"}"#)
        #expect(activated.status == 200, "\(activated.text)")
        // Progress while it downloads: some bytes, not all, no engine yet.
        var seen: ModelListEntry?
        let deadline = Date().addingTimeInterval(60)
        while seen == nil, Date() < deadline {
            if let entry = try await harness.list().first, entry.phase == .downloading, let download = entry.download,
                download.bytes_done > 0, download.bytes_done < download.bytes_total
            {
                seen = entry
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let during = try #require(seen, "the download was never seen in progress")
        #expect(during.pid == nil && during.download?.bytes_total == Int64(model.count))
        try await harness.waitFor("from-hf", seconds: 90) { $0.ready }
        let engine = try #require(try await harness.pid("from-hf"))
        #expect(ProcInfo.environment(engine)["HF_TOKEN"] == nil)
        #expect(try await harness.snapshot().cached_artifacts == ["hf://org/tiny"])
    }
}

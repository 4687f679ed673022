import Foundation
import Host
import TestSupport
import Testing

/// A real llama-server (llama.cpp b11434, built by scripts/setup.sh) behind the real
/// engine-runtime binary, on loopback, with tiny GGUF models and LoRA adapters written at test
/// time (scripts/tiny_gguf.py).
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: TestPaths.llamaServer), "llama-server missing: run scripts/setup.sh"))
struct LlamaCppTests {
    /// A scratch directory with a model `tiny.gguf` and two adapters `a.gguf`, `b.gguf`, and a
    /// router models directory `models/` with `tiny-a.gguf` and `tiny-b.gguf`.
    private static func fixtures() async throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        let python = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/python").path
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/tiny_gguf.py").path
        try FileManager.default.createDirectory(atPath: directory.path + "/models", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.path + "/cache", withIntermediateDirectories: true)
        for (kind, file, seed) in [
            ("model", "tiny.gguf", 1), ("lora", "a.gguf", 2), ("lora", "b.gguf", 3), ("model", "models/tiny-a.gguf", 4),
            ("model", "models/tiny-b.gguf", 5),
        ] {
            let made = try await Program.run(python, [script, kind, directory.path + "/" + file, "--seed", "\(seed)"])
            #expect(made.status == 0, "\(made.stderr)")
        }
        return directory
    }

    private static func llamaServer(_ arguments: [String], cache: String) async throws -> ServerProcess {
        try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: TestPaths.llamaServer, arguments: ["--host", "127.0.0.1", "--port", "0", "-t", "1"] + arguments,
                // Router mode lists the models of LLAMA_CACHE too: an empty one.
                environment: ["LLAMA_CACHE": cache], marker: "listening on http://",
                port: { line in line.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } })
        }
    }

    private static func singleModel(_ fixtures: TemporaryDirectory, _ extra: [String] = []) async throws -> ServerProcess {
        try await llamaServer(
            ["-m", fixtures.path + "/tiny.gguf", "--alias", "tiny", "--lora", "\(fixtures.path)/a.gguf,\(fixtures.path)/b.gguf", "--metrics", "-c", "512"]
                + extra, cache: fixtures.path + "/cache")
    }

    private struct EngineAdapter: Decodable {
        var id: Int
        var path: String
        var scale: Double
    }

    private func engineScales(_ engine: ServerProcess, key: String? = nil) async throws -> [Int: Double] {
        let reply = try await engine.get("/lora-adapters", headers: key.map { ["Authorization: Bearer \($0)"] } ?? [])
        #expect(reply.status == 200, "\(reply.text)")
        return Dictionary(uniqueKeysWithValues: try JSONCoding.decode([EngineAdapter].self, from: reply.body).map { ($0.id, $0.scale) })
    }

    private func sample(_ text: String, _ name: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
            .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
    }

    @Test func aSingleModelServerWithTwoAdapters() async throws {
        let fixtures = try await Self.fixtures()
        defer { fixtures.remove() }
        let engine = try await Self.singleModel(fixtures)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "llamacpp", arguments: ["--metrics-cache-ms", "0"])
        var ready = false
        for _ in 0..<100 where !ready {
            ready = try await runtime.get("/ready").status == 200
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready)

        let models = try JSONCoding.decode(ModelList.self, from: try await runtime.get("/v1/models").body)
        #expect(models.data.map(\.id) == ["tiny", "a", "b"])
        #expect(models.adapters.map(\.parent) == ["tiny", "tiny"])
        let info = try await runtime.get("/v1/info").text
        #expect(info.contains(#""engine":"llamacpp""#) && info.contains(#""role":"single""#), "\(info)")
        #expect(info.contains(#""version":"b11434"#), "\(info)")
        let adapters = try await runtime.get("/v1/lora_adapters").text
        #expect(adapters.contains(#"{"base_model":"tiny","name":"a","path":"\#(fixtures.path)/a.gguf"}"#), "\(adapters)")

        // Scales: one adapter changes, the other keeps its scale (the engine would zero it).
        #expect(try await engineScales(engine) == [0: 1, 1: 1])
        let set = try await runtime.post("/v1/extensions/llamacpp.set_lora_scale", #"{"model":"","id":1,"scale":0.5}"#)
        #expect(set.text == #"{"result":0.5}"#)
        #expect(try await engineScales(engine) == [0: 1, 1: 0.5])
        let unknown = try await runtime.post("/v1/extensions/llamacpp.set_lora_scale", #"{"model":"","id":99,"scale":0}"#)
        #expect(unknown.status == 404)
        #expect(unknown.envelope?.message.contains("no LoRA adapter with id 99") == true)
        #expect(try await engineScales(engine) == [0: 1, 1: 0.5], "an unknown id leaves every scale alone")
        #expect(try await runtime.post("/v1/extensions/llamacpp.lora_scale", #"{"model":"","id":1}"#).text == #"{"result":0.5}"#)

        // Loads: a preloaded adapter is "loaded"; anything else says how to preload.
        #expect(try await runtime.post("/v1/lora_adapters", #"{"lora_name":"a","lora_path":"\#(fixtures.path)/a.gguf"}"#).status == 200)
        #expect(try await runtime.post("/v1/lora_adapters", #"{"lora_name":"a","lora_path":"/elsewhere/a.gguf"}"#).status == 409)
        let fresh = try await runtime.post("/v1/lora_adapters", #"{"lora_name":"c","lora_path":"\#(fixtures.path)/c.gguf"}"#)
        #expect(fresh.status == 501)
        #expect(fresh.envelope?.message.contains("--lora") == true)
        #expect(try await runtime.post("/v1/models/load", #"{"model":"other"}"#).status == 501, "a single-model server")
        let reset = try await runtime.post("/v1/reset_cache", "{}")
        #expect(reset.status == 501)
        #expect(reset.envelope?.message.contains("--slot-save-path") == true)

        // Metrics follow a real completion.
        let before = try await runtime.get("/metrics").text
        #expect(before.contains("llm_engine_up{engine=\"llamacpp\"} 1\n"), "\(before.prefix(2000))")
        #expect(!before.contains("llm_engine_kv_cache_usage_ratio"), "absent, never a fake zero")
        let prompt = sample(before, "llm_engine_prompt_tokens_total") ?? 0
        let generated = sample(before, "llm_engine_generation_tokens_total") ?? 0
        let completion = try await engine.post("/completion", #"{"prompt":"hello world","n_predict":4,"temperature":0}"#)
        #expect(completion.status == 200, "\(completion.text)")
        let after = try await runtime.get("/metrics").text
        #expect((sample(after, "llm_engine_prompt_tokens_total") ?? 0) > prompt, "\(after.prefix(3000))")
        #expect((sample(after, "llm_engine_generation_tokens_total") ?? 0) >= generated + 4)
        #expect(after.contains("llm_engine_requests_running{engine=\"llamacpp\",model_name=\"tiny\"} 0\n"), "labelled with the alias")

        // The engine killed: down in metrics and readiness, the sidecar itself alive.
        engine.kill()
        let down = try await runtime.get("/metrics").text
        #expect(down.contains("llm_engine_up{engine=\"llamacpp\"} 0\n"))
        #expect(try await runtime.get("/ready").status == 503)
        #expect(try await runtime.get("/healthz").status == 200)
    }

    /// Before the engine listens: not ready, refused. While the model loads llama-server
    /// already answers `/health` with 503 "Loading model" (its HTTP server starts first): not
    /// ready, starting. Then ready. A 338 MB model (mapped, random weights) keeps the loading
    /// window open for tens of milliseconds; the polls start as soon as the port accepts.
    @Test func readinessBeforeWhileAndAfterTheModelLoads() async throws {
        let fixtures = try await Self.fixtures()
        defer { fixtures.remove() }
        let python = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/python").path
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/tiny_gguf.py").path
        let made = try await Program.run(python, [script, "model", fixtures.path + "/big.gguf", "--width", "1024", "--layers", "8"])
        #expect(made.status == 0, "\(made.stderr)")
        let probe = try await ServerProcess.simulator("vllm")
        let port = probe.port
        probe.terminate()
        let runtime = try await ServerProcess.runtime(for: nil, flavor: "llamacpp", endpoint: "http://127.0.0.1:\(port)")
        let refused = try await runtime.get("/ready")
        #expect(refused.status == 503)
        #expect(refused.text.contains("not accepting connections"), "\(refused.text)")
        async let polled: (ready: Bool, reasons: [String]) = {
            for _ in 0..<30000 {
                if (try? RawConnection(port: port)) != nil { break }
                try await Task.sleep(for: .milliseconds(1))
            }
            var reasons: [String] = []
            for _ in 0..<4000 {
                let answer = try await runtime.get("/ready")
                if answer.status == 200 { return (true, reasons) }
                reasons.append(answer.text)
            }
            return (false, reasons)
        }()
        let engine = try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: TestPaths.llamaServer,
                arguments: ["--host", "127.0.0.1", "--port", "\(port)", "-t", "1", "-m", fixtures.path + "/big.gguf", "-c", "512"],
                environment: ["LLAMA_CACHE": fixtures.path + "/cache"], marker: "listening on http://", port: { _ in port })
        }
        defer { engine.kill() }
        let (ready, reasons) = try await polled
        #expect(ready)
        #expect(reasons.contains { $0.contains("llama-server is loading its model (starting up)") }, "\(reasons.count) polls before ready: \(reasons.suffix(3))")
        for reason in reasons {
            #expect(reason.contains("loading its model") || reason.contains("not accepting connections"), "\(reason)")
        }
    }

    /// --api-key on the engine (which guards /metrics too) and a token on the sidecar.
    @Test func apiKeysOnBothSides() async throws {
        let fixtures = try await Self.fixtures()
        defer { fixtures.remove() }
        let engine = try await Self.singleModel(fixtures, ["--api-key", "engine-secret"])
        let bearer = ["Authorization: Bearer sidecar-token"]
        let keyed = try await ServerProcess.runtime(
            for: engine, flavor: "llamacpp", arguments: ["--metrics-cache-ms", "0"],
            environment: ["INFERENCE_ENGINE_API_KEY": "engine-secret", "ENGINE_RUNTIME_AUTH_TOKEN": "sidecar-token"])
        #expect(try await keyed.get("/v1/models").status == 401, "the sidecar's own token")
        #expect(try await keyed.get("/v1/models", headers: bearer).status == 200)
        let metrics = try await keyed.get("/metrics", headers: bearer).text
        #expect(metrics.contains("llm_engine_up{engine=\"llamacpp\"} 1\n"), "the scrape carries the engine's key")
        #expect(metrics.contains("llm_engine_prompt_tokens_total{engine=\"llamacpp\",model_name=\"tiny\"}"))
        let set = try await keyed.post("/v1/extensions/llamacpp.set_lora_scale", #"{"model":"","id":0,"scale":0.25}"#, headers: bearer)
        #expect(set.text == #"{"result":0.25}"#)
        #expect(!keyed.output.contains("engine-secret") && !keyed.output.contains("sidecar-token"), "keys are never logged")

        // The host's own scrape (a driver with metrics_path: the C template) carries the key too.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.templateSource, into: directory.path, name: "libtemplate.so")
        for (name, key) in [("with-key", #", "api_key_env": "TEMPLATE_KEY""#), ("without-key", "")] {
            try #"{"engines": [{"name": "t", "engine": "template-engine", "endpoint": "\#(engine.baseURL)"\#(key)}]}"#
                .write(toFile: directory.path + "/\(name).json", atomically: true, encoding: .utf8)
        }
        for (name, up) in [("with-key", 1), ("without-key", 0)] {
            let scraper = try await ServerProcess.start(
                arguments: ["--driver-dir", directory.path, "--config", directory.path + "/\(name).json", "--metrics-cache-ms", "0"],
                environment: ["TEMPLATE_KEY": "engine-secret"])
            let text = try await scraper.get("/metrics").text
            #expect(text.contains("llm_engine_up{engine=\"template-engine\"} \(up)\n"), "\(name): \(text.prefix(600))")
        }

        let keyless = try await ServerProcess.runtime(for: engine, flavor: "llamacpp", arguments: ["--metrics-cache-ms", "0"])
        let refused = try await keyless.get("/v1/info")
        #expect(refused.status == 502)
        #expect(refused.envelope?.message.contains("refused the credentials") == true)
        #expect(try await keyless.get("/metrics").text.contains("llm_engine_up{engine=\"llamacpp\"} 0\n"))
    }

    /// Router mode: models by name, loaded and unloaded through the sidecar, each error case.
    @Test func routerModeLoadsAndUnloadsModels() async throws {
        let fixtures = try await Self.fixtures()
        defer { fixtures.remove() }
        let engine = try await Self.llamaServer(
            // The router passes --lora on to every model's child server.
            ["--models-dir", fixtures.path + "/models", "--models-max", "2", "--no-models-autoload", "-c", "512", "--metrics",
             "--lora", fixtures.path + "/a.gguf"],
            cache: fixtures.path + "/cache")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "llamacpp", arguments: ["--metrics-cache-ms", "0"])
        let info = try await runtime.get("/v1/info").text
        #expect(info.contains(#""role":"router""#), "\(info)")
        let idle = try await runtime.get("/metrics").text
        #expect(idle.contains("llm_engine_up{engine=\"llamacpp\"} 1\n"), "no model runs: nothing to scrape, not a failure")
        #expect(!idle.contains("llm_engine_requests_running"))
        struct Models: Decodable {
            struct Card: Decodable {
                struct Status: Decodable { var value: String? }
                var id: String
                var status: Status?
            }
            var data: [Card]
        }
        func states() async throws -> [String: String] {
            let cards = try JSONCoding.decode(Models.self, from: try await runtime.get("/v1/models").body).data
            return Dictionary(uniqueKeysWithValues: cards.map { ($0.id, $0.status?.value ?? "?") })
        }
        #expect(try await states() == ["tiny-a": "unloaded", "tiny-b": "unloaded"])

        let load = try await runtime.post("/v1/models/load", #"{"model":"tiny-a"}"#)
        #expect(load.status == 200, "\(load.text)")
        #expect(try await states()["tiny-a"] == "loaded", "the load waits until the model serves")
        let serving = try await runtime.get("/metrics").text
        #expect(serving.contains("llm_engine_requests_running{engine=\"llamacpp\",model_name=\"tiny-a\"} 0\n"), "\(serving.prefix(1500))")
        // A scale change reaches the model's child server (the router cannot forward the POST).
        let scaled = try await runtime.post("/v1/extensions/llamacpp.set_lora_scale", #"{"model":"tiny-a","id":0,"scale":0.5}"#)
        #expect(scaled.text == #"{"result":0.5}"#, "\(scaled.text)")
        let childScales = try await engine.get("/lora-adapters?model=tiny-a")
        #expect(try JSONCoding.decode([EngineAdapter].self, from: childScales.body).map(\.scale) == [0.5])
        let notRunning = try await runtime.post("/v1/extensions/llamacpp.set_lora_scale", #"{"model":"tiny-b","id":0,"scale":0.5}"#)
        #expect(notRunning.status == 409, "\(notRunning.text)")
        #expect(notRunning.envelope?.message.contains("not running") == true)
        let again = try await runtime.post("/v1/models/load", #"{"model":"tiny-a"}"#)
        #expect(again.status == 409, "\(again.text)")
        let unknown = try await runtime.post("/v1/models/load", #"{"model":"nope"}"#)
        #expect(unknown.status == 404)
        #expect(unknown.envelope?.message.contains("tiny-a, tiny-b") == true, "\(unknown.text)")
        #expect(try await runtime.post("/v1/models/load", #"{"model":"../x"}"#).status == 400)

        let unload = try await runtime.post("/v1/engines/default/models/unload", #"{"model":"tiny-a"}"#)
        #expect(unload.status == 200, "\(unload.text)")
        #expect(try await states()["tiny-a"] == "unloaded")
        #expect(try await runtime.post("/v1/models/unload", #"{"model":"tiny-a"}"#).status == 409)
        #expect(try await runtime.post("/v1/models/unload", #"{"model":"nope"}"#).status == 404)
    }

    /// `drivers check` on the driver, alone and against a real llama-server.
    @Test func driversCheckPassesWithAndWithoutAnEngine() async throws {
        let alone = try await Program.run(TestPaths.binary, ["drivers", "check", TestPaths.llamaCppDriver, "--timeout", "5"])
        #expect(alone.status == 0, "\(alone.stdout)\(alone.stderr)")
        let fixtures = try await Self.fixtures()
        defer { fixtures.remove() }
        let engine = try await Self.singleModel(fixtures)
        let live = try await Program.run(
            TestPaths.binary, ["drivers", "check", TestPaths.llamaCppDriver, "--endpoint", engine.baseURL, "--timeout", "5"])
        #expect(live.status == 0, "\(live.stdout)\(live.stderr)")
        #expect(live.stdout.contains("conforms to driver ABI 1"))
    }
}

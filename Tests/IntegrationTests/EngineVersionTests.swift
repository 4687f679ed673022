import Foundation
import Host
import TestSupport
import Testing

/// The drivers against each engine release the simulator reproduces: what changed between
/// vLLM 0.11 and 0.33, SGLang 0.5.4 and 0.5.23 (docs/operators.md "Engine versions").
@Suite struct EngineVersionTests {
    private struct Stats: Decodable {
        var sleep_level: Int
        var asleep: [String]
        var paused: Bool
        var last_mode: String?
        var cache_resets_by_kind: [String: Int]
        var weight_reloads: [String]
    }

    private func stats(_ engine: ServerProcess) async throws -> Stats {
        try JSONCoding.decode(Stats.self, from: try await engine.get("/_sim/stats").body)
    }

    private func adapter(rank: Int? = nil) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        try (rank.map { #"{"r":\#($0)}"# } ?? "{}").write(toFile: directory.path + "/adapter_config.json", atomically: true, encoding: .utf8)
        return directory
    }

    private struct StateAnswer: Decodable {
        var message: String
        var status: String?
        var level: Int?
    }

    /// vLLM 0.33: a sleep without a mode sends mode=wait (the engine's own default aborts every
    /// request in flight), level 0 is accepted, and a wake with some tags leaves it sleeping.
    @Test func vllmSleepModesLevelZeroAndPartialWake() async throws {
        let engine = try await ServerProcess.simulator("vllm@0.33.0")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let sleep = try await runtime.post("/v1/sleep", "{}")
        #expect(sleep.status == 200, "\(sleep.text)")
        #expect(try JSONCoding.decode(StateAnswer.self, from: sleep.body).status == "sleeping")
        var state = try await stats(engine)
        #expect(state.last_mode == "wait")
        #expect(state.sleep_level == 1)
        #expect(try await engine.requestCount("POST /sleep") == 1)

        let partial = try await runtime.post("/v1/wake", #"{"tags":["weights"]}"#)
        #expect(partial.status == 200)
        #expect(try JSONCoding.decode(StateAnswer.self, from: partial.body).status == "sleeping", "\(partial.text)")
        #expect(partial.text.contains("still sleeping"))
        let woken = try await runtime.post("/v1/wake", "{}")
        #expect(try JSONCoding.decode(StateAnswer.self, from: woken.body).status == "awake")

        let zero = try await runtime.post("/v1/sleep", #"{"level":0,"mode":"keep"}"#)
        #expect(zero.status == 200, "\(zero.text)")
        state = try await stats(engine)
        #expect(state.asleep == ["scheduling"], "level 0 pauses scheduling only")
        #expect(state.last_mode == "keep")
        #expect(try await runtime.get("/v1/info").text.contains("\"is_sleeping\":true"))
        #expect(try await runtime.post("/v1/wake", "{}").status == 200)
        let badMode = try await runtime.post("/v1/sleep", #"{"mode":"later"}"#)
        #expect(badMode.status == 400)
        #expect(badMode.envelope?.message.contains("abort, wait or keep") == true)
        #expect(try await runtime.post("/v1/sleep", #"{"mode":"Wait!"}"#).status == 400, "checked by the host")
    }

    @Test func vllmPreviousSleepAnswersAreEmptyAndLevelZeroIsUnsupported() async throws {
        let engine = try await ServerProcess.simulator("vllm@0.11.0")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let sleep = try await runtime.post("/v1/sleep", #"{"level":2}"#)
        #expect(sleep.status == 200, "\(sleep.text)")
        #expect(try JSONCoding.decode(StateAnswer.self, from: sleep.body).level == 2)
        let wake = try await runtime.post("/v1/wake", #"{"tags":["weights"]}"#)
        #expect(try JSONCoding.decode(StateAnswer.self, from: wake.body).status == "awake", "0.11 wakes fully")
        let zero = try await runtime.post("/v1/sleep", #"{"level":0}"#)
        #expect(zero.status == 501, "\(zero.text)")
        #expect(zero.envelope?.message.contains("0.33") == true)
        let pause = try await runtime.post("/v1/pause", "{}")
        #expect(pause.status == 501)
        #expect(pause.envelope?.message.contains("no /pause route") == true)
        #expect(try await runtime.post("/v1/reset_cache", #"{"cache":"multimodal"}"#).status == 501)
    }

    /// Pause and resume, the KV-cache release that needs a pause, the other caches, the load
    /// report, and the reload vLLM cannot do.
    @Test func vllmPauseCachesLoadAndReload() async throws {
        let engine = try await ServerProcess.simulator("vllm@0.33.0")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let early = try await runtime.post("/v1/sleep", #"{"tags":["kv_cache"]}"#)
        #expect(early.status == 409, "\(early.text)")
        #expect(early.envelope?.message.contains("/v1/pause") == true)
        #expect(try await runtime.post("/v1/pause", "{}").status == 200)
        var state = try await stats(engine)
        #expect(state.paused)
        #expect(state.last_mode == "wait", "no request dropped unless asked")
        #expect(try await runtime.get("/v1/info").text.contains("\"is_paused\":true"))
        #expect(try await runtime.post("/v1/sleep", #"{"tags":["kv_cache"]}"#).status == 200)
        #expect(try await stats(engine).asleep == ["kv_cache"])
        #expect(try await runtime.post("/v1/resume", "{}").status == 200)
        #expect(try await stats(engine).paused == false)

        #expect(try await runtime.post("/v1/reset_cache", #"{"cache":"all"}"#).status == 200)
        state = try await stats(engine)
        #expect(state.cache_resets_by_kind == ["prefix": 1, "multimodal": 1, "encoder": 1])
        #expect(try await runtime.post("/v1/reset_cache", #"{"cache":"disk"}"#).status == 400)

        try await engine.configure(#"{"running_requests":5}"#)
        #expect(try await runtime.get("/v1/info").text.contains(#""load":{"server_load":5}"#))
        let reload = try await runtime.post("/v1/reload_weights", "{}")
        #expect(reload.status == 501)
        #expect(reload.envelope?.message.contains("no route that reloads weights from a disk path") == true)
    }

    @Test(arguments: ["sglang@0.5.23", "sglang@0.5.4"])
    func sglangPauseReloadAndMemoryPerProfile(profile: String) async throws {
        let engine = try await ServerProcess.simulator(profile)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: profile)
        #expect(try await runtime.post("/v1/pause", "{}").status == 200)
        #expect(try await stats(engine).last_mode == "retract", "SGLang's default aborts; the driver's keeps requests")
        if profile.isCurrentProfile {
            // /ready is 503 while paused; the liveness probe (/ping) stays up.
            let ready = try await runtime.get("/ready")
            #expect(ready.status == 503)
            #expect(ready.text.contains("/ready answered HTTP 503"))
        }
        #expect(try await runtime.post("/v1/resume", "{}").status == 200)
        #expect(try await runtime.get("/ready").status == 200)
        #expect(try await runtime.post("/v1/pause", #"{"mode":"wait"}"#).status == 400)

        let weights = try TemporaryDirectory()
        defer { weights.remove() }
        let reload = try await runtime.post("/v1/reload_weights", #"{"model_path":"\#(weights.path)"}"#)
        #expect(reload.status == 200, "\(reload.text)")
        #expect(try await stats(engine).weight_reloads == [weights.path])
        let missing = try await runtime.post("/v1/reload_weights", #"{"model_path":"/nonexistent/weights"}"#)
        #expect(missing.status == 400)
        #expect(try await runtime.post("/v1/reload_weights", #"{"model_path":"a\u0001b"}"#).status == 400)

        let zero = try await runtime.post("/v1/sleep", #"{"level":0}"#)
        #expect(zero.status == 501)
        #expect(zero.envelope?.message.contains("/v1/pause") == true)
        #expect(try await runtime.post("/v1/sleep", #"{"tags":["kv_cache"]}"#).status == 200)
        #expect(try await stats(engine).asleep == ["kv_cache"])
        #expect(try await runtime.post("/v1/wake", #"{"tags":["kv_cache"]}"#).status == 200)
        #expect(try await runtime.post("/v1/sleep", #"{"tags":["gpu"]}"#).status == 400)
        #expect(try await runtime.post("/v1/reset_cache", #"{"cache":"encoder"}"#).status == 501)
        let info = try await runtime.get("/v1/info").text
        #expect(info.contains("\"version\":\"\(profile.engineVersion!)\""))
        #expect(info.contains("\"load\":{") == profile.isCurrentProfile, "/v1/loads is new in 0.5.23: \(info)")
        if profile.isCurrentProfile {
            #expect(try await engine.requestCount("GET /server_info") > 0, "the new route names")
            #expect(try await engine.requestCount("GET /get_server_info") == 0)
        }
    }

    /// SGLang 0.5.23 with both keys: the admin key on management routes (the API key is refused
    /// there), the API key on the others.
    @Test func sglangWithBothAPIKeysGetsEachWhereItBelongs() async throws {
        let engine = try await ServerProcess.simulator("sglang@0.5.23", ["--api-key", "user-key", "--admin-api-key", "admin-key"])
        let both = try await ServerProcess.runtime(
            for: engine, flavor: "sglang",
            environment: ["INFERENCE_ENGINE_API_KEY": "user-key", "INFERENCE_ENGINE_ADMIN_API_KEY": "admin-key"])
        let adapter = try adapter()
        defer { adapter.remove() }
        #expect(try await both.get("/v1/models").status == 200)
        #expect(try await both.get("/v1/info").status == 200)
        #expect(try await both.get("/ready").status == 200)
        let load = try await both.post("/v1/lora_adapters", #"{"lora_name":"k1","lora_path":"\#(adapter.path)"}"#)
        #expect(load.status == 200, "\(load.text)")
        #expect(try await both.post("/v1/pause", "{}").status == 200)
        #expect(try await both.post("/v1/resume", "{}").status == 200)
        #expect(!both.output.contains("admin-key") && !both.output.contains("user-key"), "keys are never logged")

        let apiOnly = try await ServerProcess.runtime(for: engine, flavor: "sglang", environment: ["INFERENCE_ENGINE_API_KEY": "user-key"])
        #expect(try await apiOnly.get("/v1/models").status == 200)
        let refused = try await apiOnly.post("/v1/lora_adapters", #"{"lora_name":"k2","lora_path":"\#(adapter.path)"}"#)
        #expect(refused.status == 502)
        #expect(refused.envelope?.message.contains("INFERENCE_ENGINE_ADMIN_API_KEY") == true)
    }

    /// LoRA switched off in the engine, and an adapter the engine refuses, per current release.
    @Test(arguments: EngineProfiles.current)
    func loraOffIsUnsupportedAndABadAdapterIsABadRequest(profile: String) async throws {
        let off = try await ServerProcess.simulator(profile, ["--no-lora"])
        let runtime = try await ServerProcess.runtime(for: off, flavor: profile)
        let good = try adapter()
        defer { good.remove() }
        let load = try await runtime.post("/v1/lora_adapters", #"{"lora_name":"a","lora_path":"\#(good.path)"}"#)
        #expect(load.status == 501, "\(load.text)")
        #expect(load.envelope?.message.contains("--enable-lora") == true)

        let on = try await ServerProcess.simulator(profile)
        let second = try await ServerProcess.runtime(for: on, flavor: profile)
        let wide = try adapter(rank: 64)
        defer { wide.remove() }
        let refused = try await second.post("/v1/lora_adapters", #"{"lora_name":"wide","lora_path":"\#(wide.path)"}"#)
        #expect(refused.status == 400, "\(refused.text)")
        #expect(refused.envelope?.message.contains("rank 64") == true)
        // The base model's own name is not an adapter name (vLLM 0.33).
        if profile.engineKind == "vllm" {
            let clash = try await second.post("/v1/lora_adapters", #"{"lora_name":"sim-model","lora_path":"\#(good.path)"}"#)
            #expect(clash.status == 409, "\(clash.text)")
        }
    }

    /// Data- and tensor-parallel deployments: one standard series per model (and reason), no
    /// rank, streaming, engine-type or cache-source label left, values the engine's sums.
    @Test(arguments: EngineProfiles.all)
    func standardSeriesAggregateRanksAndSplits(profile: String) async throws {
        let sglang = profile.engineKind == "sglang"
        var flags = ["--data-parallel-size", "2"]
        if sglang, profile.isCurrentProfile {
            flags += ["--tensor-parallel-size", "2", "--metrics-for-all-schedulers", "--priority-scheduling"]
        }
        let engine = try await ServerProcess.simulator(profile, flags)
        try await engine.configure(#"{"running_requests":3,"waiting_requests":1,"prompt_tokens_total":1000,"generation_tokens_total":400}"#)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: profile, arguments: ["--metrics-mode", "standard"])
        let text = try await runtime.get("/metrics").text
        let kind = profile.engineKind
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("llm_engine_") }
        for line in lines {
            for label in ["is_streaming", "engine_type", "cache_source", "tp_rank", "dp_rank", "pp_rank", "moe_ep_rank", "priority", "engine=\"0\""] {
                #expect(!line.contains(label + "=") && !line.contains(label + ","), "\(line)")
            }
        }
        let model = "engine=\"\(kind)\",model_name=\"sim-model\""
        // Two data-parallel ranks each report the knobs; TP ranks repeat their group's values.
        #expect(text.contains("llm_engine_requests_running{\(model)} 6\n"), "\(text)")
        #expect(text.contains("llm_engine_requests_waiting{\(model)} 2\n"))
        // Token counters come once per engine (vLLM: per DP rank, so twice the knob).
        let prompt = kind == "vllm" ? 2000 : 1000
        #expect(text.contains("llm_engine_prompt_tokens_total{\(model)} \(prompt)\n"))
        #expect(text.contains("llm_engine_prefix_cache_hits_total{\(model)} \(prompt / 2)\n"))
        #expect(lines.filter { $0.hasPrefix("llm_engine_prompt_tokens_total{") }.count == 1)
        #expect(lines.filter { $0.hasPrefix("llm_engine_time_to_first_token_seconds_count{") }.count == 1)
        let config = lines.filter { $0.hasPrefix("llm_engine_kv_cache_config_info{") }
        #expect(config.count == 1, "\(config)")
        let expectedConfig = kind == "vllm" ? #"block_size="16",engine="vllm",num_blocks="8192"} 1"# : #"block_size="1",engine="sglang",model_name="sim-model",num_blocks="65536"} 1"#
        #expect(config.first?.hasSuffix(expectedConfig) == true, "\(config)")
        if kind == "vllm" {
            let reasons = lines.filter { $0.hasPrefix("llm_engine_requests_finished_total{") }
            #expect(reasons.count == (profile.isCurrentProfile ? 5 : 3), "one series per reason: \(reasons)")
        }
    }
}

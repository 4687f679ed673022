import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// vLLM's management routes per profile. Paths in comments are files of the vLLM 0.33.0 wheel.
extension SimulatorRoutes {
    static func addVLLMRoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        let current = settings.profile == .vllmCurrent
        router.get("/health") { _, _ in
            state.knobs.dead ? Response(status: .serviceUnavailable) : Response(status: .ok)
        }
        router.get("/version") { _, _ in try json(["version": settings.engineVersion]) }
        router.get("/v1/models") { _, _ in try json(modelList(settings: settings, state: state, owner: "vllm")) }
        router.get("/metrics") { _, _ in
            text(MetricsText.vllm(settings: settings, state: state), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        // In-flight requests on the generate routes (serve/instrumentator/basic.py:30-50).
        router.get("/load") { _, _ in try json(["server_load": state.knobs.running_requests]) }
        if settings.loraUpdating {
            addVLLMLoRARoutes(router, settings: settings, state: state)
        }
        guard settings.devMode else { return }
        // Query only; level 0 pauses scheduling, mode says what happens to requests in flight
        // (serve/dev/sleep/api_router.py:26-34; v1/engine/core.py:993-1029). 0.11 knew
        // levels 1 and 2 and answered with an empty body.
        router.post("/sleep") { request, _ in
            let query = request.uri.queryParameters
            let level = Int(query.get("level") ?? "1") ?? -1
            let mode = query.get("mode") ?? "abort"
            guard (current ? 0...2 : 1...2).contains(level) else {
                return vllmError(settings, 400, "Bad Request", current ? "1 validation error: level must be 0, 1 or 2" : "sleep level must be 1 or 2")
            }
            if current, !["abort", "wait", "keep"].contains(mode) {
                return vllmError(settings, 400, "Bad Request", "1 validation error: mode must be abort, wait or keep")
            }
            state.withEngine { engine in
                engine.sleepLevel = level
                engine.asleep = level == 0 ? ["scheduling"] : ["weights", "kv_cache", "scheduling"]
                engine.lastMode = current ? mode : nil
            }
            return current ? try json(SleepAnswer(status: "sleeping", level: level)) : Response(status: .ok)
        }
        // A wake with tags frees only those; the scheduler resumes once every memory tag is
        // resident, until then the answer is "sleeping" (v1/engine/core.py:1031-1056).
        router.post("/wake_up") { request, _ in
            let tags = request.uri.queryParameters.getAll("tags").map { String($0) }
            let status = state.withEngine { engine -> String in
                if tags.isEmpty || !current {
                    engine.asleep = []
                } else {
                    engine.asleep.subtract(tags)
                    if engine.asleep.isDisjoint(with: ["weights", "kv_cache"]) { engine.asleep.remove("scheduling") }
                }
                if engine.asleep.isEmpty { engine.sleepLevel = 0 }
                return engine.asleep.isEmpty ? "awake" : "sleeping"
            }
            return current ? try json(WakeAnswer(status: status, tags: tags.isEmpty ? nil : tags)) : Response(status: .ok)
        }
        // True while paused too (core.py:1078-1080).
        router.get("/is_sleeping") { _, _ in
            try json(["is_sleeping": state.withEngine { !$0.asleep.isEmpty || (current && $0.paused) }])
        }
        router.post("/reset_prefix_cache") { _, _ in
            let success = state.withEngine { engine -> Bool in
                guard engine.knobs.running_requests == 0 else { return false }
                engine.cacheResets += 1
                engine.cacheResetsByKind["prefix", default: 0] += 1
                return true
            }
            return try json(["success": success])
        }
        guard current else { return }
        // Answered 200 with an empty body, success not checked (serve/dev/cache/api_router.py:47-64).
        for (path, kind) in [("/reset_mm_cache", "multimodal"), ("/reset_encoder_cache", "encoder")] {
            router.post(RouterPath(path)) { _, _ in
                state.withEngine { engine in
                    engine.cacheResets += 1
                    engine.cacheResetsByKind[kind, default: 0] += 1
                }
                return Response(status: .ok)
            }
        }
        // Only valid once generation is paused (v1/engine/core.py:1058-1076): a RuntimeError
        // otherwise, a 500.
        router.post("/release_kv_cache_memory") { _, _ in
            let released = state.withEngine { engine -> Bool in
                guard engine.paused else { return false }
                engine.asleep.insert("kv_cache")
                return true
            }
            guard released else {
                return vllmError(settings, 500, "InternalServerError", "KV cache memory can only be released while the engine is paused")
            }
            return try json(["status": "kv_cache_released"])
        }
        // The RL router (rl/online/api_router.py:31-159): failures are {"error": str}.
        router.post("/pause") { request, _ in
            let mode = request.uri.queryParameters.get("mode") ?? "abort"
            guard ["abort", "wait", "keep"].contains(mode) else {
                return text(#"{"error":"Invalid pause mode: \#(mode)"}"#, status: .badRequest, contentType: "application/json")
            }
            state.withEngine { engine in
                engine.paused = true
                engine.lastMode = mode
            }
            return try json(["status": "paused"])
        }
        router.post("/resume") { _, _ in
            state.withEngine { $0.paused = false }
            return try json(["status": "resumed"])
        }
        router.get("/is_paused") { _, _ in try json(["is_paused": state.withEngine { $0.paused }]) }
    }

    private struct SleepAnswer: Encodable {
        var status: String
        var level: Int
    }

    private struct WakeAnswer: Encodable {
        var status: String
        var tags: [String]?

        func encode(to encoder: any Encoder) throws {
            enum Keys: String, CodingKey { case status, tags }
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(status, forKey: .status)
            try container.encode(tags, forKey: .tags)  // null without tags, as vLLM answers
        }
    }

    /// Load and unload (serve/lora/api_router.py:30-96; openai/models/serving.py:173-301).
    private static func addVLLMLoRARoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        router.post("/v1/load_lora_adapter") { request, context in
            struct Load: Decodable {
                var lora_name: String?
                var lora_path: String?
                var load_inplace: Bool?
            }
            let body = try await request.decode(as: Load.self, context: context)
            guard let name = body.lora_name, !name.isEmpty, let path = body.lora_path, !path.isEmpty else {
                return vllmError(settings, 400, "InvalidUserInput", "Both 'lora_name' and 'lora_path' must be provided.")
            }
            if settings.profile == .vllmCurrent, name == settings.model {
                return vllmError(
                    settings, 400, "InvalidUserInput", "The lora adapter name '\(name)' conflicts with a served base model.")
            }
            let outcome = state.withEngine { engine -> Response? in
                if engine.adapters[name] != nil, body.load_inplace != true {
                    return vllmError(
                        settings, 400, "InvalidUserInput",
                        "The lora adapter '\(name)' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.")
                }
                guard access(path, F_OK) == 0 else {
                    return vllmError(settings, 404, "NotFoundError", "Loading lora \(name) failed: No adapter found for \(path)")
                }
                // Engine-side failures are 500 InternalServerError since 0.33 (serving.py:209-213;
                // "LoRA is not enabled" from v1/worker/lora_model_runner_mixin.py:89-91).
                if !settings.lora {
                    return vllmError(settings, 500, "InternalServerError", "LoRA is not enabled. Use --enable-lora to enable LoRA.")
                }
                if let rank = adapterRank(path), rank > 16 {
                    return vllmError(
                        settings, 500, "InternalServerError",
                        "Loading lora \(name) failed: LoRA rank \(rank) is greater than max_lora_rank 16.")
                }
                if engine.adapters.updateValue(path, forKey: name) == nil { engine.adapterOrder.append(name) }
                return nil
            }
            return outcome ?? text("Success: LoRA adapter '\(name)' added successfully.")
        }
        router.post("/v1/unload_lora_adapter") { request, context in
            struct Unload: Decodable {
                var lora_name: String?
                var lora_int_id: Int?
            }
            let body = try await request.decode(as: Unload.self, context: context)
            guard let name = body.lora_name, !name.isEmpty else {
                return vllmError(settings, 400, "InvalidUserInput", "'lora_name' needs to be provided to unload a LoRA adapter.")
            }
            let removed = state.withEngine { engine -> Bool in
                guard engine.adapters.removeValue(forKey: name) != nil else { return false }
                engine.adapterOrder.removeAll { $0 == name }
                return true
            }
            guard removed else {
                return vllmError(settings, 404, "NotFoundError", "The lora adapter '\(name)' cannot be found.")
            }
            return text("Success: LoRA adapter '\(name)' removed successfully.")
        }
    }

    /// The rank `r` of an adapter directory's adapter_config.json, when it says.
    static func adapterRank(_ directory: String) -> Int? {
        struct Config: Decodable { var r: Int? }
        guard let file = fopen(directory + "/adapter_config.json", "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let read = fread(&buffer, 1, buffer.count, file)
            if read <= 0 { break }
            bytes += buffer[0..<read]
        }
        return (try? JSONDecoder().decode(Config.self, from: Data(bytes)))?.r
    }
}

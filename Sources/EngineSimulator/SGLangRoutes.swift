import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// SGLang's management routes per profile. `hs:` is `sglang/srt/entrypoints/http_server.py` of
/// the 0.5.23 wheel; other paths are files of that wheel.
extension SimulatorRoutes {
    static func addSGLangRoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        let current = settings.profile == .sglangCurrent
        let up: @Sendable () -> Bool = { (settings.isReady || state.knobs.started) && !state.knobs.dead }
        // A generation probe: while paused it waits for the generation until its 20 s timeout
        // and then answers 503 (hs:721-798); the simulator answers 503 at once.
        let health: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            up() && !state.withEngine({ $0.paused }) ? Response(status: .ok) : Response(status: .serviceUnavailable)
        }
        router.get("/health", use: health)
        router.get("/health_generate", use: health)
        let modelInfo: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            struct Info: Encodable {
                var model_path: String
                var served_model_name: String?
                var tokenizer_path: String
                var is_generation = true
                var preferred_sampling_params: String? = nil
                var weight_version: String
            }
            let reloads = state.withEngine { $0.weightReloads.count }
            let version = reloads == 0 ? "default" : "v\(reloads)"
            return try json(
                Info(
                    model_path: settings.model, served_model_name: current ? settings.model : nil, tokenizer_path: settings.model,
                    weight_version: version))
        }
        let serverInfo: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            struct Info: Encodable {
                var model_path: String
                var tp_size: Int
                var dp_size: Int
                var enable_lora: Bool
                var version: String
            }
            return try json(
                Info(
                    model_path: settings.model, tp_size: settings.tensorParallelSize, dp_size: settings.dataParallelSize,
                    enable_lora: settings.lora, version: settings.engineVersion))
        }
        // 0.5.23 renamed these; the old names still answer, with a deprecation warning (hs:802-893).
        router.get("/get_model_info", use: modelInfo)
        router.get("/get_server_info", use: serverInfo)
        if current {
            router.get("/model_info", use: modelInfo)
            router.get("/server_info", use: serverInfo)
            // 200 iff up and not paused, no generation (hs:714-718; tokenizer_manager.py:728-734).
            router.get("/ready") { _, _ in
                up() && !state.withEngine({ $0.paused }) ? Response(status: .ok) : Response(status: .serviceUnavailable)
            }
            // 200 iff healthy, paused included; needs the API key (hs:2190-2199).
            router.get("/ping") { _, _ in up() ? Response(status: .ok) : Response(status: .serviceUnavailable) }
            router.get("/v1/loads") { _, _ in
                struct Load: Encodable {
                    var dp_rank: Int
                    var num_running_reqs: Int
                    var num_waiting_reqs: Int
                    var token_usage: Double
                }
                struct Loads: Encodable {
                    var timestamp: Double
                    var version: String
                    var loads: [Load]
                }
                let knobs = state.knobs
                let loads = (0..<settings.dataParallelSize).map {
                    Load(dp_rank: $0, num_running_reqs: knobs.running_requests, num_waiting_reqs: knobs.waiting_requests,
                         token_usage: knobs.running_requests > 0 ? 0.3 : 0)
                }
                return try json(Loads(timestamp: 1_764_374_400, version: settings.engineVersion, loads: loads))
            }
        }
        router.get("/v1/models") { _, _ in try json(modelList(settings: settings, state: state, owner: "sglang")) }
        router.get("/metrics") { _, _ in
            text(MetricsText.sglang(settings: settings, state: state), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        addSGLangLoRARoutes(router, settings: settings, state: state)
        let flush: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            let flushed = state.withEngine { engine -> Bool in
                guard engine.knobs.running_requests == 0, engine.knobs.waiting_requests == 0 else { return false }
                engine.cacheResets += 1
                engine.cacheResetsByKind["prefix", default: 0] += 1
                return true
            }
            guard flushed else {
                return text(
                    "Cache not flushed. Please check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)",
                    status: .badRequest)
            }
            return text("Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)")
        }
        router.get("/flush_cache", use: flush)
        router.post("/flush_cache", use: flush)
        // The scheduler asserts an idle (or paused) server (scheduler_components/weight_updater.py:337-381).
        for (path, release) in [("/release_memory_occupation", true), ("/resume_memory_occupation", false)] {
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                struct Body: Decodable { var tags: [String]? }
                let buffer = try await request.body.collect(upTo: 1 << 16)
                let tags = (try? JSONDecoder().decode(Body.self, from: Data(buffer: buffer)))?.tags ?? ["weights", "kv_cache", "cuda_graph"]
                let refused = state.withEngine { engine -> Bool in
                    if release, engine.knobs.running_requests > 0, !engine.paused { return true }
                    if release {
                        engine.asleep.formUnion(tags)
                        engine.sleepLevel = 1
                    } else {
                        engine.asleep.subtract(tags)
                        if engine.asleep.isEmpty { engine.sleepLevel = 0 }
                    }
                    return false
                }
                if refused {
                    return text(#"{"error":{"message":"The server is not idle: release_memory_occupation needs no running requests"}}"#,
                                status: .badRequest, contentType: "application/json")
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "null")))
            }
            router.get(RouterPath(path), use: handler)
            router.post(RouterPath(path), use: handler)
        }
        // Pause modes abort, retract, in_place (hs:1831-1854; io_struct.py:1927-1955).
        router.post("/pause_generation") { request, _ in
            struct Body: Decodable { var mode: String? }
            let buffer = try await request.body.collect(upTo: 1 << 16)
            let mode = (try? JSONDecoder().decode(Body.self, from: Data(buffer: buffer)))?.mode ?? "abort"
            state.withEngine { engine in
                engine.paused = true
                engine.lastMode = mode
            }
            return try json(["message": "Generation paused successfully.", "status": "ok"])
        }
        router.post("/continue_generation") { _, _ in
            state.withEngine { $0.paused = false }
            return try json(["message": "Generation continued successfully.", "status": "ok"])
        }
        // hs:1300-1326; io_struct.py:1970-2000.
        router.post("/update_weights_from_disk") { request, context in
            struct Body: Decodable {
                var model_path: String
                var abort_all_requests: Bool?
            }
            struct Output: Encodable {
                var success: Bool
                var message: String
                var num_paused_requests: Int
            }
            let body = try await request.decode(as: Body.self, context: context)
            guard access(body.model_path, F_OK) == 0 else {
                return try json(
                    Output(success: false, message: "Failed to get weights iterator: \(body.model_path) (repository not found).", num_paused_requests: 0),
                    status: .badRequest)
            }
            state.withEngine { $0.weightReloads.append(body.model_path) }
            return try json(Output(success: true, message: "Succeeded to update model weights.", num_paused_requests: 0))
        }
    }

    /// hs:1652-1684; managers/tokenizer_control_mixin.py:659-857; lora/lora_manager.py:340-380.
    private static func addSGLangLoRARoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        let current = settings.profile == .sglangCurrent
        router.post("/load_lora_adapter") { request, context in
            struct Load: Decodable {
                var lora_name: String
                var lora_path: String
                var pinned: Bool?
            }
            let body = try await request.decode(as: Load.self, context: context)
            let error = state.withEngine { engine -> String? in
                if !settings.lora { return "LoRA is not enabled. Please set `--enable-lora` to enable LoRA." }
                if engine.adapters[body.lora_name] != nil {
                    return current
                        ? "Failed to load LoRA adapter \(body.lora_name) because it is already loaded"
                        : "The LoRA adapter with name '\(body.lora_name)' has already been loaded."
                }
                guard access(body.lora_path, F_OK) == 0 else {
                    // A path that is not a directory is tried as a hub repo id (lora/lora_config.py:79-80).
                    return current
                        ? "Repo id must be in the form 'repo_name' or 'namespace/repo_name': '\(body.lora_path)'. Use `repo_type` argument if needed."
                        : "LoRA adapter path \(body.lora_path) not found."
                }
                if let rank = adapterRank(body.lora_path), rank > 16 {
                    return "LoRA adapter \(body.lora_name) with rank \(rank) is incompatible with the current LoRA memory pool configuration. Please ensure that the LoRA adapter's rank is within the configured `--max-lora-rank` and that the target modules are included in `--lora-target-modules`."
                }
                engine.adapters[body.lora_name] = body.lora_path
                engine.adapterOrder.append(body.lora_name)
                return nil
            }
            return try loraUpdateOutput(settings: settings, state: state, error: error)
        }
        router.post("/unload_lora_adapter") { request, context in
            struct Unload: Decodable { var lora_name: String }
            let body = try await request.decode(as: Unload.self, context: context)
            let error = state.withEngine { engine -> String? in
                if !settings.lora { return "LoRA is not enabled. Please set `--enable-lora` to enable LoRA." }
                guard engine.adapters.removeValue(forKey: body.lora_name) != nil else {
                    let names = engine.adapterOrder.map { "'\($0)'" }.joined(separator: ", ")
                    return current
                        ? "LoRA with name \(body.lora_name) does not exist. Loaded LoRAs: dict_keys([\(names)])"
                        : "LoRA adapter '\(body.lora_name)' is not loaded."
                }
                engine.adapterOrder.removeAll { $0 == body.lora_name }
                return nil
            }
            return try loraUpdateOutput(settings: settings, state: state, error: error)
        }
    }
}

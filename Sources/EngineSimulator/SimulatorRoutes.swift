import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The routes of each flavor, following the real engines' status codes and bodies
/// (docs: the engine reference in the design notes).
enum SimulatorRoutes {
    static func makeRouter(settings: SimulatorSettings, state: SimulatorState) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: FaultMiddleware(settings: settings, state: state))
        addControlRoutes(router, state: state)
        switch settings.flavor {
        case .vllm: addVLLMRoutes(router, settings: settings, state: state)
        case .sglang: addSGLangRoutes(router, settings: settings, state: state)
        }
        return router
    }

    // MARK: Control (/_sim)

    static func addControlRoutes(_ router: Router<BasicRequestContext>, state: SimulatorState) {
        router.post("/_sim/config") { request, context in
            let changes = try await request.decode(as: KnobChanges.self, context: context)
            let knobs = state.withEngine { engine -> Knobs in
                changes.apply(to: &engine.knobs)
                return engine.knobs
            }
            return try json(knobs)
        }
        router.get("/_sim/stats") { _, _ in
            struct Stats: Encodable {
                var requests: [String: Int]
                var adapters: [String: String]
                var sleep_level: Int
                var cache_resets: Int
            }
            let stats = state.withEngine {
                Stats(requests: $0.requestCounts, adapters: $0.adapters, sleep_level: $0.sleepLevel, cache_resets: $0.cacheResets)
            }
            return try json(stats)
        }
    }

    // MARK: vLLM

    static func addVLLMRoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        router.get("/health") { _, _ in
            state.knobs.dead ? Response(status: .serviceUnavailable) : Response(status: .ok)
        }
        router.get("/version") { _, _ in try json(["version": settings.engineVersion]) }
        router.get("/v1/models") { _, _ in try json(modelList(settings: settings, state: state, owner: "vllm")) }
        router.get("/metrics") { _, _ in
            text(MetricsText.vllm(model: settings.model, state: state), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        if settings.loraUpdating {
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
                let outcome = state.withEngine { engine -> Response? in
                    if engine.adapters[name] != nil, body.load_inplace != true {
                        return vllmError(
                            settings, 400, "InvalidUserInput",
                            "The lora adapter '\(name)' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.")
                    }
                    guard access(path, F_OK) == 0 else {
                        return vllmError(settings, 404, "NotFoundError", "Loading lora \(name) failed: No adapter found for \(path)")
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
        if settings.devMode {
            router.post("/sleep") { request, _ in
                let level = Int(request.uri.queryParameters.get("level") ?? "1") ?? 1
                guard [1, 2].contains(level) else {
                    return vllmError(settings, 400, "BadRequestError", "sleep level must be 1 or 2")
                }
                state.withEngine { $0.sleepLevel = level }
                return Response(status: .ok)
            }
            router.post("/wake_up") { _, _ in
                state.withEngine { $0.sleepLevel = 0 }
                return Response(status: .ok)
            }
            router.get("/is_sleeping") { _, _ in try json(["is_sleeping": state.withEngine { $0.sleepLevel > 0 }]) }
            router.post("/reset_prefix_cache") { _, _ in
                let success = state.withEngine { engine -> Bool in
                    guard engine.knobs.running_requests == 0 else { return false }
                    engine.cacheResets += 1
                    return true
                }
                return try json(["success": success])
            }
        }
    }

    // MARK: SGLang

    static func addSGLangRoutes(_ router: Router<BasicRequestContext>, settings: SimulatorSettings, state: SimulatorState) {
        let health: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            settings.isReady && !state.knobs.dead ? Response(status: .ok) : Response(status: .serviceUnavailable)
        }
        router.get("/health", use: health)
        router.get("/health_generate", use: health)
        router.get("/get_model_info") { _, _ in
            struct Info: Encodable {
                var model_path: String
                var tokenizer_path: String
                var is_generation = true
                var preferred_sampling_params: String? = nil
                var weight_version = "default"
            }
            return try json(Info(model_path: settings.model, tokenizer_path: settings.model))
        }
        router.get("/get_server_info") { _, _ in
            struct Info: Encodable {
                var model_path: String
                var tp_size = 1
                var dp_size = 1
                var enable_lora = true
                var version: String
            }
            return try json(Info(model_path: settings.model, version: settings.engineVersion))
        }
        router.get("/v1/models") { _, _ in try json(modelList(settings: settings, state: state, owner: "sglang")) }
        router.get("/metrics") { _, _ in
            text(MetricsText.sglang(model: settings.model, state: state), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.post("/load_lora_adapter") { request, context in
            struct Load: Decodable {
                var lora_name: String
                var lora_path: String
                var pinned: Bool?
            }
            let body = try await request.decode(as: Load.self, context: context)
            let error = state.withEngine { engine -> String? in
                if engine.adapters[body.lora_name] != nil {
                    return "The LoRA adapter with name '\(body.lora_name)' has already been loaded."
                }
                guard access(body.lora_path, F_OK) == 0 else { return "LoRA adapter path \(body.lora_path) not found." }
                engine.adapters[body.lora_name] = body.lora_path
                engine.adapterOrder.append(body.lora_name)
                return nil
            }
            return try loraUpdateOutput(state: state, error: error)
        }
        router.post("/unload_lora_adapter") { request, context in
            struct Unload: Decodable { var lora_name: String }
            let body = try await request.decode(as: Unload.self, context: context)
            let error = state.withEngine { engine -> String? in
                guard engine.adapters.removeValue(forKey: body.lora_name) != nil else {
                    return "LoRA adapter '\(body.lora_name)' is not loaded."
                }
                engine.adapterOrder.removeAll { $0 == body.lora_name }
                return nil
            }
            return try loraUpdateOutput(state: state, error: error)
        }
        let flush: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            let flushed = state.withEngine { engine -> Bool in
                guard engine.knobs.running_requests == 0, engine.knobs.waiting_requests == 0 else { return false }
                engine.cacheResets += 1
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
        for (path, level) in [("/release_memory_occupation", 1), ("/resume_memory_occupation", 0)] {
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
                state.withEngine { $0.sleepLevel = level }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "null")))
            }
            router.get(RouterPath(path), use: handler)
            router.post(RouterPath(path), use: handler)
        }
    }

    static func loraUpdateOutput(state: SimulatorState, error: String?) throws -> Response {
        struct Ref: Encodable {
            var lora_name: String
            var lora_path: String
            var pinned = false
        }
        struct Output: Encodable {
            var success: Bool
            var error_message: String?
            var loaded_adapters: [String: Ref]
        }
        let loaded = state.withEngine { engine in
            Dictionary(uniqueKeysWithValues: engine.adapters.map { ($0.key, Ref(lora_name: $0.key, lora_path: $0.value)) })
        }
        return try json(Output(success: error == nil, error_message: error, loaded_adapters: loaded), status: error == nil ? .ok : .badRequest)
    }

    // MARK: Shared

    static func modelList(settings: SimulatorSettings, state: SimulatorState, owner: String) -> ModelList {
        let adapters = state.withEngine { engine in engine.adapterOrder.map { ($0, engine.adapters[$0] ?? "") } }
        var cards = [
            ModelList.Card(id: settings.model, owned_by: owner, root: settings.model, parent: nil, max_model_len: 4096)
        ]
        cards += adapters.map { ModelList.Card(id: $0.0, owned_by: owner, root: $0.1, parent: settings.model, max_model_len: nil) }
        return ModelList(data: cards)
    }

    struct ModelList: Encodable {
        struct Card: Encodable {
            var id: String
            var object = "model"
            var created = 1_764_374_400
            var owned_by: String
            var root: String
            var parent: String?
            var max_model_len: Int?

            func encode(to encoder: any Encoder) throws {
                enum Keys: String, CodingKey { case id, object, created, owned_by, root, parent, max_model_len }
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(id, forKey: .id)
                try container.encode(object, forKey: .object)
                try container.encode(created, forKey: .created)
                try container.encode(owned_by, forKey: .owned_by)
                try container.encode(root, forKey: .root)
                try container.encode(parent, forKey: .parent)  // null for the base model, as vLLM does
                try container.encodeIfPresent(max_model_len, forKey: .max_model_len)
            }
        }
        var object = "list"
        var data: [Card]
    }

    /// vLLM's error body: nested `{"error":{...}}` (recent) or flat (older).
    static func vllmError(_ settings: SimulatorSettings, _ code: Int, _ type: String, _ message: String) -> Response {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String? = nil
            var code: Int
        }
        struct Nested: Encodable { var error: Detail }
        struct Flat: Encodable {
            var object = "error"
            var message: String
            var type: String
            var param: String? = nil
            var code: Int
        }
        let status = HTTPResponse.Status(code: code)
        let response =
            settings.flatErrors
            ? try? json(Flat(message: message, type: type, code: code), status: status)
            : try? json(Nested(error: Detail(message: message, type: type, code: code)), status: status)
        return response ?? Response(status: status)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

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
                var asleep: [String]
                var paused: Bool
                var last_mode: String?
                var cache_resets: Int
                var cache_resets_by_kind: [String: Int]
                var weight_reloads: [String]
            }
            let stats = state.withEngine {
                Stats(
                    requests: $0.requestCounts, adapters: $0.adapters, sleep_level: $0.sleepLevel, asleep: $0.asleep.sorted(),
                    paused: $0.paused, last_mode: $0.lastMode, cache_resets: $0.cacheResets,
                    cache_resets_by_kind: $0.cacheResetsByKind, weight_reloads: $0.weightReloads)
            }
            return try json(stats)
        }
    }

    /// SGLang's `LoRAUpdateOutput`: `loaded_adapters` maps names to path strings in 0.5.23
    /// (`sglang/srt/lora/lora_manager.py:267-277`), to LoRARef objects in 0.5.4.
    static func loraUpdateOutput(settings: SimulatorSettings, state: SimulatorState, error: String?) throws -> Response {
        struct Ref: Encodable {
            var lora_name: String
            var lora_path: String
            var pinned = false
        }
        struct Output<Adapter: Encodable>: Encodable {
            var success: Bool
            var error_message: String?
            var loaded_adapters: [String: Adapter]
        }
        let status: HTTPResponse.Status = error == nil ? .ok : .badRequest
        let adapters = state.withEngine { $0.adapters }
        if settings.profile == .sglangCurrent {
            return try json(Output(success: error == nil, error_message: error, loaded_adapters: adapters), status: status)
        }
        let references = Dictionary(uniqueKeysWithValues: adapters.map { ($0.key, Ref(lora_name: $0.key, lora_path: $0.value)) })
        return try json(Output(success: error == nil, error_message: error, loaded_adapters: references), status: status)
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
        // (vllm/entrypoints/serve/engine/protocol.py:79-87)
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

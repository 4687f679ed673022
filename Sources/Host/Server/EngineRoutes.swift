import HTTPTypes
import Hummingbird
import Logging

/// The native routes of one engine, mounted twice: under `/v1/engines/{engine}/` for any
/// engine and under `/v1/` for the default one.
struct EngineRoutes {
    let engines: EngineRegistry
    let body: RequestBody

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/engines") { _, _ in try JSONResponse.make(EngineList(engines)) }
        let named = router.group("/v1/engines/{engine}")
        addRoutes(to: named, resolve: resolveNamed)
        addRoutes(to: router.group("/v1")) { _ in engines.defaultEngine }
        // The named form has its own models and readiness; the default form has /v1/models
        // and /ready among the compatible routes.
        named.get("models") { _, context in
            let engine = try resolveNamed(context)
            return JSONResponse.raw(try await engine.callOrThrow(.listModels, EmptyRequest()))
        }
        named.get("ready") { _, context in
            try await CompatibleRoutes.ready([try resolveNamed(context)])
        }
    }

    @Sendable private func resolveNamed(_ context: BasicRequestContext) throws -> ManagedEngine {
        let name = try context.parameters.require("engine")
        guard let engine = engines.engine(named: name) else { throw APIError.notFound("no engine named \"\(name)\"") }
        return engine
    }

    private func addRoutes(
        to group: RouterGroup<BasicRequestContext>, resolve: @escaping @Sendable (BasicRequestContext) throws -> ManagedEngine
    ) {
        let body = self.body
        let isDefault: @Sendable (ManagedEngine) -> Bool = { [engines] in $0 === engines.defaultEngine }
        group.get("info") { _, context in
            let engine = try resolve(context)
            let info = try await engine.callOrThrow(.engineInfo, EmptyRequest())
            return try JSONResponse.make(
                EngineDescription(engine, isDefault: isDefault(engine), info: try? JSONCoding.decode(JSONValue.self, from: info)))
        }
        group.get("lora_adapters") { _, context in
            let engine = try resolve(context)
            let models = try await engine.callOrThrow(.listModels, EmptyRequest())
            return try JSONResponse.make(AdapterList(modelList: models))
        }
        group.post("lora_adapters") { request, context in
            let engine = try resolve(context)
            struct Load: Codable, Sendable {
                var lora_name: String
                var lora_path: String
                var load_inplace: Bool?
                var pinned: Bool?
            }
            let load = try await body.decode(Load.self, request, allowed: ["lora_name", "lora_path", "load_inplace", "pinned"])
            try CompatibleRoutes.checkAdapterName(load.lora_name)
            guard !load.lora_path.isEmpty else { throw APIError.invalid("lora_path must not be empty") }
            let key = "\(load.lora_name)\u{0}\(load.lora_path)\u{0}\(load.load_inplace ?? false)"
            let answer = try await engine.adapterCallOrThrow(.loadLoRAAdapter, key: key, load)
            context.logger.info("LoRA adapter loaded", metadata: ["engine": "\(engine.name)", "adapter": "\(load.lora_name)"])
            return JSONResponse.raw(answer)
        }
        group.delete("lora_adapters/{adapter}") { _, context in
            let engine = try resolve(context)
            let name = try context.parameters.require("adapter")
            try CompatibleRoutes.checkAdapterName(name)
            struct Unload: Codable, Sendable { var lora_name: String }
            let answer = try await engine.adapterCallOrThrow(.unloadLoRAAdapter, key: name, Unload(lora_name: name))
            context.logger.info("LoRA adapter unloaded", metadata: ["engine": "\(engine.name)", "adapter": "\(name)"])
            return JSONResponse.raw(answer)
        }
        group.post("sleep") { request, context in
            let engine = try resolve(context)
            struct Sleep: Codable, Sendable { var level: Int? }
            let sleep = try await body.decode(Sleep.self, request, allowed: ["level"])
            if let level = sleep.level, !(0...2).contains(level) { throw APIError.invalid("level must be 0, 1 or 2") }
            let answer = try await engine.callOrThrow(.sleep, sleep)
            engine.recordSleepState(true)
            context.logger.info("engine put to sleep", metadata: ["engine": "\(engine.name)", "level": "\(sleep.level ?? 1)"])
            return JSONResponse.raw(answer)
        }
        group.post("wake") { request, context in
            let engine = try resolve(context)
            struct Wake: Codable, Sendable { var tags: [String]? }
            let wake = try await body.decode(Wake.self, request, allowed: ["tags"])
            let answer = try await engine.callOrThrow(.wake, wake)
            engine.recordSleepState(false)
            context.logger.info("engine woken", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("reset_cache") { request, context in
            let engine = try resolve(context)
            _ = try await body.object(request, allowed: [])
            let answer = try await engine.callOrThrow(.resetCache, EmptyRequest())
            context.logger.info("engine cache reset", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("extensions/{operation}") { request, context in
            let engine = try resolve(context)
            let name = try context.parameters.require("operation")
            guard let operation = engine.driver.extensionOperation(named: name) else {
                throw APIError.notFound("driver \(engine.driver.name) has no extension operation \"\(name)\"")
            }
            let arguments = try await body.object(request, allowed: Set(operation.parameters.map(\.name)))
            let argumentBytes = try JSONCoding.encode(JSONValue.object(arguments))
            let result = try await engine.extensionOrThrow(operation, arguments: argumentBytes)
            struct Answer: Encodable { var result: JSONValue }
            return try JSONResponse.make(Answer(result: result))
        }
    }
}

/// `GET /v1/engines`.
struct EngineList: Encodable {
    var object = "list"
    var data: [EngineDescription]

    init(_ engines: EngineRegistry) {
        data = engines.engines.map { EngineDescription($0, isDefault: $0 === engines.defaultEngine, info: nil) }
    }
}

/// One engine as the API shows it (never its API key).
struct EngineDescription: Encodable {
    struct Driver: Encodable {
        var name: String
        var version: String
    }
    var name: String
    var engine: String
    var endpoint: String
    var engine_version: String?
    var `default`: Bool
    var driver: Driver
    var info: JSONValue?

    init(_ engine: ManagedEngine, isDefault: Bool, info: JSONValue?) {
        name = engine.name
        self.engine = engine.configuration.engine
        endpoint = engine.configuration.endpoint
        engine_version = engine.configuration.engine_version
        self.default = isDefault
        driver = Driver(name: engine.driver.name, version: engine.driver.version)
        self.info = info
    }
}

/// The loaded adapters, read from the LoRA cards (`parent` set) of the engine's model list.
struct AdapterList: Encodable {
    struct Adapter: Encodable {
        var name: String
        var path: String?
        var base_model: String?
    }
    var object = "list"
    var data: [Adapter]

    init(modelList: [UInt8]) throws {
        struct Models: Decodable {
            struct Card: Decodable {
                var id: String
                var root: String?
                var parent: String?
            }
            var data: [Card]
        }
        guard let models = try? JSONCoding.decode(Models.self, from: modelList) else {
            throw APIError(.badGateway, type: "upstream_error", message: "the engine's model list has no data array of models")
        }
        data = models.data.filter { $0.parent != nil }.map { Adapter(name: $0.id, path: $0.root, base_model: $0.parent) }
    }
}

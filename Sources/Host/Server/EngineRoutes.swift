import HTTPTypes
import Hummingbird
import Logging

/// The native routes of one engine, mounted twice: under `/v1/engines/{engine}/` for any
/// engine and under `/v1/` for the default one.
struct EngineRoutes {
    let engines: EngineDirectory
    let adapters: AdapterService
    let body: RequestBody

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/engines") { _, _ in try JSONResponse.make(EngineList(engines)) }
        let named = router.group("/v1/engines/{engine}")
        let resolveNamed: @Sendable (BasicRequestContext) throws -> any Engine = { [engines] context in
            try engines.require(try context.parameters.require("engine"))
        }
        addRoutes(to: named, resolve: resolveNamed)
        addRoutes(to: router.group("/v1")) { [engines] _ in engines.defaultEngine }
        // The named form has its own models and readiness; the default form has /v1/models
        // and /ready among the compatible routes.
        named.get("models") { _, context in
            JSONResponse.raw(try await resolveNamed(context).call(.listModels, EmptyRequest()))
        }
        named.get("ready") { _, context in
            try await CompatibleRoutes.ready([try resolveNamed(context)])
        }
    }

    private func addRoutes(
        to group: RouterGroup<BasicRequestContext>, resolve: @escaping @Sendable (BasicRequestContext) throws -> any Engine
    ) {
        let (body, engines, adapters) = (self.body, self.engines, self.adapters)
        group.get("info") { _, context in
            let engine = try resolve(context)
            let info = try await engine.call(.engineInfo, EmptyRequest())
            return try JSONResponse.make(
                EngineDescription(engine.summary, isDefault: engines.isDefault(engine), info: try? JSONCoding.decode(JSONValue.self, from: info)))
        }
        group.get("lora_adapters") { _, context in
            try JSONResponse.make(AdapterList(try await adapters.list(on: try resolve(context))))
        }
        group.post("lora_adapters") { request, context in
            let engine = try resolve(context)
            let load = try await body.decode(AdapterService.Load.self, request, allowed: ["lora_name", "lora_path", "load_inplace", "pinned"])
            return JSONResponse.raw(try await adapters.load(load, on: engine, logger: context.logger))
        }
        group.delete("lora_adapters/{adapter}") { _, context in
            let engine = try resolve(context)
            let name = try context.parameters.require("adapter")
            return JSONResponse.raw(try await adapters.unload(name, cleanupLocal: false, on: engine, logger: context.logger).answer)
        }
        group.post("sleep") { request, context in
            let engine = try resolve(context)
            struct Sleep: Codable, Sendable { var level: Int? }
            let sleep = try await body.decode(Sleep.self, request, allowed: ["level"])
            if let level = sleep.level, !(0...2).contains(level) { throw RuntimeError.invalid("level must be 0, 1 or 2") }
            let answer = try await engine.call(.sleep, sleep)
            context.logger.info("engine put to sleep", metadata: ["engine": "\(engine.name)", "level": "\(sleep.level ?? 1)"])
            return JSONResponse.raw(answer)
        }
        group.post("wake") { request, context in
            let engine = try resolve(context)
            struct Wake: Codable, Sendable { var tags: [String]? }
            let wake = try await body.decode(Wake.self, request, allowed: ["tags"])
            let answer = try await engine.call(.wake, wake)
            context.logger.info("engine woken", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("reset_cache") { request, context in
            let engine = try resolve(context)
            _ = try await body.object(request, allowed: [])
            let answer = try await engine.call(.resetCache, EmptyRequest())
            context.logger.info("engine cache reset", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("extensions/{operation}") { request, context in
            let engine = try resolve(context)
            let name = try context.parameters.require("operation")
            guard let operation = engine.extensionOperation(named: name) else {
                throw RuntimeError.notFound("driver \(engine.summary.driverName) has no extension operation \"\(name)\"")
            }
            let arguments = try await body.object(request, allowed: Set(operation.parameters.map(\.name)))
            let result = try await engine.invokeExtension(operation, arguments: try JSONCoding.encode(JSONValue.object(arguments)))
            struct Answer: Encodable { var result: JSONValue }
            return try JSONResponse.make(Answer(result: result))
        }
    }
}

/// `GET /v1/engines`.
struct EngineList: Encodable {
    var object = "list"
    var data: [EngineDescription]

    init(_ engines: EngineDirectory) {
        data = engines.engines.map { EngineDescription($0.summary, isDefault: engines.isDefault($0), info: nil) }
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

    init(_ summary: EngineSummary, isDefault: Bool, info: JSONValue?) {
        name = summary.name
        engine = summary.kind
        endpoint = summary.endpoint
        engine_version = summary.engineVersion
        self.default = isDefault
        driver = Driver(name: summary.driverName, version: summary.driverVersion)
        self.info = info
    }
}

/// `GET /v1/lora_adapters`: the loaded adapters.
struct AdapterList: Encodable {
    struct Adapter: Encodable {
        var name: String
        var path: String?
        var base_model: String?
    }
    var object = "list"
    var data: [Adapter]

    init(_ adapters: [LoadedAdapter]) {
        data = adapters.map { Adapter(name: $0.name, path: $0.path, base_model: $0.baseModel) }
    }
}

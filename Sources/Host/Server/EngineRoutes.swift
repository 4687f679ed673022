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
            let sleep = try await body.decode(StateChange.Sleep.self, request, allowed: ["level", "mode", "tags"])
            try sleep.validate()
            let answer = try await engine.call(.sleep, sleep)
            context.logger.info(
                "engine put to sleep",
                metadata: ["engine": "\(engine.name)", "level": "\(sleep.level.map(String.init) ?? "default")", "mode": "\(sleep.mode ?? "default")"])
            return JSONResponse.raw(answer)
        }
        group.post("wake") { request, context in
            let engine = try resolve(context)
            let wake = try await body.decode(StateChange.Wake.self, request, allowed: ["tags"])
            try StateChange.validate(tags: wake.tags)
            let answer = try await engine.call(.wake, wake)
            context.logger.info("engine woken", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("pause") { request, context in
            let engine = try resolve(context)
            let pause = try await body.decode(StateChange.Pause.self, request, allowed: ["mode"])
            try StateChange.validate(word: pause.mode, field: "mode")
            let answer = try await engine.call(.pause, pause)
            context.logger.info("engine generation paused", metadata: ["engine": "\(engine.name)", "mode": "\(pause.mode ?? "default")"])
            return JSONResponse.raw(answer)
        }
        group.post("resume") { request, context in
            let engine = try resolve(context)
            _ = try await body.object(request, allowed: [])
            let answer = try await engine.call(.resume, EmptyRequest())
            context.logger.info("engine generation resumed", metadata: ["engine": "\(engine.name)"])
            return JSONResponse.raw(answer)
        }
        group.post("reload_weights") { request, context in
            let engine = try resolve(context)
            let reload = try await body.decode(
                StateChange.ReloadWeights.self, request, allowed: ["model_path", "load_format", "weight_version"])
            try reload.validate()
            let answer = try await engine.call(.reloadWeights, reload)
            context.logger.info("engine weights reloaded", metadata: ["engine": "\(engine.name)", "model_path": "\(reload.model_path ?? "its own")"])
            return JSONResponse.raw(answer)
        }
        for (path, operation) in [("models/load", DriverOperation.loadModel), ("models/unload", .unloadModel)] {
            group.post(RouterPath(path)) { request, context in
                let engine = try resolve(context)
                let model = try await body.decode(StateChange.Model.self, request, allowed: ["model"])
                if let problem = ResourceName.adapterNameProblem(model.model) { throw RuntimeError.invalid("invalid model: it \(problem)") }
                let answer = try await engine.call(operation, model)
                context.logger.info(
                    operation == .loadModel ? "engine model loaded" : "engine model unloaded",
                    metadata: ["engine": "\(engine.name)", "model": "\(model.model)"])
                return JSONResponse.raw(answer)
            }
        }
        group.post("reset_cache") { request, context in
            let engine = try resolve(context)
            let reset = try await body.decode(StateChange.ResetCache.self, request, allowed: ["cache"])
            if let cache = reset.cache, !StateChange.ResetCache.caches.contains(cache) {
                throw RuntimeError.invalid("cache must be one of \(StateChange.ResetCache.caches.sorted().joined(separator: ", "))")
            }
            let answer = try await engine.call(.resetCache, reset)
            context.logger.info("engine cache reset", metadata: ["engine": "\(engine.name)", "cache": "\(reset.cache ?? "prefix")"])
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

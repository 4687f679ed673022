import Logging
import NIOPosix

/// The engines of one runtime, by name, with the default one.
public final class EngineRegistry: Sendable {
    public let engines: [ManagedEngine]
    /// Nil only when no engine is configured (a sidecar that launches its engines itself).
    public let defaultEngine: ManagedEngine?

    private init(engines: [ManagedEngine], defaultEngine: ManagedEngine?) {
        self.engines = engines
        self.defaultEngine = defaultEngine
    }

    public func engine(named name: String) -> ManagedEngine? { engines.first { $0.name == name } }

    /// The engines as the routes and services address them.
    public var directory: EngineDirectory {
        EngineDirectory(engines: engines, defaultEngine: defaultEngine ?? AbsentEngine())
    }

    /// Creates a driver instance for every configured engine. Fails with one line when an
    /// engine has no driver or its driver refuses the configuration.
    public static func start(
        configuration: RuntimeConfiguration, drivers: DriverRegistry, pool: WorkerPool, httpClient: CurlHTTPClient,
        logger: Logger
    ) async throws(ConfigurationError) -> EngineRegistry {
        var engines: [ManagedEngine] = []
        for engine in configuration.engines {
            let driver: LoadedDriver
            if let name = engine.driver {
                guard let named = drivers.driver(named: name) else {
                    throw ConfigurationError("engine \"\(engine.name)\": no driver named \"\(name)\" is loaded")
                }
                driver = named
            } else {
                guard let kind = drivers.driver(forEngineKind: engine.engine) else {
                    let known = drivers.drivers.flatMap(\.engineKinds).joined(separator: ", ")
                    throw ConfigurationError(
                        "engine \"\(engine.name)\": no loaded driver drives engine kind \"\(engine.engine)\" (loaded: \(known.isEmpty ? "none" : known))")
                }
                driver = kind
            }
            if engines.contains(where: { $0.driver === driver }), !driver.capabilities.contains(.multiInstance) {
                throw ConfigurationError("engine \"\(engine.name)\": driver \(driver.name) allows one instance per process")
            }
            let options = (try? engine.options.map { String(decoding: try JSONCoding.encode($0), as: UTF8.self) }) ?? nil
            let instanceConfiguration = InstanceConfiguration(
                name: engine.name, engineKind: engine.engine, endpoint: engine.endpoint, apiKey: engine.apiKey,
                adminAPIKey: engine.adminAPIKey,
                engineVersion: engine.engineVersion, configJSON: options ?? "{}")
            do throws(RuntimeError) {
                let instance = try await DriverInstance.create(
                    driver: driver, configuration: instanceConfiguration, pool: pool, httpClient: httpClient, logger: logger)
                engines.append(ManagedEngine(configuration: engine, instance: instance, deadlines: configuration.deadlines))
                logger.info(
                    "engine configured",
                    metadata: ["engine": "\(engine.name)", "kind": "\(engine.engine)", "driver": "\(driver.name)", "endpoint": "\(engine.endpoint)"])
            } catch {
                throw ConfigurationError("engine \"\(engine.name)\": driver \(driver.name) refused the configuration: \(error.message)")
            }
        }
        if configuration.engines.isEmpty { return EngineRegistry(engines: [], defaultEngine: nil) }
        guard let defaultEngine = engines.first(where: { $0.name == configuration.defaultEngine }) else {
            throw ConfigurationError("default engine \"\(configuration.defaultEngine)\" is not configured")
        }
        return EngineRegistry(engines: engines, defaultEngine: defaultEngine)
    }

    /// Shuts every instance down at once, each waiting at most `wait` for its running calls.
    public func shutdown(wait: Duration = .seconds(2)) async {
        await withDiscardingTaskGroup { group in
            for engine in engines { group.addTask { await engine.instance.shutdown(wait: wait) } }
        }
    }
}

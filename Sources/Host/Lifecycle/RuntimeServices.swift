import Logging
import ServiceLifecycle

/// The runtime's long-lived parts as swift-service-lifecycle services, in the order they start.
/// A service group shuts them down in reverse: the HTTP server drains first, then downloads
/// stop, then driver instances are destroyed, and the worker threads end last, so nothing is
/// torn down while a part above it still uses it.
public enum RuntimeServices {
    /// The model runtime comes last, so it is the first to hear of a shutdown: its engines
    /// get their grace period while the API still answers (the runtime's own start, the
    /// re-adoption of engines, happens before the group runs).
    public static func group(
        pool: WorkerPool, engines: EngineRegistry, downloads: DownloadManager, stagingMaxAge: Duration? = nil,
        server: some Service, modelRuntime: ModelRuntime? = nil, supervisorInterval: Duration = .seconds(1), logger: Logger
    ) -> ServiceGroup {
        // Named here: without a name the group prints each service with `"\(service)"`, which
        // walked the services' whole state by reflection (a fifth of the start-up's CPU).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: pool, serviceName: "driver-worker-pool"),
            .init(service: EnginesService(engines: engines), serviceName: "engines"),
            .init(service: DownloadsService(downloads: downloads, stagingMaxAge: stagingMaxAge), serviceName: "downloads"),
            .init(service: server, serviceName: "http-server"),
        ]
        if let modelRuntime {
            services.append(
                .init(service: ModelRuntimeService(runtime: modelRuntime, interval: supervisorInterval), serviceName: "model-runtime"))
        }
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }
}

/// Keeps the driver instances until shutdown, then destroys each once its calls have finished
/// (waiting a bounded time for a driver stuck in a call).
struct EnginesService: Service {
    let engines: EngineRegistry

    func run() async throws {
        try? await gracefulShutdown()
        await engines.shutdown()
    }
}

/// Runs downloads until shutdown, then stops the unfinished ones (their bytes stay for a
/// resume) and ends their threads.
struct DownloadsService: Service {
    let downloads: DownloadManager
    /// Staged data untouched this long is removed, at start and every hour after.
    let stagingMaxAge: Duration?

    func run() async throws {
        if let stagingMaxAge {
            let sweeping = Task {
                while !Task.isCancelled {
                    await downloads.sweepInBackground(olderThan: stagingMaxAge)
                    try await Task.sleep(for: .seconds(3600))
                }
            }
            try? await gracefulShutdown()
            sweeping.cancel()
        } else {
            try? await gracefulShutdown()
        }
        await downloads.shutdown()
    }
}

/// Runs the supervisor's passes until shutdown, then stops every engine within its grace
/// period (in parallel).
struct ModelRuntimeService: Service {
    let runtime: ModelRuntime
    let interval: Duration

    func run() async throws {
        await runtime.start()
        let passes = Task {
            while !Task.isCancelled {
                await runtime.superviseOnce()
                try? await Task.sleep(for: interval)
            }
        }
        try? await gracefulShutdown()
        passes.cancel()
        await runtime.shutdown()
    }
}

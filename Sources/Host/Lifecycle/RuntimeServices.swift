import Logging
import ServiceLifecycle

/// The runtime's long-lived parts as swift-service-lifecycle services, in the order they start.
/// A service group shuts them down in reverse: the HTTP server drains first, then downloads
/// stop, then driver instances are destroyed, and the worker threads end last, so nothing is
/// torn down while a part above it still uses it.
public enum RuntimeServices {
    public static func group(
        pool: WorkerPool, engines: EngineRegistry, downloads: DownloadManager, server: some Service, logger: Logger
    ) -> ServiceGroup {
        ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: pool), .init(service: EnginesService(engines: engines)),
                    .init(service: DownloadsService(downloads: downloads)), .init(service: server),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }
}

/// Keeps the driver instances until shutdown, then destroys each once its calls have finished.
struct EnginesService: Service {
    let engines: EngineRegistry

    func run() async throws {
        try? await gracefulShutdown()
        await engines.shutdown()
    }
}

/// Runs downloads until shutdown, then lets the running ones finish and ends their threads.
struct DownloadsService: Service {
    let downloads: DownloadManager

    func run() async throws {
        try? await gracefulShutdown()
        await downloads.shutdown()
    }
}

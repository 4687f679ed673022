import Logging
import ServiceLifecycle

/// The runtime's long-lived parts as swift-service-lifecycle services, in the order they start.
/// A service group shuts them down in reverse: the HTTP server drains first, then downloads
/// stop, then driver instances are destroyed, and the worker threads end last, so nothing is
/// torn down while a part above it still uses it.
public enum RuntimeServices {
    public static func group(
        pool: WorkerPool, engines: EngineRegistry, downloads: DownloadManager, stagingMaxAge: Duration? = nil,
        server: some Service, logger: Logger
    ) -> ServiceGroup {
        ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: pool), .init(service: EnginesService(engines: engines)),
                    .init(service: DownloadsService(downloads: downloads, stagingMaxAge: stagingMaxAge)), .init(service: server),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
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

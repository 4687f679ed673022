import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// The HTTP server as a service of the runtime, with a bounded shutdown: on SIGTERM it stops
/// accepting, closes the connections without a complete request, gives the requests in flight
/// `drainTimeout` to finish, then closes what is left and returns, saying in the log what was
/// cut short. (Hummingbird alone waits for every connection, so a client sending its body
/// slowly held shutdown forever.)
struct ManagementServer<App: Service>: Service {
    let app: App
    let connections: ConnectionRegistry
    let drainTimeout: Duration
    let logger: Logger

    func run() async throws {
        // `Task` keeps the task-local graceful-shutdown context, so the application still
        // hears the signal; running it apart lets this service return even if a request
        // stuck in a driver call never lets the server end.
        let serving = Task { try await app.run() }
        let (stopped, stop) = AsyncStream<Never>.makeStream()
        let outcome = ServingOutcome()
        Task {
            outcome.set(await serving.result)
            stop.finish()
        }
        await withGracefulShutdownHandler {
            for await _ in stopped {}
        } onGracefulShutdown: { [connections, drainTimeout, logger] in
            let (incomplete, draining) = connections.beginShutdown()
            logger.notice(
                "shutting down: no new connections",
                metadata: [
                    "incomplete_requests_closed": "\(incomplete)", "requests_finishing": "\(draining)",
                    "drain_timeout_seconds": "\(drainTimeout.components.seconds)",
                ])
            Task {
                if await withTimeout(drainTimeout, { _ = await serving.result }) { return }
                let cut = connections.closeAll()
                logger.warning(
                    "shutdown: requests still running after the drain timeout were cut short", metadata: ["requests": "\(cut)"])
                serving.cancel()
                if await withTimeout(.seconds(2), { _ = await serving.result }) { return }
                logger.warning("shutdown: a request handler did not end; the HTTP server stops without it")
                stop.finish()
            }
        }
        if case .failure(let error) = outcome.value, !(error is CancellationError) { throw error }
    }
}

/// How the application's task ended, once it has.
private final class ServingOutcome: Sendable {
    private let result = Mutex<Result<Void, any Error>?>(nil)
    var value: Result<Void, any Error>? { result.withLock { $0 } }
    func set(_ value: Result<Void, any Error>) { result.withLock { $0 = value } }
}

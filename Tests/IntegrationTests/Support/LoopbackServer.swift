import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A real HTTP server on 127.0.0.1 (Hummingbird) for tests of the host's HTTP client: it
/// serves `router` on a free port while `body` runs, then stops.
enum LoopbackServer {
    /// Stopping the server by cancellation makes Hummingbird log errors; they are expected.
    static let silent: Logger = {
        var logger = Logger(label: "loopback-server")
        logger.logLevel = .critical
        return logger
    }()

    static func with<T: Sendable>(
        _ router: Router<BasicRequestContext>, _ body: @Sendable (Int) async throws -> T
    ) async throws -> T {
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: Self.silent)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = portStream.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let result = try await body(port)
            group.cancelAll()
            return result
        }
    }
}

/// Counts requests per key, for retry tests.
final class RequestCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Records one request and returns how many there were for `key`, this one included.
    func record(_ key: String) -> Int { counts.withLock { $0[key, default: 0] += 1; return $0[key]! } }
    func count(_ key: String) -> Int { counts.withLock { $0[key, default: 0] } }
}

import Foundation
@testable import Host
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// Where a request's code runs: on its connection's event loop (no thread hand-off to read the
/// request, resume after a driver call, or write the answer), except where a route says it
/// waits on the disk or burns CPU.
@Suite struct EventLoopExecutorTests {
    @Test func aTaskOnTheLoopComesBackToItAfterWorkOnAnotherThread() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let pool = WorkerPool(threads: 1)
        let (before, worker, after) = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            let before = loop.inEventLoop
            let worker: Result<Bool, RuntimeError> = await pool.run { .success(loop.inEventLoop) }
            return (before, try? worker.get(), loop.inEventLoop)
        }
        #expect(before, "the task starts on the loop")
        #expect(worker == false, "the blocking work runs on a worker thread")
        #expect(after, "the worker's answer resumes the task on the loop, not on a pool thread")
        await pool.shutdown()
    }

    @Test func childTasksRunOnTheLoopToo() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let onLoop = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { loop.inEventLoop } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        #expect(onLoop == [true, true, true, true])
    }

    @Test func offEventLoopLeavesTheLoopAndComesBack() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (inside, after) = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            let inside = await offEventLoop { MultiThreadedEventLoopGroup.currentEventLoop == nil }
            return (inside, loop.inEventLoop)
        }
        #expect(inside, "the body runs on the concurrency pool, on no event loop")
        #expect(after, "the caller continues on its loop")
    }

    /// The real server: a route's code on the loop of its connection, a group behind
    /// `OffEventLoopMiddleware` off it.
    @Test func theServerRunsRoutesOnTheConnectionsLoopAndMarkedGroupsOffIt() async throws {
        let pool = WorkerPool(threads: 2)
        let router = Router()
        @Sendable func place() -> String { MultiThreadedEventLoopGroup.currentEventLoop == nil ? "pool" : "loop" }
        router.get("/where") { _, _ in
            let first = place()
            let _: Result<Void, RuntimeError> = await pool.run { .success(()) }
            return "\(first) \(place())"
        }
        let off = router.group("/off").add(middleware: OffEventLoopMiddleware())
        off.get("where") { _, _ in place() }
        // Stopping the server by cancellation makes Hummingbird log an error; it is expected.
        var silent = Logger.quiet
        silent.logLevel = .critical
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let service = HTTPService(
            responder: router.buildResponder(),
            server: GuardedHTTP1Channel.builder(limits: ConnectionLimits(), registry: ConnectionRegistry(logger: silent), logger: silent),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.yield(channel.localAddress?.port ?? 0) }, logger: silent)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            var iterator = ports.makeAsyncIterator()
            let serverPort = try #require(await iterator.next())
            let client = CurlHTTPClient()
            func get(_ path: String) async throws -> String {
                let request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(serverPort)\(path)", timeout: .seconds(10))
                let response = try await pool.run { client.perform(request).mapError(RuntimeError.init) }.get()
                #expect(response.status == 200, "\(path)")
                return String(decoding: response.body, as: UTF8.self)
            }
            #expect(try await get("/where") == "loop loop", "on the loop before and after a worker call")
            #expect(try await get("/off/where") == "pool")
            group.cancelAll()
        }
        await pool.shutdown()
    }
}

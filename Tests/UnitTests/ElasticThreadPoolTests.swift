import Foundation
import NIOPosix
import Synchronization
import Testing

@testable import Host

/// Threads made on demand, bounded, ended when idle; queued work cancelled by a shutdown.
@Suite struct ElasticThreadPoolTests {
    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func threadsStartWithWorkStayBoundedAndEndWhenIdle() async throws {
        let pool = ElasticThreadPool(maximum: 3, idleTimeout: .seconds(1), name: "test")
        #expect(pool.threadCount == 0, "no thread before any work")
        let release = Mutex(false)
        let running = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        for _ in 0..<8 {
            pool.submit { state in
                #expect(state == .active)
                let now = running.add(1, ordering: .relaxed).newValue
                _ = peak.max(now, ordering: .relaxed)
                while !release.withLock({ $0 }) { usleep(1000) }
                running.subtract(1, ordering: .relaxed)
                finished.add(1, ordering: .relaxed)
            }
        }
        try await Self.waitUntil { running.load(ordering: .relaxed) == 3 }
        #expect(pool.threadCount == 3, "bounded by the maximum")
        release.withLock { $0 = true }
        try await Self.waitUntil { finished.load(ordering: .relaxed) == 8 }
        #expect(peak.load(ordering: .relaxed) == 3)
        try await Self.waitUntil { pool.threadCount == 0 }
        #expect(pool.threadCount == 0, "idle threads end")
        await pool.shutdownGracefully()
    }

    @Test func workRunsInOrderAndAfterShutdownIsCancelled() async throws {
        let pool = ElasticThreadPool(maximum: 1, name: "test")
        let order = Mutex<[Int]>([])
        for index in 0..<50 { pool.submit { _ in order.withLock { $0.append(index) } } }
        try await Self.waitUntil { order.withLock { $0.count } == 50 }
        #expect(order.withLock { $0 } == Array(0..<50))
        await pool.shutdownGracefully()
        let late = Mutex<NIOThreadPool.WorkItemState?>(nil)
        pool.submit { state in late.withLock { $0 = state } }
        #expect(late.withLock { $0 } == .cancelled)
        #expect(pool.threadCount == 0)
    }
}

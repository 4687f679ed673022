import Foundation
@testable import Host
import NIOCore
import Synchronization
import Testing

/// The primitives the services rely on: single flights, the serial gate, the worker pool and
/// its deadlines.
@Suite struct ConcurrencyTests {
    /// Lets a test hold an operation open until it says so.
    final class Latch: Sendable {
        private let opened = Atomic<Bool>(false)
        func open() { opened.store(true, ordering: .relaxed) }
        func wait() async { while !opened.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(2)) } }
    }

    /// A flag one thread sets and another reads (a class, so closures can share it).
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    /// A counter closures can share.
    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func add() { value.add(1, ordering: .relaxed) }
        var count: Int { value.load(ordering: .relaxed) }
    }

    @Test func concurrentCallersOfOneKeyShareOneRunAndItsResult() async throws {
        let flights = SingleFlight<Int>()
        let runs = Counter()
        let latch = Latch()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await flights.run("k") {
                        runs.add()
                        await latch.wait()
                        return 42
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            latch.open()
            var all: [Int] = []
            for try await value in group { all.append(value) }
            return all
        }
        #expect(results == Array(repeating: 42, count: 20))
        #expect(runs.count == 1)
        // The flight is over: the next caller runs again.
        #expect(try await flights.run("k") { runs.add(); return 7 } == 7)
        #expect(runs.count == 2)
    }

    @Test func differentKeysRunSeparatelyAndAnErrorReachesEveryWaiter() async throws {
        struct Boom: Error {}
        let flights = SingleFlight<Int>()
        let runs = Counter()
        let latch = Latch()
        let outcomes = await withTaskGroup(of: String.self) { group in
            for index in 0..<6 {
                group.addTask {
                    do {
                        let value = try await flights.run(index < 3 ? "fails" : "works") {
                            runs.add()
                            await latch.wait()
                            if index < 3 { throw Boom() }
                            return 1
                        }
                        return "ok \(value)"
                    } catch is Boom {
                        return "boom"
                    } catch {
                        return "other"
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
            latch.open()
            var all: [String] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.sorted() == ["boom", "boom", "boom", "ok 1", "ok 1", "ok 1"])
        #expect(runs.count == 2)
    }

    @Test func theSerialGateAdmitsOneAtATimeInArrivalOrder() async throws {
        let gate = AsyncSerialGate()
        let order = Locked<[Int]>([])
        let inside = Locked<(now: Int, most: Int)>((0, 0))
        await gate.acquire()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<10 {
                group.addTask {
                    await gate.acquire()
                    inside.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                    order.withLock { $0.append(index) }
                    try? await Task.sleep(for: .milliseconds(2))
                    inside.withLock { $0.now -= 1 }
                    // Released from another thread, as a driver call finishing on a worker does.
                    Thread.detachNewThread { gate.release() }
                }
                // Let each waiter queue before the next one arrives.
                try? await Task.sleep(for: .milliseconds(20))
            }
            gate.release()
        }
        #expect(order.withLock { $0 } == Array(0..<10))
        #expect(inside.withLock { $0.most } == 1)
    }

    @Test func aWaiterGivesUpAtItsDeadlineAndLeavesTheGateWhole() async throws {
        let gate = AsyncSerialGate()
        let watchdog = DeadlineWatchdog()
        await gate.acquire()
        #expect(await gate.acquire(until: .now() + .milliseconds(50), watchdog: watchdog) == false)
        // A patient waiter still gets the gate at the release; the one that gave up does not.
        async let patient = gate.acquire(until: .now() + .seconds(60), watchdog: watchdog)
        try await Task.sleep(for: .milliseconds(50))
        gate.release()
        #expect(await patient == true)
        gate.release()
        #expect(await gate.acquire(until: .now() + .milliseconds(50), watchdog: watchdog) == true, "the gate is free again")
        gate.release()
        await watchdog.stop()
    }

    @Test func aDeadlineAnswersWhileTheWorkGoesOn() async throws {
        let pool = WorkerPool(threads: 2)
        let release = Flag()
        let finished = Flag()
        let gaveUp = Flag()
        // The work cannot end before the test releases it, so the answer can only be the deadline.
        let result: Result<Int, RuntimeError> = await pool.run(giveUpAt: .now() + .milliseconds(100), onGiveUp: { gaveUp.set() }) {
            while !release.isSet { usleep(1_000) }
            finished.set()
            return .success(1)
        }
        #expect(result == .failure(RuntimeError(.timeout, "the driver did not answer before the deadline")))
        #expect(gaveUp.isSet)
        #expect(!finished.isSet)
        release.set()
        // Shutdown waits for the work that still runs, then refuses new work.
        await pool.shutdown()
        #expect(finished.isSet)
        let late: Result<Int, RuntimeError> = await pool.run { .success(2) }
        #expect(late.failureKind == .unavailable)
    }

    @Test func workThatFinishesInTimeIsAnsweredWithItsResult() async throws {
        let pool = WorkerPool(threads: 1)
        let result: Result<String, RuntimeError> = await pool.run(giveUpAt: .now() + .seconds(30)) { .success("done") }
        #expect(result == .success("done"))
        await pool.shutdown()
    }
}

import NIOCore
import Synchronization

/// A FIFO lock for async code whose release may happen on any thread (a driver call finishing
/// on a worker thread releases the gate its task acquired). A waiter may give up at a
/// deadline, so a queue behind a hung engine fails at each call's own deadline; the deadline is
/// kept by the worker pool's watchdog, not a timer task per waiter.
final class AsyncSerialGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
        var watch: (watchdog: DeadlineWatchdog, id: UInt64)?
    }

    private struct State {
        var locked = false
        /// Closed for good: waiters were sent away and nobody gets the gate again.
        var closed = false
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())

    /// Waits for the gate as long as it takes; false when the gate was closed.
    @discardableResult
    func acquire() async -> Bool { await wait(until: nil, watchdog: nil) }

    /// Waits for the gate until `deadline`, which `watchdog` keeps; false when the deadline came
    /// first or the gate was closed (the gate is then not held).
    func acquire(until deadline: NIODeadline, watchdog: DeadlineWatchdog) async -> Bool {
        await wait(until: deadline, watchdog: watchdog)
    }

    /// Sends every waiter away (their `acquire` answers false) and refuses later ones: at
    /// shutdown nothing queued may wait for a holder that may never release.
    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            if let watch = waiter.watch { watch.watchdog.cancel(watch.id) }
            waiter.continuation.resume(returning: false)
        }
    }

    private func wait(until deadline: NIODeadline?, watchdog: DeadlineWatchdog?) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            enum Arrival { case acquired, refused, queued(UInt64) }
            let arrival = state.withLock { state -> Arrival in
                if state.closed { return .refused }
                guard state.locked else {
                    state.locked = true
                    return .acquired
                }
                state.nextID += 1
                state.waiters.append(Waiter(id: state.nextID, continuation: continuation))
                return .queued(state.nextID)
            }
            let id: UInt64
            switch arrival {
            case .acquired: return continuation.resume(returning: true)
            case .refused: return continuation.resume(returning: false)
            case .queued(let queued): id = queued
            }
            guard let deadline, let watchdog else { return }
            let watch = watchdog.watch(until: deadline) { [self] in giveUp(id) }
            let stillWaiting = state.withLock { state -> Bool in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
                state.waiters[index].watch = (watchdog, watch)
                return true
            }
            if !stillWaiting { watchdog.cancel(watch) }
        }
    }

    func release() {
        let next = state.withLock { state -> Waiter? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        if let watch = next?.watch { watch.watchdog.cancel(watch.id) }
        next?.continuation.resume(returning: true)
    }

    private func giveUp(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }
}

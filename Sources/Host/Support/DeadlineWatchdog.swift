import Dispatch
import NIOCore
import NIOPosix
import Synchronization

/// Answers blocking calls that outlive their deadline, without a timer per call.
///
/// A per-call timer task costs two thread wake-ups on every call (create, then cancel), which
/// was most of the runtime's added latency. One thread sleeps until the earliest registered
/// deadline instead, and forever while nothing is registered: a call costs a lock, and a
/// wake-up of that thread only when its deadline is earlier than every other one. An idle
/// sidecar's watchdog never wakes (it used to poll every 25 ms: most of a fleet's idle CPU).
/// Owned by one `WorkerPool`; its thread runs from `init` until `stop`.
final class DeadlineWatchdog: Sendable {
    private struct Entry {
        var deadline: NIODeadline
        var expire: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        var byID: [UInt64: Entry] = [:]
        /// When the thread wakes next by itself; a new earlier deadline wakes it sooner.
        var sleepingUntil = NIODeadline.distantFuture
        var stopped = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init() {
        thread.start()
        thread.submit { [self] _ in run() }
    }

    private func run() {
        while true {
            let (overdue, until, stopped) = state.withLock { state -> ([Entry], NIODeadline, Bool) in
                if state.stopped { return ([], .distantFuture, true) }
                let now = NIODeadline.now()
                let ids = state.byID.filter { $0.value.deadline <= now }.map(\.key)
                let overdue = ids.compactMap { state.byID.removeValue(forKey: $0) }
                state.sleepingUntil = state.byID.values.lazy.map(\.deadline).min() ?? .distantFuture
                return (overdue, state.sleepingUntil, false)
            }
            for entry in overdue { entry.expire() }
            if stopped { return }
            if until == .distantFuture {
                wake.wait()
            } else {
                _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: UInt64(max(0, until.uptimeNanoseconds))))
            }
        }
    }

    /// Registers a call; `expire` runs (on the watchdog thread) once `deadline` has passed,
    /// unless `cancel` was called first.
    func watch(until deadline: NIODeadline, expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, wakeUp) = state.withLock { state -> (UInt64, Bool) in
            state.next += 1
            state.byID[state.next] = Entry(deadline: deadline, expire: expire)
            guard deadline < state.sleepingUntil else { return (state.next, false) }
            state.sleepingUntil = deadline
            return (state.next, true)
        }
        if wakeUp { wake.signal() }
        return id
    }

    /// Forgets a call. The thread is not woken: if it sleeps until this call's deadline, it
    /// wakes then, finds nothing due, and sleeps until the next one.
    func cancel(_ id: UInt64) {
        _ = state.withLock { $0.byID.removeValue(forKey: id) }
    }

    /// Expires what is still watched and ends the thread.
    func stop() async {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        wake.signal()
        try? await thread.shutdownGracefully()
        let left = state.withLock { state in
            defer { state.byID.removeAll() }
            return Array(state.byID.values)
        }
        for entry in left { entry.expire() }
    }
}

import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Answers blocking calls that outlive their deadline, without a timer per call.
///
/// A per-call timer task costs two thread wake-ups on every call (create, then cancel), which
/// was most of the runtime's added latency; one thread that looks at the registered calls every
/// `tick` costs nothing per call. The deadline is then honoured within one tick (25 ms).
/// Owned by one `WorkerPool`; its thread runs from `init` until `stop`.
final class DeadlineWatchdog: Sendable {
    static let tick = TimeAmount.milliseconds(25)

    private struct Entry {
        var deadline: NIODeadline
        var expire: @Sendable () -> Void
    }

    private let entries = Mutex<(next: UInt64, byID: [UInt64: Entry])>((0, [:]))
    private let stopped = Atomic<Bool>(false)
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init() {
        thread.start()
        thread.submit { [self] _ in
            while !stopped.load(ordering: .relaxed) {
                usleep(UInt32(Self.tick.nanoseconds / 1000))
                expireOverdue()
            }
        }
    }

    /// Registers a call; `expire` runs (on the watchdog thread) once `deadline` has passed,
    /// unless `cancel` was called first.
    func watch(until deadline: NIODeadline, expire: @escaping @Sendable () -> Void) -> UInt64 {
        entries.withLock { state in
            state.next += 1
            state.byID[state.next] = Entry(deadline: deadline, expire: expire)
            return state.next
        }
    }

    func cancel(_ id: UInt64) {
        _ = entries.withLock { $0.byID.removeValue(forKey: id) }
    }

    /// Expires what is still watched and ends the thread.
    func stop() async {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        try? await thread.shutdownGracefully()
        let left = entries.withLock { state in
            defer { state.byID.removeAll() }
            return Array(state.byID.values)
        }
        for entry in left { entry.expire() }
    }

    private func expireOverdue() {
        let now = NIODeadline.now()
        let overdue = entries.withLock { state -> [Entry] in
            let ids = state.byID.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.byID.removeValue(forKey: $0) }
        }
        for entry in overdue { entry.expire() }
    }
}

import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Answers driver calls that outlive their deadline, without a timer per call.
///
/// A per-call timer task costs two thread wake-ups on every call (create, then cancel), which
/// was most of the runtime's added latency; one thread that looks at the registered calls every
/// `tick` costs nothing per call. The deadline is then honoured within one tick (25 ms).
final class DeadlineWatchdog: Sendable {
    /// One watchdog serves the whole process; its thread runs for the life of the process.
    static let shared = DeadlineWatchdog()
    static let tick = TimeAmount.milliseconds(25)

    private struct Entry {
        var deadline: NIODeadline
        var expire: @Sendable () -> Void
    }

    private let entries = Mutex<(next: UInt64, byID: [UInt64: Entry])>((0, [:]))

    private init() {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        thread.submit { [self] _ in
            while true {
                usleep(UInt32(Self.tick.nanoseconds / 1000))
                self.expireOverdue()
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

    private func expireOverdue() {
        let now = NIODeadline.now()
        let overdue = entries.withLock { state -> [Entry] in
            let ids = state.byID.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.byID.removeValue(forKey: $0) }
        }
        for entry in overdue { entry.expire() }
    }
}

import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Threads for blocking work (driver calls, libcurl transfers, parsing large texts), never the
/// network event loop, with deadlines that answer on time even when the work does not end.
/// A service of the runtime: it stops after every service that uses it.
public final class WorkerPool: Service, Sendable {
    private let pool: ElasticThreadPool
    /// Keeps every deadline of the work this pool runs (and of the queues in front of it).
    let watchdog = DeadlineWatchdog()

    /// At most `threads` at once, started as calls need them and ended when idle.
    public init(threads: Int) {
        pool = ElasticThreadPool(maximum: threads, name: "ert-worker")
    }

    /// Worker threads running now.
    public var threadCount: Int { pool.threadCount }

    /// Runs blocking `work` on a worker thread. With `giveUpAt`, answers `timeout` at that time
    /// if the work is still running: the work itself carries on, and
    /// `onGiveUp` asks it to stop. `onRefused` runs instead of `work` when the pool is shut
    /// down, for what `work` would have cleaned up.
    public func run<T: Sendable>(
        giveUpAt: NIODeadline? = nil, onGiveUp: (@Sendable () -> Void)? = nil, onRefused: (@Sendable () -> Void)? = nil,
        _ work: @escaping @Sendable () -> Result<T, RuntimeError>
    ) async -> Result<T, RuntimeError> {
        let once = OnceResume<Result<T, RuntimeError>>()
        let watchdog = self.watchdog
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            let watch = giveUpAt.map { giveUpAt in
                watchdog.watch(until: giveUpAt) {
                    // The work is asked to stop before the caller hears the timeout, so a
                    // caller that acts on the timeout finds the stop already requested.
                    once.resume(with: .failure(RuntimeError(.timeout, "the driver did not answer before the deadline")), before: onGiveUp)
                }
            }
            pool.submit { state in
                guard case .active = state else {
                    onRefused?()
                    watch.map(watchdog.cancel)
                    once.resume(with: .failure(RuntimeError(.unavailable, "the worker pool is shut down")))
                    return
                }
                let result = work()
                watch.map(watchdog.cancel)
                once.resume(with: result)
            }
        }
    }

    /// Waits for the work that runs (at most `wait`: a driver stuck in a call must not hold
    /// the process), then ends the threads. Work submitted afterwards fails with `unavailable`.
    public func shutdown(wait: Duration = .seconds(1)) async {
        let ended = await withTimeout(wait) { [pool] in await pool.shutdownGracefully() }
        await watchdog.stop()
        if !ended { Logger(label: "engine-runtime").warning("shutdown: a worker thread is still busy; exiting without it") }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}

/// Resumes a continuation exactly once, from whichever side gets there first.
final class OnceResume<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, Never>?, resumed: Bool)>((nil, false))

    func set(_ continuation: CheckedContinuation<T, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Returns true if this call resumed the continuation; `before` runs first, only then.
    @discardableResult
    func resume(with value: T, before: (@Sendable () -> Void)? = nil) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<T, Never>? in
            guard !state.resumed, let continuation = state.continuation else { return nil }
            state.resumed = true
            return continuation
        }
        guard let continuation else { return false }
        before?()
        continuation.resume(returning: value)
        return true
    }
}

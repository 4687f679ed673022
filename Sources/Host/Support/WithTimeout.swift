import Synchronization

/// Runs `body`, giving up waiting after `timeout`; `body` itself goes on (a task group would
/// wait for it, since waiting on a job does not end on cancellation). Returns whether it
/// finished in time.
func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    final class FirstAnswer: Sendable {
        let continuation: Mutex<CheckedContinuation<Bool, Never>?>
        init(_ continuation: CheckedContinuation<Bool, Never>) { self.continuation = Mutex(continuation) }
        func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
    return await withCheckedContinuation { continuation in
        let answer = FirstAnswer(continuation)
        let timer = Task {
            // Cancelled means the body finished first: that answer is its own.
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            answer.resume(false)
        }
        Task {
            await body()
            answer.resume(true)
            timer.cancel()
        }
    }
}

import Synchronization

/// Runs one operation per key at a time and gives every concurrent caller for that key the
/// same result: two identical adapter loads make one engine call.
///
/// The first caller runs the operation itself (no extra task, no extra thread hop); callers
/// that arrive while it runs wait for its result.
final class SingleFlight<Value: Sendable>: Sendable {
    private typealias Waiter = CheckedContinuation<Result<Value, any Error>, Never>
    private let waiters = Mutex<[String: [Waiter]]>([:])

    func run(_ key: String, _ operation: () async throws -> Value) async throws -> Value {
        let isFirst = waiters.withLock { waiters -> Bool in
            if waiters[key] != nil { return false }
            waiters[key] = []
            return true
        }
        if !isFirst {
            let result = await withCheckedContinuation { (continuation: Waiter) in
                let registered = waiters.withLock { waiters -> Bool in
                    guard waiters[key] != nil else { return false }
                    waiters[key]!.append(continuation)
                    return true
                }
                // The flight ended between the two checks: run a new one.
                if !registered { continuation.resume(returning: .failure(FlightEnded())) }
            }
            if case .failure(let error) = result, error is FlightEnded { return try await run(key, operation) }
            return try result.get()
        }
        let result: Result<Value, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        let waiting = waiters.withLock { $0.removeValue(forKey: key) ?? [] }
        for waiter in waiting { waiter.resume(returning: result) }
        return try result.get()
    }

    private struct FlightEnded: Error {}
}

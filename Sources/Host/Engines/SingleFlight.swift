import Synchronization

/// Runs one operation per key at a time and gives every concurrent caller for that key the
/// same result: two identical adapter loads make one engine call.
final class SingleFlight<Value: Sendable>: Sendable {
    private let flights = Mutex<[String: Task<Value, any Error>]>([:])

    func run(_ key: String, _ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = flights.withLock { flights -> Task<Value, any Error> in
            if let running = flights[key] { return running }
            let task = Task<Value, any Error> {
                defer { self.flights.withLock { _ = $0.removeValue(forKey: key) } }
                return try await operation()
            }
            flights[key] = task
            return task
        }
        return try await task.value
    }
}

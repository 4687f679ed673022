import Logging
import NIOCore
import Synchronization

/// One engine the runtime manages: its configuration, its driver instance, and the rules the
/// routes rely on (deadlines, de-duplicated adapter operations).
public final class ManagedEngine: Sendable {
    public let configuration: EngineConfiguration
    public let instance: DriverInstance
    let deadlines: Deadlines
    private let adapterFlights = SingleFlight<[UInt8]>()
    /// What the runtime last did to the engine's memory: nil until a sleep or wake succeeded
    /// through it (so the metric is absent rather than a guess).
    private let sleeping = Mutex<Bool?>(nil)

    /// True after a successful sleep, false after a successful wake, nil before either.
    public var knownSleepState: Bool? { sleeping.withLock { $0 } }

    func recordSleepState(_ asleep: Bool) { sleeping.withLock { $0 = asleep } }

    init(configuration: EngineConfiguration, instance: DriverInstance, deadlines: Deadlines) {
        self.configuration = configuration
        self.instance = instance
        self.deadlines = deadlines
    }

    public var name: String { configuration.name }
    public var driver: LoadedDriver { instance.driver }

    func timeout(for operation: DriverOperation) -> TimeAmount {
        TimeAmount(operation.isMutating ? deadlines.mutation : deadlines.probe)
    }

    /// Calls an operation with its deadline.
    public func call(_ operation: DriverOperation, _ request: some Encodable) async throws(DriverCallError) -> [UInt8] {
        let body: [UInt8]
        do { body = try JSONCoding.encode(request) } catch {
            throw DriverCallError(.internalError, "could not encode the request: \(error)")
        }
        return try await instance.invoke(operation, request: body, timeout: timeout(for: operation))
    }

    /// Adapter loads and unloads: concurrent identical requests share one engine call.
    public func adapterCall(
        _ operation: DriverOperation, key: String, _ request: some Encodable & Sendable
    ) async throws(DriverCallError) -> [UInt8] {
        do {
            return try await adapterFlights.run("\(operation.rawValue)\u{0}\(key)") { try await self.call(operation, request) }
        } catch let error as DriverCallError {
            throw error
        } catch {
            throw DriverCallError(.internalError, "\(error)")
        }
    }

    /// Readiness through the driver: (ready, reason).
    public func readiness() async -> (ready: Bool, reason: String?) {
        struct Answer: Decodable {
            var ready: Bool
            var reason: String?
        }
        guard instance.supports(.readiness) || instance.supports(.health) else {
            return (false, "driver \(driver.name) supports neither readiness nor health")
        }
        do {
            if instance.supports(.readiness) {
                let answer = try JSONCoding.decode(Answer.self, from: try await call(.readiness, EmptyRequest()))
                return (answer.ready, answer.reason)
            }
            struct Health: Decodable {
                var healthy: Bool
                var reason: String?
            }
            let answer = try JSONCoding.decode(Health.self, from: try await call(.health, EmptyRequest()))
            return (answer.healthy, answer.reason)
        } catch let error as DriverCallError {
            return (false, error.message)
        } catch {
            return (false, "the driver's readiness answer is malformed")
        }
    }
}

/// `{}`.
public struct EmptyRequest: Codable, Sendable {
    public init() {}
}

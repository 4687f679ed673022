import Logging
import NIOCore
import Synchronization

/// One engine the runtime manages: its configuration, its driver instance, and the rules every
/// call follows (deadlines per kind of call, de-duplicated adapter operations, the sleep state
/// the engine was last put in).
public final class ManagedEngine: Engine {
    public let configuration: EngineConfiguration
    public let instance: DriverInstance
    let deadlines: Deadlines
    private let adapterFlights = SingleFlight<[UInt8]>()
    /// What the runtime last did to the engine's memory: nil until a sleep or wake succeeded
    /// through it (so the metric is absent rather than a guess).
    private let sleeping = Mutex<Bool?>(nil)

    /// True after a successful sleep, false after a successful wake, nil before either.
    public var knownSleepState: Bool? { sleeping.withLock { $0 } }

    init(configuration: EngineConfiguration, instance: DriverInstance, deadlines: Deadlines) {
        self.configuration = configuration
        self.instance = instance
        self.deadlines = deadlines
    }

    public var name: String { configuration.name }
    public var driver: LoadedDriver { instance.driver }

    public var summary: EngineSummary {
        EngineSummary(
            name: name, kind: configuration.engine, endpoint: configuration.endpoint, engineVersion: configuration.engineVersion,
            driverName: driver.name, driverVersion: driver.version)
    }

    /// Mutations get the mutation deadline, reads the probe deadline.
    func timeout(mutating: Bool) -> TimeAmount {
        TimeAmount(mutating ? deadlines.mutation : deadlines.probe)
    }

    public func call(_ operation: DriverOperation, _ request: some Encodable) async throws(RuntimeError) -> [UInt8] {
        let body: [UInt8]
        do { body = try JSONCoding.encode(request) } catch {
            throw RuntimeError(.internalError, "could not encode the request: \(error)")
        }
        let answer = try await instance.invoke(operation, request: body, timeout: timeout(mutating: operation.isMutating))
        switch operation {
        case .sleep: sleeping.withLock { $0 = true }
        case .wake: sleeping.withLock { $0 = false }
        default: break
        }
        return answer
    }

    public func adapterCall(
        _ operation: DriverOperation, key: String, _ request: some Encodable & Sendable
    ) async throws(RuntimeError) -> [UInt8] {
        do {
            return try await adapterFlights.run("\(operation.rawValue)\u{0}\(key)") { try await self.call(operation, request) }
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError(.internalError, "\(error)")
        }
    }

    public func extensionOperation(named name: String) -> ExtensionOperation? { driver.extensionOperation(named: name) }

    public func invokeExtension(_ operation: ExtensionOperation, arguments: [UInt8]) async throws(RuntimeError) -> JSONValue {
        try await instance.invokeExtension(named: operation.name, argumentsJSON: arguments, timeout: timeout(mutating: operation.isMutating))
    }

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
        } catch let error as RuntimeError {
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

import Logging
import NIOCore
import NIOPosix
import PluginABI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How an operator configures one engine instance.
public struct InstanceConfiguration: Sendable, Codable {
    public var name: String
    public var engineKind: String
    public var endpoint: String
    public var apiKey: String?
    /// A second, administrator key some engines want on management routes (SGLang's
    /// `--admin-api-key`); the driver decides which key each route gets.
    public var adminAPIKey: String?
    public var engineVersion: String?
    /// Driver-specific options, a JSON object.
    public var configJSON: String

    public init(
        name: String, engineKind: String, endpoint: String, apiKey: String? = nil, adminAPIKey: String? = nil,
        engineVersion: String? = nil, configJSON: String = "{}"
    ) {
        self.adminAPIKey = adminAPIKey
        self.name = name
        self.engineKind = engineKind
        self.endpoint = endpoint
        self.apiKey = apiKey
        self.engineVersion = engineVersion
        self.configJSON = configJSON
    }
}

/// One live driver instance: the engine it manages and the rules for calling it.
///
/// Every driver call runs on the `NIOThreadPool` it was given, never on an event loop. Mutating
/// operations are serialized (all operations when the driver asks for it). A call that outlives
/// its deadline answers `timeout` at once; the driver's thread finishes in the background and
/// the serialization gate stays closed until it does, so the engine never sees overlapping
/// mutations.
public final class DriverInstance: @unchecked Sendable {
    public let name: String
    public let engineKind: String
    public let driver: LoadedDriver

    private let backend: Backend
    private let pool: WorkerPool
    private let logger: Logger
    private let mutatingGate = AsyncSerialGate()
    private let lifecycle = Mutex(Lifecycle.running(calls: 0))

    /// Where the instance lives.
    private enum Backend: Sendable {
        /// In this process: the driver's instance, its host context, the driver's functions.
        case local(InstanceHandle, HostContext, DriverEntryPoints)
        /// In the driver's host process, under this id.
        case isolated(DriverHostProcess, UInt64)
    }

    /// Where the instance is in its life, and how many calls use it: one value under one lock,
    /// so a call either counts itself before shutdown looks, or is refused.
    private enum Lifecycle {
        case running(calls: Int)
        /// Shutdown waits for `calls` to end; `drained` is resumed when the last one does.
        case draining(calls: Int, drained: CheckedContinuation<Void, Never>?)
        case destroyed
    }

    /// The most bytes of JSON a driver may answer with (metrics text excluded).
    public static let maximumResponseBytes = DriverCalls.maximumResponseBytes
    /// Extra time past a deadline before the host stops waiting for a driver that ignores it.
    static let deadlineGrace = TimeAmount.milliseconds(200)
    /// How long an isolated driver's host may take to create (or destroy) an instance.
    static let isolatedSetupTimeout = TimeAmount.seconds(30)

    private init(
        name: String, engineKind: String, driver: LoadedDriver, backend: Backend, pool: WorkerPool, logger: Logger
    ) {
        self.name = name
        self.engineKind = engineKind
        self.driver = driver
        self.backend = backend
        self.pool = pool
        self.logger = logger
    }

    /// Creates an instance through the driver's `create_instance` (in its host process when
    /// the driver is isolated).
    public static func create(
        driver: LoadedDriver, configuration: InstanceConfiguration, pool: WorkerPool, httpClient: CurlHTTPClient,
        logger baseLogger: Logger
    ) async throws(RuntimeError) -> DriverInstance {
        guard driver.engineKinds.contains(configuration.engineKind) else {
            throw RuntimeError(
                .invalidArgument,
                "driver \(driver.name) does not drive engine kind \"\(configuration.engineKind)\" (it drives: \(driver.engineKinds.joined(separator: ", ")))"
            )
        }
        // The header's promise: a config that breaks the driver's declared schema never
        // reaches create_instance.
        if let text = driver.configSchemaJSON, let schema = ConfigSchema(json: text) {
            guard let config = try? JSONCoding.decode(JSONValue.self, from: Array(configuration.configJSON.utf8)) else {
                throw RuntimeError(.invalidArgument, "the options of engine \"\(configuration.name)\" are not JSON")
            }
            if let problem = schema.problem(with: config) {
                throw RuntimeError(
                    .invalidArgument, "the options of engine \"\(configuration.name)\" do not fit driver \(driver.name)'s config schema: \(problem)")
            }
        }
        var logger = baseLogger
        logger[metadataKey: "driver"] = "\(driver.name)"
        logger[metadataKey: "instance"] = "\(configuration.name)"
        let backend: Backend
        switch driver.binding {
        case .inProcess(let entry):
            let context = HostContext(logger: logger, transport: httpClient)
            let result: Result<InstanceHandle, RuntimeError> = await pool.run {
                DriverCalls.createInstance(entry, configuration: configuration, context: context)
            }
            backend = .local(try result.get(), context, entry)
        case .isolated(let host):
            let id = try await host.createInstance(configuration, deadline: .now() + Self.isolatedSetupTimeout)
            backend = .isolated(host, id)
        }
        logger.debug("driver instance created", metadata: ["engine_kind": "\(configuration.engineKind)"])
        return DriverInstance(
            name: configuration.name, engineKind: configuration.engineKind, driver: driver, backend: backend, pool: pool, logger: logger)
    }

    public func supports(_ operation: DriverOperation) -> Bool { driver.supportedOperations.contains(operation) }

    /// Calls a JSON operation; returns what the driver wrote (JSON, or Prometheus text for
    /// `metrics`). Unsupported operations fail with `unsupported` without a call.
    public func invoke(_ operation: DriverOperation, request: [UInt8], timeout: TimeAmount) async throws(RuntimeError)
        -> [UInt8]
    {
        guard supports(operation) else {
            throw RuntimeError(.unsupported, "driver \(driver.name) does not support \(operation.rawValue)")
        }
        let mutating = operation.isMutating || driver.capabilities.contains(.serializeAll)
        switch backend {
        case .local(let handle, let context, let entry):
            guard let function = operation.function(in: entry.operations) else {
                throw RuntimeError(.unsupported, "driver \(driver.name) does not support \(operation.rawValue)")
            }
            return try await callHere(label: operation.rawValue, mutating: mutating, timeout: timeout, context: context) { call in
                DriverCalls.invoke(operation, function, instance: handle, call: call, request: request)
            }
        case .isolated(let host, let id):
            return try await admitted(label: operation.rawValue, mutating: mutating, timeout: timeout) { deadline, _ in
                await host.invoke(operation, instance: id, request: request, deadline: deadline)
            }
        }
    }

    /// Validates `argumentsJSON` against the declaration, then calls the extension operation.
    public func invokeExtension(named name: String, argumentsJSON: [UInt8], timeout: TimeAmount) async throws(RuntimeError)
        -> JSONValue
    {
        guard let operation = driver.extensionOperation(named: name) else {
            throw RuntimeError(.notFound, "driver \(driver.name) has no extension operation \"\(name)\"")
        }
        let arguments = try operation.validateArguments(json: argumentsJSON)
        let mutating = operation.isMutating || driver.capabilities.contains(.serializeAll)
        let label = "extension:\(name)"
        switch backend {
        case .local(let handle, let context, _):
            return try await callHere(label: label, mutating: mutating, timeout: timeout, context: context) { call in
                operation.invoke(instance: handle, call: call, arguments: arguments)
            }
        case .isolated(let host, let id):
            return try await admitted(label: label, mutating: mutating, timeout: timeout) { deadline, _ in
                await host.invokeExtension(name, instance: id, arguments: arguments, deadline: deadline)
            }
        }
    }

    /// Refuses new calls, sends queued changes away (`unavailable`), and destroys the instance
    /// once the running calls have ended. A call still running after `wait` (a driver stuck
    /// past its deadline) keeps the instance alive: it is left undestroyed, and the process
    /// exits around it. Returns whether the instance was destroyed.
    @discardableResult
    public func shutdown(wait: Duration = .seconds(5)) async -> Bool {
        let first = lifecycle.withLock { state -> Bool in
            guard case .running(let calls) = state else { return false }
            state = .draining(calls: calls, drained: nil)
            return true
        }
        guard first else { return false }
        mutatingGate.close()
        let drained = await withTimeout(wait) { [self] in await untilDrained() }
        guard drained else {
            let calls = lifecycle.withLock { state -> Int in
                if case .draining(let calls, _) = state { return calls }
                return 0
            }
            logger.warning("shutdown: driver calls still running; the instance is left undestroyed", metadata: ["calls": "\(calls)"])
            return false
        }
        lifecycle.withLock { $0 = .destroyed }
        switch backend {
        case .local(let handle, let context, let entry):
            let _: Result<Void, RuntimeError> = await pool.run {
                withExtendedLifetime(context) { entry.destroyInstance(handle.pointer) }
                return .success(())
            }
        case .isolated(let host, let id):
            await host.destroyInstance(id, deadline: .now() + Self.isolatedSetupTimeout)
        }
        logger.debug("driver instance destroyed")
        return true
    }

    private func untilDrained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lifecycle.withLock { state -> Bool in
                guard case .draining(let calls, _) = state, calls > 0 else { return true }
                state = .draining(calls: calls, drained: continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Counts a call in, unless shutdown has begun.
    private func enter() -> Bool {
        lifecycle.withLock { state in
            guard case .running(let calls) = state else { return false }
            state = .running(calls: calls + 1)
            return true
        }
    }

    /// Counts a call out; the last one out of a draining instance lets shutdown go on.
    private func leave() {
        let drained = lifecycle.withLock { state -> CheckedContinuation<Void, Never>? in
            switch state {
            case .running(let calls):
                state = .running(calls: calls - 1)
                return nil
            case .draining(let calls, let continuation):
                state = .draining(calls: calls - 1, drained: calls == 1 ? nil : continuation)
                return calls == 1 ? continuation : nil
            case .destroyed:
                return nil
            }
        }
        drained?.resume()
    }

    // MARK: Plumbing

    private var shuttingDown: RuntimeError { RuntimeError(.unavailable, "instance \(name) is shutting down") }

    /// A call into the driver in this process, on a worker thread, answered `timeout` at the
    /// deadline (plus grace) while the driver's thread finishes in the background: the gate
    /// and the call count are released when it does.
    private func callHere<T: Sendable>(
        label: String, mutating: Bool, timeout: TimeAmount, context: HostContext,
        _ body: @escaping @Sendable (UnsafePointer<ert_call>) -> Result<T, RuntimeError>
    ) async throws(RuntimeError) -> T {
        try await admitted(label: label, mutating: mutating, timeout: timeout, releasesItself: true) { [pool] deadline, release in
            let callContext = HostContext(logger: context.logger.with(operation: label), transport: context.transport, deadline: deadline)
            return await pool.run(giveUpAt: deadline + Self.deadlineGrace, onGiveUp: { callContext.cancel() }, onRefused: release) {
                defer { release() }
                return DriverCalls.withCall(callContext, body)
            }
        }
    }

    /// Admits a call: counted in, queued behind the instance's previous change when it is
    /// one, given its deadline. `body` runs the call; the gate and the count are released
    /// when it returns, or, with `releasesItself`, when it calls the release it is handed.
    private func admitted<T: Sendable>(
        label: String, mutating: Bool, timeout: TimeAmount, releasesItself: Bool = false,
        _ body: (NIODeadline, @escaping @Sendable () -> Void) async -> Result<T, RuntimeError>
    ) async throws(RuntimeError) -> T {
        // The deadline starts when the call arrives: time queued behind another change counts,
        // so a queue behind a hung engine fails at each call's own deadline.
        let deadline = NIODeadline.now() + timeout
        guard enter() else { throw shuttingDown }
        if mutating, await !mutatingGate.acquire(until: deadline, watchdog: pool.watchdog) {
            leave()
            if case .running = lifecycle.withLock({ $0 }) {
                logger.warning("driver call timed out in the queue", metadata: ["operation": "\(label)"])
                throw RuntimeError(
                    .timeout, "\(label) waited for the engine's previous change until its deadline; the engine may be hung")
            }
            throw shuttingDown
        }
        let release: @Sendable () -> Void = { [self] in
            if mutating { mutatingGate.release() }
            leave()
        }
        let result = await body(deadline, release)
        if !releasesItself { release() }
        if case .failure(let error) = result, error.kind == .timeout || error.kind == .cancelled {
            logger.with(operation: label).warning("driver call ended early", metadata: ["reason": "\(error.message)"])
        }
        return try result.get()
    }
}

extension Logger {
    /// This logger with the operation a driver call runs.
    func with(operation: String) -> Logger {
        var logger = self
        logger[metadataKey: "operation"] = "\(operation)"
        return logger
    }
}

/// C strings that live until the end of a scope.
final class CStringArena {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    static func with<R>(_ body: (CStringArena) -> R) -> R {
        let arena = CStringArena()
        defer { arena.pointers.forEach { free($0) } }
        return body(arena)
    }

    func copy(_ text: String) -> UnsafePointer<CChar> {
        let pointer = strdup(text)!
        pointers.append(pointer)
        return UnsafePointer(pointer)
    }
}

/// The driver's `ert_instance *`. The ABI lets the host call an instance from any thread (within
/// the serialization rules `DriverInstance` enforces), so the pointer may cross threads.
struct InstanceHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

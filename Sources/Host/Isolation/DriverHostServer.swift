import Dispatch
import DriverABI
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The `engine-runtime driver-host` process: loads one driver and serves its calls to the
/// sidecar over the socket it was started with (descriptor 3), until that socket closes.
///
/// It owns no policy: the sidecar validates requests, serializes mutations and keeps the
/// deadlines (ending this process when a call hangs past one). Each call runs at once on a
/// thread of its pool; the driver's host services go back to the sidecar as frames.
public final class DriverHostServer: Sendable {
    private let channel: WireChannel
    private let level: Logger.Level
    private let pool = ElasticThreadPool(maximum: 64, name: "ert-dh-call")
    private let state = Mutex(State())

    private struct State {
        var instances: [UInt64: (handle: InstanceHandle, context: HostContext)] = [:]
        var exchanges: [UInt64: Exchange] = [:]
        var nextExchange: UInt64 = 1
    }

    /// An HTTP request of the driver's waiting for the sidecar's answer.
    final class Exchange: Sendable {
        let done = DispatchSemaphore(value: 0)
        let answer = Mutex<Result<HTTPClientResponse, RuntimeError>?>(nil)
    }

    init(channel: WireChannel, level: Logger.Level) {
        self.channel = channel
        self.level = level
    }

    /// Runs the host on `descriptor` for the driver at `path`; returns the exit status.
    public static func run(descriptor: Int32, driverPath: String, memoryLimitMegabytes: UInt64?, level: Logger.Level) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        if let megabytes = memoryLimitMegabytes {
            var limit = rlimit(rlim_cur: rlim_t(megabytes << 20), rlim_max: rlim_t(megabytes << 20))
            _ = setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
        }
        let server = DriverHostServer(channel: WireChannel(descriptor: descriptor), level: level)
        return server.serve(driverPath: driverPath)
    }

    private func serve(driverPath: String) -> Int32 {
        let entry: DriverEntryPoints
        let driver: LoadedDriver
        switch DriverLoader.load(path: driverPath) {
        case .failure(let failure):
            channel.send(DriverHostToHost.hello(manifest: nil, failure: failure.error.description))
            return 0
        case .success(let loaded):
            guard case .inProcess(let entryPoints) = loaded.binding else { return 1 }
            entry = entryPoints
            driver = loaded
        }
        channel.send(DriverHostToHost.hello(manifest: driver.manifest, failure: nil))
        let ended = DispatchSemaphore(value: 0)
        pool.submit { [self] _ in read(driver: driver, entry: entry, ended: ended) }
        ended.wait()
        // The sidecar is gone (or ended this process): nothing is left to answer. Exit without
        // running the driver's destructors, which may be what hung.
        _exit(0)
    }

    /// Reads frames until one is a call: then a follower reads on and this thread makes the
    /// call, so a call starts on the thread that read it (a hand-over would add a wake-up to
    /// every isolated call).
    private func read(driver: LoadedDriver, entry: DriverEntryPoints, ended: DispatchSemaphore) {
        while let (message, body) = channel.receive(HostToDriverHost.self) {
            if case .httpAnswer(let exchange, let status, let contentType, let error) = message {
                guard let waiting = state.withLock({ $0.exchanges.removeValue(forKey: exchange) }) else { continue }
                waiting.answer.withLock {
                    $0 = error.map { .failure($0) } ?? .success(HTTPClientResponse(status: status, contentType: contentType, body: body, newConnections: 0))
                }
                waiting.done.signal()
                continue
            }
            pool.submit { [self] _ in read(driver: driver, entry: entry, ended: ended) }
            run(message, body: body, driver: driver, entry: entry)
            return
        }
        ended.signal()
    }

    private func run(_ message: HostToDriverHost, body: [UInt8], driver: LoadedDriver, entry: DriverEntryPoints) {
        switch message {
        case .httpAnswer:
            break  // read above
        case .create(let call, let instance, let configuration):
            do {
                let context = HostContext(logger: logger(instance: configuration.name), transport: ProxiedHTTPTransport(server: self, call: nil))
                switch DriverCalls.createInstance(entry, configuration: configuration, context: context) {
                case .success(let handle):
                    state.withLock { $0.instances[instance] = (handle, context) }
                    answerDone(call, .success(()))
                case .failure(let error):
                    answerDone(call, .failure(error))
                }
            }
        case .destroy(let call, let instance):
            do {
                if let live = state.withLock({ $0.instances.removeValue(forKey: instance) }) {
                    withExtendedLifetime(live.context) { entry.destroyInstance(live.handle.pointer) }
                }
                answerDone(call, .success(()))
            }
        case .invoke(let call, let instance, let operation, let deadline):
            do {
                guard let live = liveInstance(instance, for: call) else { return }
                guard let function = operation.function(in: entry.operations) else {
                    return answer(call, .failure(RuntimeError(.unsupported, "driver \(driver.name) does not support \(operation.rawValue)")))
                }
                let context = callContext(live.context, call: call, label: operation.rawValue, deadline: deadline)
                let result = DriverCalls.withCall(context) {
                    DriverCalls.invoke(operation, function, instance: live.handle, call: $0, request: body)
                }
                answer(call, result.map { (JSONValue?.none, $0) })
            }
        case .invokeExtension(let call, let instance, let name, let arguments, let deadline):
            do {
                guard let live = liveInstance(instance, for: call) else { return }
                guard let operation = driver.extensionOperation(named: name), operation.parameters.count == arguments.count else {
                    return answer(call, .failure(RuntimeError(.notFound, "driver \(driver.name) has no extension operation \"\(name)\"")))
                }
                let context = callContext(live.context, call: call, label: "extension:\(name)", deadline: deadline)
                let result = DriverCalls.withCall(context) { operation.invoke(instance: live.handle, call: $0, arguments: arguments) }
                answer(call, result.map { (Optional($0), [UInt8]()) })
            }
        case .planLaunch(let call):
            do {
                guard let planLaunch = entry.planLaunch else {
                    return answer(call, .failure(RuntimeError(.unsupported, "driver \(driver.name) has no plan_launch")))
                }
                answer(call, DriverCalls.planLaunch(planLaunch, request: body).map { (JSONValue?.none, $0) })
            }
        }
    }

    // MARK: Plumbing

    private func liveInstance(_ id: UInt64, for call: UInt64) -> (handle: InstanceHandle, context: HostContext)? {
        if let live = state.withLock({ $0.instances[id] }) { return live }
        answer(call, .failure(RuntimeError(
            .unavailable, "the driver's instance is missing in its host process (it was not created again after a restart; see the sidecar's log)")))
        return nil
    }

    private func callContext(_ instance: HostContext, call: UInt64, label: String, deadline: UInt64) -> HostContext {
        var logger = instance.logger
        logger[metadataKey: "operation"] = "\(label)"
        return HostContext(
            logger: logger, transport: ProxiedHTTPTransport(server: self, call: call),
            deadline: NIODeadline.uptimeNanoseconds(deadline),
            progress: { [channel] done, total, message in
                channel.send(DriverHostToHost.progress(call: call, done: done, total: total, message: message))
            })
    }

    private func answerDone(_ call: UInt64, _ result: Result<Void, RuntimeError>) {
        answer(call, result.map { (JSONValue?.none, [UInt8]()) })
    }

    private func answer(_ call: UInt64, _ result: Result<(JSONValue?, [UInt8]), RuntimeError>) {
        switch result {
        case .success(let (value, body)): channel.send(DriverHostToHost.answer(call: call, error: nil, value: value), body: body)
        case .failure(let error): channel.send(DriverHostToHost.answer(call: call, error: error, value: nil))
        }
    }

    /// A logger whose records go to the sidecar, tagged like the sidecar tags in-process ones.
    private func logger(instance: String) -> Logger {
        var logger = Logger(label: "engine-runtime.driver-host") { [channel, level] _ in WireLogHandler(channel: channel, logLevel: level) }
        logger[metadataKey: "instance"] = "\(instance)"
        return logger
    }

    /// Sends a driver's HTTP request to the sidecar and waits for its answer.
    func exchange(_ request: HTTPClientRequest, call: UInt64?, deadline: NIODeadline?) -> Result<HTTPClientResponse, RuntimeError> {
        let waiting = Exchange()
        let id = state.withLock { state -> UInt64 in
            defer { state.nextExchange += 1 }
            state.exchanges[state.nextExchange] = waiting
            return state.nextExchange
        }
        let sent = channel.send(
            DriverHostToHost.http(
                exchange: id, call: call, method: request.method, url: request.url, headers: request.headers,
                timeoutMilliseconds: request.timeout.nanoseconds / 1_000_000, idempotent: request.idempotent,
                maxResponseBytes: request.maxResponseBytes),
            body: request.body)
        // The sidecar bounds the request by its deadline and always answers; the wait is bounded
        // anyway, in case it never does.
        let bound = (deadline ?? .now() + request.timeout) + .seconds(5)
        if !sent || waiting.done.wait(timeout: DispatchTime(uptimeNanoseconds: UInt64(max(0, bound.uptimeNanoseconds)))) == .timedOut {
            state.withLock { _ = $0.exchanges.removeValue(forKey: id) }
            return .failure(RuntimeError(.timeout, "the sidecar did not answer the driver's HTTP request"))
        }
        return waiting.answer.withLock { $0 } ?? .failure(RuntimeError(.internalError, "no answer"))
    }
}

/// `http_request` in a driver's host process: performed by the sidecar's client.
struct ProxiedHTTPTransport: DriverHTTPTransport {
    let server: DriverHostServer
    let call: UInt64?

    func performForDriver(
        _ request: HTTPClientRequest, deadline: NIODeadline?, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, RuntimeError> {
        // Cancellation is the sidecar's to see: it ends the request when the call ends.
        server.exchange(request, call: call, deadline: deadline)
    }
}

/// Sends a driver host's log records to the sidecar, which logs them with its own handler.
struct WireLogHandler: LogHandler {
    let channel: WireChannel
    var logLevel: Logger.Level
    var metadata = Logger.Metadata()

    init(channel: WireChannel, logLevel: Logger.Level) {
        self.channel = channel
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        channel.send(DriverHostToHost.log(level: event.level.rawValue, message: "\(event.message)", metadata: fields))
    }
}

import DriverABI
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How isolated drivers' host processes are started.
public struct DriverIsolationSettings: Sendable {
    /// The `engine-runtime` executable that has the `driver-host` subcommand.
    public var executable: String
    /// The data size limit (`RLIMIT_DATA`: heap, anonymous mappings, thread stacks) of each
    /// host process; nil for none. Over it, allocations fail and the driver usually dies.
    public var memoryLimitBytes: UInt64?
    /// How long a host process may take to load its driver and say hello.
    public var startTimeout: Duration
    /// The most log level a host process forwards (the sidecar's own).
    public var logLevel: Logger.Level

    public init(executable: String, memoryLimitBytes: UInt64? = 2 << 30, startTimeout: Duration = .seconds(10), logLevel: Logger.Level = .info) {
        self.executable = executable
        self.memoryLimitBytes = memoryLimitBytes
        self.startTimeout = startTimeout
        self.logLevel = logLevel
    }
}

/// An isolated driver, as `/v1/drivers` shows it.
public struct DriverIsolationStatus: Codable, Sendable, Equatable {
    public var mode = "process"
    /// The host process now; nil while it is being restarted.
    public var pid: Int32?
    /// Host processes started after the first one.
    public var restarts: Int
    /// Why the last host process ended, e.g. "killed by signal 11 (SIGSEGV) during engine_info".
    public var last_exit: String?
    /// When it ended (Unix seconds).
    public var last_exit_at: Int?
}

/// The sidecar's side of an isolated driver: the child process that loaded the driver
/// (`engine-runtime driver-host`), the calls waiting for its answers, and its restarts.
///
/// A call is a frame out and an answer back. The child's driver asks for host services with
/// frames of its own (HTTP through the sidecar's client, logs, progress), served here. When the
/// child dies (a crash, an abort, an allocation over its limit) every call in flight answers
/// `upstream` (502) with the cause; a call still running past its deadline (plus the grace
/// in-process calls get) ends the child and answers `timeout` (504). A new child is then started
/// (at once the first time, with a growing backoff while it keeps dying), its instances are
/// created again with the configurations they had, and waiting calls go on. Nothing here
/// blocks an event loop: the reader is a thread per child, HTTP for drivers runs on a small
/// pool of its own.
public final class DriverHostProcess: Sendable {
    public let path: String
    let driverName: String
    private let settings: DriverIsolationSettings
    private let httpClient: CurlHTTPClient
    private let logger: Logger
    private let state: Mutex<State>
    /// The reader of each child's socket and the driver's HTTP requests (leader and followers).
    private let threads = ElasticThreadPool(maximum: 64, name: "ert-iso")
    private let watchdog = DeadlineWatchdog()

    /// Extra time past a deadline before a call that has not returned ends the child; the
    /// in-process grace, so both modes answer a hung call at the same time.
    static let deadlineGrace = TimeAmount.milliseconds(200)
    /// Restarts after the first: 250 ms, 0.5, 1, ... 30 s while the child keeps dying young.
    static let restartBackoff = Backoff(first: .milliseconds(250), cap: .seconds(30))
    /// A child that lived this long before it died restarts at once again.
    static let healthyLife = TimeAmount.seconds(60)

    typealias Answer = (value: JSONValue?, body: [UInt8])

    private struct Pending {
        let generation: Int
        let label: String
        let resume: OnceResume<Result<Answer, RuntimeError>>
        let deadline: NIODeadline?
        var watch: UInt64?
        let progress: (@Sendable (UInt64, UInt64, String?) -> Void)?
    }

    private struct Waiter {
        let resume: OnceResume<Connection?>
        var watch: UInt64?
    }

    private struct State {
        var connection: Connection?
        var restarting = false
        var stopped = false
        var pending: [UInt64: Pending] = [:]
        var nextCall: UInt64 = 1
        var nextInstance: UInt64 = 1
        /// Live instances and their configurations, created again in a new child.
        var instances: [UInt64: InstanceConfiguration] = [:]
        var restarts = 0
        /// Host processes that ended (restarted or not).
        var exits = 0
        var failuresInARow = 0
        var lastExit: String?
        var lastExitAt: Int?
        /// Calls waiting for a new child.
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 1
    }

    /// One child process and its socket.
    final class Connection: Sendable {
        let pid: Int32
        let channel: WireChannel
        let generation: Int
        let started = NIODeadline.now()
        /// Set when the sidecar ended the child, with the reason; the exit status says the rest.
        let endedBy = Mutex<String?>(nil)

        init(pid: Int32, channel: WireChannel, generation: Int) {
            self.pid = pid
            self.channel = channel
            self.generation = generation
        }

        func end(because reason: String) {
            let first = endedBy.withLock { endedBy -> Bool in
                guard endedBy == nil else { return false }
                endedBy = reason
                return true
            }
            if first { kill(pid, SIGKILL) }
        }
    }

    private init(path: String, driverName: String, settings: DriverIsolationSettings, httpClient: CurlHTTPClient, logger: Logger) {
        self.path = path
        self.driverName = driverName
        self.settings = settings
        self.httpClient = httpClient
        var logger = logger
        logger[metadataKey: "driver"] = "\(driverName)"
        self.logger = logger
        self.state = Mutex(State())
    }

    // MARK: Start

    /// Starts a host process for the driver at `path` and waits for its hello. Blocking (at
    /// most the start timeout): call it at start-up, or from a worker thread.
    static func launch(
        path: String, settings: DriverIsolationSettings, httpClient: CurlHTTPClient, logger: Logger
    ) -> Result<(DriverHostProcess, DriverManifest), DriverLoadError> {
        switch spawnChild(path: path, settings: settings, generation: 0) {
        case .failure(let failure):
            return .failure(.isolatedHost(failure.reason))
        case .success(let (connection, manifest)):
            let host = DriverHostProcess(path: path, driverName: manifest.name, settings: settings, httpClient: httpClient, logger: logger)
            host.state.withLock { $0.connection = connection }
            host.startReader(connection)
            return .success((host, manifest))
        }
    }

    /// Spawns a child and reads its hello; the connection, or one line saying why not.
    private static func spawnChild(
        path: String, settings: DriverIsolationSettings, generation: Int
    ) -> Result<(Connection, DriverManifest), StartFailure> {
        guard var ends = WireChannel.pair() else { return .failure(StartFailure("cannot create a socket pair: \(String(cString: strerror(errno)))")) }
        // dup2 onto itself would keep close-on-exec: the child's end must not already be 3.
        if ends.child <= 3 {
            let moved = fcntl(ends.child, F_DUPFD_CLOEXEC, 10)
            close(ends.child)
            ends.child = moved
        }
        var argv = [settings.executable, "driver-host", "--socket-fd", "3", "--driver", path, "--log-level", settings.logLevel.rawValue]
        if let limit = settings.memoryLimitBytes { argv += ["--memory-limit-mb", "\(max(1, limit >> 20))"] }
        var environment: [String] = []
        var entry = environ
        while let line = entry.pointee {
            environment.append(String(cString: line))
            entry += 1
        }
        // Swift's crash handler would symbolicate a driver's crash for seconds before the
        // child exits, holding the calls' answers; the exit status names the signal. An
        // operator who wants the backtrace sets SWIFT_BACKTRACE.
        if !environment.contains(where: { $0.hasPrefix("SWIFT_BACKTRACE=") }) { environment.append("SWIFT_BACKTRACE=enable=no") }
        let pid: Int32
        do {
            pid = try EngineSpawner.spawn(
                program: settings.executable, argv: argv, envp: environment, output: nil, workingDirectory: nil, passing: ends.child,
                newSession: false)
        } catch {
            close(ends.child)
            close(ends.parent)
            return .failure(StartFailure("cannot start the driver's host process: \(error.message)"))
        }
        close(ends.child)
        let connection = Connection(pid: pid, channel: WireChannel(descriptor: ends.parent), generation: generation)
        func ended(_ what: String) -> Result<(Connection, DriverManifest), StartFailure> {
            connection.end(because: what)
            let status = waitForExit(pid)
            return .failure(StartFailure("the driver's host process \(what) (\(describe(status)))"))
        }
        guard connection.channel.waitReadable(timeout: settings.startTimeout) else {
            return ended("did not load the driver within \(settings.startTimeout)")
        }
        guard let (hello, _) = connection.channel.receive(DriverHostToHost.self), case .hello(let manifest, let failure) = hello else {
            return ended("ended before it loaded the driver")
        }
        guard let manifest else {
            connection.end(because: "refused the driver")
            _ = waitForExit(pid)
            return .failure(StartFailure(failure ?? "the driver's host process did not load it"))
        }
        return .success((connection, manifest))
    }

    // MARK: Calls

    /// Creates an instance in the child; its id for later calls.
    func createInstance(_ configuration: InstanceConfiguration, deadline: NIODeadline) async throws(RuntimeError) -> UInt64 {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextInstance += 1 }
            return state.nextInstance
        }
        _ = try await call(label: "create_instance", deadline: deadline) { .create(call: $0, instance: id, configuration: configuration) }.get()
        state.withLock { $0.instances[id] = configuration }
        return id
    }

    func destroyInstance(_ id: UInt64, deadline: NIODeadline) async {
        state.withLock { _ = $0.instances.removeValue(forKey: id) }
        _ = await call(label: "destroy_instance", deadline: deadline) { .destroy(call: $0, instance: id) }
    }

    func invoke(
        _ operation: DriverOperation, instance: UInt64, request: [UInt8], deadline: NIODeadline,
        progress: (@Sendable (UInt64, UInt64, String?) -> Void)? = nil
    ) async -> Result<[UInt8], RuntimeError> {
        await call(label: operation.rawValue, deadline: deadline, body: request, progress: progress) {
            .invoke(call: $0, instance: instance, operation: operation, deadlineNanoseconds: deadline.uptimeNanoseconds)
        }.map(\.body)
    }

    func invokeExtension(
        _ name: String, instance: UInt64, arguments: [ExtensionOperation.Argument], deadline: NIODeadline
    ) async -> Result<JSONValue, RuntimeError> {
        await call(label: "extension:\(name)", deadline: deadline) {
            .invokeExtension(call: $0, instance: instance, name: name, arguments: arguments, deadlineNanoseconds: deadline.uptimeNanoseconds)
        }.map { $0.value ?? .null }
    }

    func planLaunch(request: [UInt8], deadline: NIODeadline) async -> Result<[UInt8], RuntimeError> {
        await call(label: "plan_launch", deadline: deadline, body: request) { .planLaunch(call: $0) }.map(\.body)
    }

    /// What `/v1/drivers` shows.
    public var status: DriverIsolationStatus {
        state.withLock { state in
            DriverIsolationStatus(
                pid: state.connection?.pid, restarts: state.restarts, last_exit: state.lastExit, last_exit_at: state.lastExitAt)
        }
    }

    /// How many host processes have ended so far.
    var exitCount: Int { state.withLock { $0.exits } }

    /// Ends the child for good (the sidecar is stopping); calls in flight answer `unavailable`.
    public func stop() {
        let (connection, waiters) = state.withLock { state -> (Connection?, [Waiter]) in
            state.stopped = true
            defer { state.waiters = [:] }
            return (state.connection, Array(state.waiters.values))
        }
        wake(waiters, with: nil)
        connection?.end(because: "stopped with the sidecar")
    }

    private func call(
        label: String, deadline: NIODeadline, body: [UInt8] = [], progress: (@Sendable (UInt64, UInt64, String?) -> Void)? = nil,
        _ message: @escaping @Sendable (UInt64) -> HostToDriverHost
    ) async -> Result<Answer, RuntimeError> {
        guard let connection = await connection(until: deadline) else {
            let cause = state.withLock { $0.lastExit } ?? "it is not running"
            return .failure(
                RuntimeError(.unavailable, "driver \(driverName)'s host process is restarting (it ended: \(cause)); try again shortly"))
        }
        return await send(label: label, on: connection, deadline: deadline, body: body, progress: progress, message: message)
    }

    /// A call outlived its deadline: the child is ended (the driver may never return), the
    /// call answers `timeout` now, and the others in flight hear of the end from the reader.
    private func expire(call id: UInt64, on connection: Connection) {
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        let reason = "\(pending.label) did not return by its deadline"
        connection.end(because: "ended by the sidecar: \(reason)")
        logger.error("isolated driver hung; ending its host process", metadata: ["operation": "\(pending.label)", "pid": "\(connection.pid)"])
        pending.resume.resume(
            with: .failure(
                RuntimeError(
                    .timeout,
                    "driver \(driverName) did not return from \(pending.label) by its deadline; its host process (pid \(connection.pid)) was ended and is restarting"
                )))
    }

    /// The running child, or the next one (waiting at most until `deadline`); nil when there
    /// is none by then, or the sidecar is stopping.
    private func connection(until deadline: NIODeadline) async -> Connection? {
        enum Now {
            case ready(Connection?)
            case waiting(UInt64)
        }
        let once = OnceResume<Connection?>()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            let now = state.withLock { state -> Now in
                if state.stopped { return .ready(nil) }
                if !state.restarting, let connection = state.connection { return .ready(connection) }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = Waiter(resume: once, watch: nil)
                return .waiting(id)
            }
            switch now {
            case .ready(let connection):
                once.resume(with: connection)
            case .waiting(let id):
                let watch = watchdog.watch(until: deadline) { [self] in
                    state.withLock { _ = $0.waiters.removeValue(forKey: id) }
                    once.resume(with: nil)
                }
                let resumed = state.withLock { state -> Bool in
                    guard state.waiters[id] != nil else { return true }
                    state.waiters[id]?.watch = watch
                    return false
                }
                if resumed { watchdog.cancel(watch) }
            }
        }
    }

    /// Wakes the calls waiting for a child (with it, or with nil when there will be none).
    private func wake(_ waiters: [Waiter], with connection: Connection?) {
        for waiter in waiters {
            if let watch = waiter.watch { watchdog.cancel(watch) }
            waiter.resume.resume(with: connection)
        }
    }

    // MARK: Reading

    private func startReader(_ connection: Connection) {
        threads.submit { [self] _ in read(connection) }
    }

    /// Reads the child's frames until one needs blocking work (a driver's HTTP request): then a
    /// follower takes over reading and this thread does the work. The request starts on the
    /// thread that read it; a hand-over to another thread would add a wake-up to every
    /// isolated engine call.
    private func read(_ connection: Connection) {
        while let (message, body) = connection.channel.receive(DriverHostToHost.self) {
            if case .http(let exchange, let call, let method, let url, let headers, let timeoutMilliseconds, let idempotent, let limit) = message {
                startReader(connection)
                let request = HTTPClientRequest(
                    method: method, url: url, headers: headers, body: body, timeout: .milliseconds(timeoutMilliseconds),
                    idempotent: idempotent, maxResponseBytes: limit)
                perform(request, exchange: exchange, call: call, on: connection)
                return
            }
            handle(message, body: body, from: connection)
        }
        connectionEnded(connection)
    }

    /// A driver's HTTP request through the sidecar's client; the answer goes back to the child.
    private func perform(_ request: HTTPClientRequest, exchange: UInt64, call: UInt64?, on connection: Connection) {
        let deadline = call.flatMap { call in state.withLock { $0.pending[call]?.deadline } }
        // A call that ended (answered, timed out) cancels its requests.
        let isCancelled = { [weak self] () -> Bool in
            guard let self, let call else { return false }
            return self.state.withLock { $0.pending[call] == nil }
        }
        switch httpClient.performForDriver(request, deadline: deadline, isCancelled: isCancelled) {
        case .success(let response):
            connection.channel.send(
                HostToDriverHost.httpAnswer(exchange: exchange, status: response.status, contentType: response.contentType, error: nil),
                body: response.body)
        case .failure(let error):
            connection.channel.send(HostToDriverHost.httpAnswer(exchange: exchange, status: 0, contentType: "", error: error))
        }
    }

    private func handle(_ message: DriverHostToHost, body: [UInt8], from connection: Connection) {
        switch message {
        case .answer(let call, let error, let value):
            let pending = state.withLock { state -> Pending? in
                // A child that answers is not crash-looping: its next death restarts at once.
                if error == nil { state.failuresInARow = 0 }
                return state.pending.removeValue(forKey: call)
            }
            guard let pending else { return }
            if let watch = pending.watch { watchdog.cancel(watch) }
            pending.resume.resume(with: error.map { .failure($0) } ?? .success((value, body)))
        case .log(let level, let message, let metadata):
            var fields = Logger.Metadata()
            for (key, value) in metadata { fields[key] = "\(value)" }
            fields["pid"] = "\(connection.pid)"
            logger.log(level: Logger.Level(rawValue: level) ?? .info, "\(message)", metadata: fields)
        case .progress(let call, let done, let total, let text):
            state.withLock { $0.pending[call]?.progress }?(done, total, text)
        case .http, .hello:
            break  // HTTP is read above; a hello comes once, before the reader starts
        }
    }

    /// The child's socket closed: collect its exit, answer its calls, start the next one.
    private func connectionEnded(_ connection: Connection) {
        // The socket closes when the process ends; a child that closed it and lives on is ended.
        kill(connection.pid, SIGKILL)
        let status = Self.waitForExit(connection.pid)
        let cause = [connection.endedBy.withLock { $0 }, Self.describe(status)].compactMap { $0 }.joined(separator: ", ")
        let lived = NIODeadline.now() - connection.started
        let (failed, stopped) = state.withLock { state -> ([Pending], Bool) in
            guard state.connection === connection else { return ([], state.stopped) }
            state.connection = nil
            state.exits += 1
            let failed = state.pending.filter { $0.value.generation == connection.generation }
            for id in failed.keys { state.pending.removeValue(forKey: id) }
            if state.stopped { return (Array(failed.values), true) }
            let during = failed.values.map(\.label).sorted().first.map { " during \($0)" } ?? ""
            state.lastExit = cause + during
            state.lastExitAt = time(nil)
            state.restarting = true
            if lived >= Self.healthyLife { state.failuresInARow = 0 }
            return (Array(failed.values), false)
        }
        for pending in failed {
            if let watch = pending.watch { watchdog.cancel(watch) }
            pending.resume.resume(
                with: .failure(
                    stopped
                        ? RuntimeError(.unavailable, "driver \(driverName)'s host process was stopped with the sidecar")
                        : RuntimeError(
                            .upstream,
                            "driver \(driverName)'s host process (pid \(connection.pid)) ended (\(cause)) during \(pending.label); it is being restarted"
                        )))
        }
        guard !stopped else { return }
        logger.error("isolated driver's host process ended", metadata: ["pid": "\(connection.pid)", "cause": "\(cause)"])
        scheduleRestart()
    }

    private func scheduleRestart() {
        let failures = state.withLock { state -> Int in
            state.failuresInARow += 1
            return state.failuresInARow
        }
        let delay = failures <= 1 ? .zero : Self.restartBackoff.delay(after: failures - 1)
        Task.detached { [self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            await restart()
        }
    }

    private func restart() async {
        guard !state.withLock({ $0.stopped }) else { return }
        let generation = state.withLock { $0.restarts + 1 }
        let spawned: Result<(Connection, DriverManifest), StartFailure> = await withCheckedContinuation { continuation in
            threads.submit { [path, settings] _ in
                continuation.resume(returning: Self.spawnChild(path: path, settings: settings, generation: generation))
            }
        }
        guard case .success(let (connection, _)) = spawned else {
            if case .failure(let failure) = spawned {
                logger.error("isolated driver's host process did not restart", metadata: ["reason": "\(failure.reason)"])
                state.withLock { $0.lastExit = "restart failed: \(failure.reason)" }
            }
            scheduleRestart()
            return
        }
        startReader(connection)
        // The instances the old child had, with their configurations, before calls resume.
        let instances = state.withLock { $0.instances }
        for (id, configuration) in instances.sorted(by: { $0.key < $1.key }) {
            let created = await send(
                label: "create_instance", on: connection, deadline: .now() + .seconds(30),
                message: { .create(call: $0, instance: id, configuration: configuration) })
            if case .failure(let error) = created {
                logger.error(
                    "instance not created again after a restart of its driver's host", metadata: ["instance": "\(configuration.name)", "error": "\(error.message)"])
            }
        }
        let waiters = state.withLock { state -> [Waiter] in
            guard !state.stopped else { return [] }
            state.connection = connection
            state.restarting = false
            state.restarts += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        logger.notice("isolated driver's host process restarted", metadata: ["pid": "\(connection.pid)"])
        wake(waiters, with: connection)
    }

    /// A call on a given child: also the restart's creates, before other calls may use it.
    private func send(
        label: String, on connection: Connection, deadline: NIODeadline, body: [UInt8] = [],
        progress: (@Sendable (UInt64, UInt64, String?) -> Void)? = nil, message: @escaping @Sendable (UInt64) -> HostToDriverHost
    ) async -> Result<Answer, RuntimeError> {
        let once = OnceResume<Result<Answer, RuntimeError>>()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            let id = state.withLock { state -> UInt64 in
                let id = state.nextCall
                state.nextCall += 1
                state.pending[id] = Pending(
                    generation: connection.generation, label: label, resume: once, deadline: deadline, watch: nil, progress: progress)
                return id
            }
            let watch = watchdog.watch(until: deadline + Self.deadlineGrace) { [self] in expire(call: id, on: connection) }
            let answered = state.withLock { state -> Bool in
                guard state.pending[id] != nil else { return true }
                state.pending[id]?.watch = watch
                return false
            }
            if answered { watchdog.cancel(watch) }
            // A failed send means the child is gone: its reader sees the end and answers.
            connection.channel.send(message(id), body: body)
        }
    }

    // MARK: Exits

    /// Why a host process could not be started: one line.
    struct StartFailure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Blocks until `pid` has ended; its wait status.
    private static func waitForExit(_ pid: Int32) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return status
    }

    /// "killed by signal 11 (SIGSEGV)", "exited with status 3".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        let name = SignalName.of(signal)
        return name.hasPrefix("SIG") ? "killed by signal \(signal) (\(name))" : "killed by \(name)"
    }
}

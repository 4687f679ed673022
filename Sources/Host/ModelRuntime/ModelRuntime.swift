import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// AIBrix's model runtime: engines the sidecar launches, supervises and stops itself, one per
/// activated model. The actor keeps the state; everything slow (downloads, spawning, probes,
/// engine calls, waiting for a process to end) runs outside it, so no route waits behind
/// another model's work (AIBrix held one lock across all of them, model_runtime.py:844).
public actor ModelRuntime {
    let settings: ModelRuntimeSettings
    let drivers: DriverRegistry
    let pool: WorkerPool
    let httpClient: CurlHTTPClient
    let downloads: DownloadManager
    let deadlines: Deadlines
    let sidecarEnvironment: [String: String]
    let logger: Logger
    let registryFile: ModelRegistryFile
    /// What `/metrics` and the snapshot read without entering the actor.
    public nonisolated let board = ModelRuntimeBoard()
    let planner: LaunchPlanner

    /// Records in activation order (AIBrix lists them so).
    var records: [ModelRecord] = []
    /// What lives only in this process, per model.
    var live: [String: Live] = [:]
    var started = false

    struct Live {
        var engine: ManagedEngine?
        var log: EngineLog?
        /// Spawned by this process (reaped with waitpid), not adopted after a restart.
        var ownChild = false
        var ready = false
        var job: DownloadJob?
        var launching = false
        var probing = false
        var stopping: Task<Void, Never>?
        var bootTimeout: Duration = .seconds(600)
    }

    public init(
        settings: ModelRuntimeSettings, drivers: DriverRegistry, pool: WorkerPool, httpClient: CurlHTTPClient,
        downloads: DownloadManager, deadlines: Deadlines, environment: [String: String], logger: Logger
    ) {
        self.settings = settings
        self.drivers = drivers
        self.pool = pool
        self.httpClient = httpClient
        self.downloads = downloads
        self.deadlines = deadlines
        self.sidecarEnvironment = environment
        var logger = logger
        logger[metadataKey: "part"] = "model-runtime"
        self.logger = logger
        registryFile = ModelRegistryFile(path: settings.registryPath)
        planner = LaunchPlanner(pool: pool)
    }

    // MARK: activate

    public func activate(_ request: ActivateRequest) async throws(RuntimeError) -> ActivateAnswer {
        let name = request.modelName
        if let problem = ResourceName.adapterNameProblem(name) { throw RuntimeError(.invalidArgument, "model_name \"\(name)\" \(problem)") }
        let kind = request.engine.isEmpty ? "vllm" : request.engine.lowercased()
        guard let driver = drivers.driver(forEngineKind: kind) else {
            let known = drivers.drivers.filter(\.canLaunch).flatMap(\.engineKinds)
            throw RuntimeError(.invalidArgument, "engine \"\(request.engine)\" has no driver that can launch it (launchable: \(known.joined(separator: ", ")))")
        }
        guard driver.canLaunch else {
            throw RuntimeError(.invalidArgument, "driver \(driver.name) cannot launch \(kind) engines: it predates ABI 1.3's plan_launch")
        }
        let args = try checkedArgs(request.engineArgs, kind: kind)
        let ipcName = KVSegment.sanitize(request.ipcName.flatMap { $0.isEmpty ? nil : $0 } ?? "kvc_" + name)
        guard !ipcName.isEmpty, ipcName.first != "-" else {
            throw RuntimeError(.invalidArgument, "ipc_name \"\(request.ipcName ?? "")\" gives an empty segment name or one starting with '-'")
        }
        try ArtifactReference.check(request.artifactURL)

        if let index = records.firstIndex(where: { $0.modelName == name }) {
            let existing = records[index]
            let wanted = ModelRecord.specification(artifactURL: request.artifactURL, engine: kind, args: args, claimUID: request.claimRef?.uid)
            if existing.phase == .failed {
                throw RuntimeError(
                    .internalError,
                    "model '\(name)' exhausted its local restart budget (\(existing.lastError ?? "failed")); deactivate it before activating again")
            }
            if existing.phase == .stopping {
                throw RuntimeError(.conflict, "model '\(name)' is stopping; activate it again once it is gone")
            }
            guard existing.specification == wanted, request.port == 0 || request.port == existing.port else {
                throw RuntimeError(
                    .conflict,
                    "model '\(name)' is already active with another spec (artifact \(existing.artifactURL), engine \(existing.engine), port \(existing.port)); deactivate it first")
            }
            return ActivateAnswer(status: "success", model_name: name, port: existing.port, ipc_name: existing.ipcName, message: nil)
        }
        guard records.count < settings.maxModels else {
            throw RuntimeError(.conflict, "this runtime already serves \(records.count) models, its limit (ENGINE_RUNTIME_MODEL_MAX_MODELS)")
        }
        if let other = records.first(where: { $0.ipcName == ipcName }) {
            throw RuntimeError(.conflict, "ipc_name \(ipcName) is used by model '\(other.modelName)'")
        }
        let port = try choosePort(request.port)
        let now = Date().timeIntervalSince1970
        let record = ModelRecord(
            modelName: name, artifactURL: request.artifactURL, engine: kind, port: port, ipcName: ipcName, args: args,
            claimRef: request.claimRef, phase: .downloading, process: nil, launchID: UUID().uuidString.lowercased(),
            lastTransition: now)
        records.append(record)
        live[name] = Live()
        do { try persist() } catch {
            records.removeAll { $0.modelName == name }
            live[name] = nil
            throw error
        }
        logger.info("model activated", metadata: ["model": "\(name)", "engine": "\(kind)", "port": "\(port)", "artifact": "\(CurlHTTPClient.redacted(request.artifactURL))"])
        startLaunch(name)
        publish()
        return ActivateAnswer(status: "success", model_name: name, port: port, ipc_name: ipcName, message: nil)
    }

    /// The operator's allow-list, then the shape rules: every key a flag, no value that could
    /// be read as another flag, bounded sizes.
    func checkedArgs(_ args: [(String, String)], kind: String) throws(RuntimeError) -> [[String]] {
        guard args.count <= 64 else { throw RuntimeError(.invalidArgument, "engine_config.args has \(args.count) entries; at most 64") }
        let allowed = settings.allowedArgs[kind] ?? []
        var seen = Set<String>()
        var result: [[String]] = []
        for (flag, value) in args {
            guard flag.hasPrefix("-"), flag.count >= 2, flag.count <= 128, !flag.contains("="),
                flag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { throw RuntimeError(.invalidArgument, "engine argument \"\(flag)\" is not a flag (--name, letters, digits, '-' and '_')") }
            guard allowed.contains(flag) || allowed.contains("*") else {
                throw RuntimeError(
                    .invalidArgument,
                    "engine argument \(flag) is not allowed for \(kind) engines (allowed: \(allowed.sorted().joined(separator: " "))); the operator allows more with ENGINE_RUNTIME_MODEL_\(kind.uppercased())_ARGS")
            }
            guard seen.insert(flag).inserted else { throw RuntimeError(.invalidArgument, "engine argument \(flag) is given twice") }
            guard value.utf8.count <= 4096, !value.utf8.contains(0), !value.contains("\n") else {
                throw RuntimeError(.invalidArgument, "the value of engine argument \(flag) is too long or has a NUL or newline")
            }
            if value.hasPrefix("-"), Double(value) == nil {
                throw RuntimeError(.invalidArgument, "the value of engine argument \(flag) starts with '-': it would be read as another flag")
            }
            result.append([flag, value])
        }
        return result
    }

    /// An explicit port inside the range, not another model's and free now; or the first such.
    func choosePort(_ requested: Int) throws(RuntimeError) -> Int {
        let held = Set(records.map(\.port))
        if requested != 0 {
            guard settings.ports.contains(requested) else {
                throw RuntimeError(
                    .invalidArgument,
                    "port \(requested) is outside the runtime's range \(settings.ports.lowerBound)-\(settings.ports.upperBound) (ENGINE_RUNTIME_MODEL_PORTS)")
            }
            guard !held.contains(requested) else {
                throw RuntimeError(.conflict, "port \(requested) belongs to model '\(records.first { $0.port == requested }!.modelName)'")
            }
            guard PortProbe.isFree(requested) else { throw RuntimeError(.conflict, "port \(requested) is in use by another process") }
            return requested
        }
        for port in settings.ports where !held.contains(port) && PortProbe.isFree(port) { return port }
        throw RuntimeError(.unavailable, "no free port left in \(settings.ports.lowerBound)-\(settings.ports.upperBound)")
    }

    // MARK: deactivate

    /// Stops the engine (SIGTERM, the grace period, SIGKILL) and forgets the model; answers
    /// once no process of it is left. Unknown models are a no-op, as in AIBrix.
    public func deactivate(_ name: String) async {
        guard let index = records.firstIndex(where: { $0.modelName == name }) else { return }
        if let running = live[name]?.stopping {
            await running.value
            return
        }
        live[name]?.job?.cancel()
        transition(index, to: .stopping)
        try? persist()
        let identity = records[index].process
        let engine = live[name]?.engine
        let grace = settings.stopGrace
        let logger = logger
        let stop = Task {
            if let identity { await ProcessStopper.stop(identity, grace: grace, logger: logger) }
            _ = await engine?.instance.shutdown(wait: .seconds(2))
        }
        live[name]?.stopping = stop
        await stop.value
        // The launch may have spawned while we waited: stop that one too.
        if let index = records.firstIndex(where: { $0.modelName == name }) {
            if let late = records[index].process, late != identity {
                await ProcessStopper.stop(late, grace: grace, logger: logger)
            }
            records.remove(at: index)
        }
        live[name]?.log?.follow()
        live[name] = nil
        try? persist()
        board.forget(name)
        publish()
        logger.info("model deactivated", metadata: ["model": "\(name)"])
    }

    // MARK: state helpers

    func transition(_ index: Int, to phase: ModelPhase, error: String? = nil) {
        guard records[index].phase != phase || error != nil else { return }
        if records[index].phase != phase {
            logger.info(
                "model phase", metadata: ["model": "\(records[index].modelName)", "from": "\(records[index].phase.rawValue)", "to": "\(phase.rawValue)"])
        }
        records[index].phase = phase
        records[index].lastTransition = Date().timeIntervalSince1970
        if let error { records[index].lastError = error }
        if phase != .active { live[records[index].modelName]?.ready = false }
    }

    func index(of name: String) -> Int? { records.firstIndex { $0.modelName == name } }

    func persist() throws(RuntimeError) {
        do { try registryFile.save(records) } catch {
            logger.error("registry write failed", metadata: ["path": "\(registryFile.path)", "error": "\(error.message)"])
            throw error
        }
    }

    /// Publishes what `/metrics` reads: per-model gauges and the launched engines.
    func publish() {
        let rows = records.map { record in
            ModelRuntimeBoard.Row(
                modelName: record.modelName, engine: live[record.modelName]?.engine, kind: record.engine, phase: record.phase,
                ready: live[record.modelName]?.ready ?? false, restarts: record.restartCount, kvLimit: record.kvLimitBytes,
                segment: KVSegment(directory: settings.segmentDirectory, ipcName: record.ipcName))
        }
        board.publish(rows)
    }
}

/// Whether a TCP port can be bound now, on every interface and on loopback.
enum PortProbe {
    static func isFree(_ port: Int) -> Bool {
        canBind(port, address: INADDR_ANY) && canBind(port, address: UInt32(0x7F00_0001))
    }

    private static func canBind(_ port: Int, address: UInt32) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        socketAddress.sin_addr = in_addr(s_addr: address.bigEndian)
        return withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

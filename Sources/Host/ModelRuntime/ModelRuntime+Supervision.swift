import FoundationEssentials
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension ModelRuntime {
    /// Reads the registry and takes every engine in it back: live ones are adopted (pid and
    /// start time match, or the launch id is found in a process's environment), dead ones are
    /// restarted, stopping ones finished. Called once, before the API serves.
    public func start() async {
        guard !started else { return }
        started = true
        for directory in [settings.stateDirectory, settings.stateDirectory + "/logs", settings.stateDirectory + "/work"] {
            try? StagingDirectory.createDirectory(directory)
        }
        chmod(settings.stateDirectory, 0o700)
        let (loaded, problem) = registryFile.load()
        if let problem { logger.warning("\(problem)") }
        let now = Date().timeIntervalSince1970
        for var record in loaded {
            guard ResourceName.adapterNameProblem(record.modelName) == nil, (1...65535).contains(record.port), !record.ipcName.isEmpty else {
                board.count(readoption: "invalid")
                logger.warning("registry record skipped: invalid", metadata: ["model": "\(record.modelName)"])
                continue
            }
            guard !records.contains(where: { $0.modelName == record.modelName }) else {
                board.count(readoption: "duplicate")
                continue
            }
            let alive = record.process.flatMap { $0.isAlive ? $0 : nil } ?? adoptByLaunchID(record)
            record.process = alive ?? record.process
            var result: String
            switch record.phase {
            case .failed:
                if let stale = record.process, stale.groupIsAlive { Task { await ProcessStopper.stop(stale, grace: settings.stopGrace, logger: logger) } }
                record.process = nil
                result = "terminal"
            case .stopping:
                if let alive {
                    await ProcessStopper.stop(alive, grace: settings.stopGrace, logger: logger)
                    result = "stopping"
                } else {
                    result = "removed"
                }
                board.count(readoption: result)
                continue
            default:
                if alive != nil {
                    if record.phase == .downloading || record.phase == .restarting {
                        record.phase = .booting
                        record.bootStartedAt = now
                    }
                    result = "success"
                } else if record.phase == .downloading || record.modelPath == nil {
                    result = "restart_scheduled"
                } else {
                    record.process = nil
                    if record.phase != .restarting || record.nextRestartAt == nil {
                        record.phase = .restarting
                        record.nextRestartAt = now
                        record.lastTransition = now
                    }
                    result = "restart_scheduled"
                }
            }
            board.count(readoption: result)
            logger.info("registry record taken back", metadata: ["model": "\(record.modelName)", "result": "\(result)", "pid": "\(alive?.pid ?? 0)"])
            records.append(record)
            var state = Live()
            let files = engineFiles(record.modelName)
            state.log = EngineLog(path: files.log, maximumBytes: settings.logMaxBytes, logger: engineLogger(record.modelName), fromEnd: true)
            live[record.modelName] = state
            if alive != nil {
                await ensureEngineInstance(record.modelName)
                if let driver = drivers.driver(forEngineKind: record.engine), let path = record.modelPath,
                    let plan = try? await planner.plan(launchSpec(record, modelPath: path), driver: driver)
                {
                    live[record.modelName]?.bootTimeout = settings.bootTimeout ?? .seconds(plan.readiness.bootTimeoutSeconds)
                }
            } else if record.phase == .downloading || (record.modelPath == nil && record.phase != .failed) {
                startLaunch(record.modelName)
            }
        }
        try? persist()
        publish()
    }

    /// An engine whose spawn the registry recorded only by its launch id (the sidecar died
    /// between spawn and the second write).
    private func adoptByLaunchID(_ record: ModelRecord) -> ProcessIdentity? {
        let pids = ProcFile.processes(withEnvironmentEntry: "ENGINE_RUNTIME_LAUNCH_ID=\(record.launchID)")
        // The group leader is the one whose pgid is its pid (workers inherit the variable).
        for pid in pids where getpgid(pid) == pid {
            if let identity = ProcessIdentity.of(pid) { return identity }
        }
        return nil
    }

    /// One pass of the supervisor: follow logs, notice exits, start due restarts, enforce boot
    /// deadlines, and probe readiness through each engine's driver, all engines at once.
    public func superviseOnce() async {
        let now = Date().timeIntervalSince1970
        var probes: [(String, ManagedEngine)] = []
        var changed = false
        // As a container's PID 1, orphaned engine workers are ours to reap: collect the ones
        // that are not an engine leader (those are reaped below, with their status logged).
        if getpid() == 1 {
            let leaders = Set(records.compactMap { $0.process?.pid })
            ProcFile.forEachProcess { pid in
                guard !leaders.contains(pid), ProcessIdentity.of(pid) == nil else { return }
                _ = EngineSpawner.reap(pid)
            }
        }
        for index in records.indices {
            let name = records[index].modelName
            live[name]?.log?.follow()
            switch records[index].phase {
            case .downloading, .failed, .stopping:
                continue
            case .restarting:
                if let due = records[index].nextRestartAt, due <= now, live[name]?.launching != true {
                    records[index].nextRestartAt = nil
                    startRestart(name)
                    changed = true
                }
            case .booting, .active, .sleeping:
                guard let identity = records[index].process else {
                    if live[name]?.launching != true {
                        scheduleRestart(index, reason: "the engine has no process", now: now)
                        changed = true
                    }
                    continue
                }
                var status: Int32?
                if live[name]?.ownChild == true { status = EngineSpawner.reap(identity.pid) }
                guard identity.isAlive else {
                    scheduleRestart(index, reason: "the engine exited (\(Self.describe(status)))", now: now)
                    changed = true
                    continue
                }
                if records[index].phase == .booting, let started = records[index].bootStartedAt,
                    let timeout = live[name]?.bootTimeout, now - started > timeout / .seconds(1)
                {
                    scheduleRestart(index, reason: "the engine did not become ready within \(timeout.components.seconds) s", now: now)
                    changed = true
                    continue
                }
                if records[index].phase != .sleeping, let engine = live[name]?.engine, live[name]?.probing != true {
                    live[name]?.probing = true
                    probes.append((name, engine))
                }
            }
        }
        if changed { try? persist() }
        publish()
        guard !probes.isEmpty else { return }
        let results = await withTaskGroup(of: (String, Bool, String?).self) { group in
            for (name, engine) in probes {
                group.addTask {
                    let answer = await engine.readiness()
                    return (name, answer.ready, answer.reason)
                }
            }
            var results: [(String, Bool, String?)] = []
            for await result in group { results.append(result) }
            return results
        }
        let after = Date().timeIntervalSince1970
        var probed = false
        for (name, ready, reason) in results {
            live[name]?.probing = false
            let before = records.first { $0.modelName == name }
            apply(probe: ready, reason: reason, to: name, now: after)
            probed = probed || records.first { $0.modelName == name } != before
        }
        // A steady engine answers "ready" every pass: the registry is written (and synced)
        // only when an answer changed a record.
        if probed { try? persist() }
        publish()
    }

    private func apply(probe ready: Bool, reason: String?, to name: String, now: Double) {
        guard let index = index(of: name) else { return }
        switch records[index].phase {
        case .booting where ready:
            transition(index, to: .active)
            records[index].lastError = nil
            records[index].activeSince = now
            records[index].unhealthySince = nil
            live[name]?.ready = true
            writeServedMarker(records[index])
            reapplyKVLimit(index)
        case .active where ready:
            live[name]?.ready = true
            records[index].unhealthySince = nil
            if records[index].restartCount > 0, let since = records[index].activeSince,
                now - since >= settings.stableAfter / .seconds(1)
            {
                logger.info("engine stable; restart count reset", metadata: ["model": "\(name)", "restarts": "\(records[index].restartCount)"])
                records[index].restartCount = 0
                records[index].restartTimes = []
            }
            if records[index].kvLimitPending { reapplyKVLimit(index) }
        case .active:
            live[name]?.ready = false
            let since = records[index].unhealthySince ?? now
            records[index].unhealthySince = since
            if now - since >= settings.unhealthyRestartAfter / .seconds(1) {
                scheduleRestart(
                    index, reason: "the engine was not ready for \(Int(now - since)) s: \(reason ?? "no reason given")", now: now)
            }
        default:
            break
        }
    }

    /// Counts a restart against the budget (a sliding window) and schedules it with
    /// exponential backoff, or fails the model when the budget is spent.
    func scheduleRestart(_ index: Int, reason: String, now: Double) {
        let name = records[index].modelName
        let window = settings.restartWindow / .seconds(1)
        records[index].restartTimes = records[index].restartTimes.filter { $0 >= now - window }
        let stale = records[index].process
        if records[index].restartTimes.count >= settings.restartBudget {
            transition(
                index, to: .failed,
                error: "\(reason); restart budget exhausted (\(settings.restartBudget) restarts in \(Int(window)) s)")
            board.count(exhausted: name)
            logger.error("engine failed for good", metadata: ["model": "\(name)", "reason": "\(reason)"])
            if let stale { Task { await ProcessStopper.stop(stale, grace: settings.stopGrace, logger: logger) } }
            records[index].process = nil
            return
        }
        records[index].restartTimes.append(now)
        records[index].restartCount += 1
        let delay = min(settings.restartBackoffBase / .seconds(1) * pow(2, Double(records[index].restartTimes.count - 1)), settings.restartBackoffMax / .seconds(1))
        records[index].nextRestartAt = now + delay
        transition(index, to: .restarting, error: reason)
        logger.warning("engine will be restarted", metadata: ["model": "\(name)", "reason": "\(reason)", "in_seconds": "\(delay)"])
    }

    /// Stops what is left of the old engine, then launches it again with the same port,
    /// segment, artifact and flags.
    func startRestart(_ name: String) {
        guard let index = index(of: name) else { return }
        let stale = records[index].process
        live[name, default: Live()].launching = true
        board.count(restart: name)
        let grace = settings.stopGrace
        let logger = logger
        Task {
            if let stale { await ProcessStopper.stop(stale, grace: grace, logger: logger) }
            await self.launch(name)
        }
    }

    /// On the sidecar's SIGTERM: every engine is stopped at once, each with the grace period,
    /// and left in the registry to be started again by the next sidecar.
    public func shutdown() async {
        for state in live.values { state.job?.cancel() }
        let running = records.compactMap(\.process).filter(\.groupIsAlive)
        logger.info("stopping engines", metadata: ["count": "\(running.count)"])
        let grace = settings.stopGrace
        let logger = logger
        await withDiscardingTaskGroup { group in
            for identity in running { group.addTask { await ProcessStopper.stop(identity, grace: grace, logger: logger) } }
        }
        let now = Date().timeIntervalSince1970
        for index in records.indices where records[index].phase != .failed {
            records[index].process = nil
            if records[index].phase != .stopping {
                records[index].phase = .restarting
                records[index].nextRestartAt = now
                records[index].lastError = "stopped when the runtime shut down"
            }
        }
        try? persist()
        for state in live.values { _ = await state.engine?.instance.shutdown(wait: .seconds(1)) }
        live = [:]
    }

    static func describe(_ status: Int32?) -> String {
        guard let status else { return "status unknown" }
        let signal = status & 0x7f
        if signal == 0 { return "exit status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)"
    }
}

import DriverABI
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging

extension ModelRuntime {
    /// The spec a plan is made from.
    func launchSpec(_ record: ModelRecord, modelPath: String) -> LaunchSpec {
        LaunchSpec(
            engineKind: record.engine, modelName: record.modelName, modelPath: modelPath, host: settings.engineHost, port: record.port,
            command: settings.commands[record.engine], args: record.args, config: .object(["kvcached": .bool(settings.kvcached)]))
    }

    func startLaunch(_ name: String) {
        live[name, default: Live()].launching = true
        Task { await self.launch(name) }
    }

    /// Artifact, plan, spawn. A failure here is the spec's or the artifact's, not a crash: the
    /// model is failed with the reason and no process is left.
    func launch(_ name: String) async {
        defer { live[name]?.launching = false }
        guard let first = index(of: name), records[first].phase != .stopping else { return }
        let path: String
        if let known = records[first].modelPath {
            path = known
        } else {
            do { path = try await resolveArtifact(name, url: records[first].artifactURL) } catch {
                fail(name, "artifact \(CurlHTTPClient.redacted(records[first].artifactURL)): \(error.message)")
                return
            }
        }
        guard let index = index(of: name), records[index].phase != .stopping else { return }
        records[index].modelPath = path
        guard let driver = drivers.driver(forEngineKind: records[index].engine) else {
            fail(name, "no driver for engine \(records[index].engine) is loaded any more")
            return
        }
        let plan: LaunchPlan
        do { plan = try await planner.plan(launchSpec(records[index], modelPath: path), driver: driver) } catch {
            fail(name, "driver \(driver.name) refused the launch: \(error.message)")
            return
        }
        guard let at = self.index(of: name), records[at].phase != .stopping else { return }
        guard let program = EngineSpawner.resolve(plan.argv[0], searchPath: settings.enginePath) else {
            fail(
                name,
                "the engine program \(plan.argv[0]) is not on the engines' PATH (\(settings.enginePath)); install it or set ENGINE_RUNTIME_MODEL_\(records[at].engine.uppercased())_COMMAND")
            return
        }
        // A new launch id before every spawn, on disk first: see ModelRecord.launchID.
        records[at].launchID = UUID().uuidString.lowercased()
        records[at].process = nil
        do { try persist() } catch {
            fail(name, "the registry cannot be written: \(error.message)")
            return
        }
        var runtimeVariables = ["ENGINE_RUNTIME_LAUNCH_ID": records[at].launchID]
        if settings.kvcached {
            runtimeVariables["ENABLE_KVCACHED"] = "true"
            runtimeVariables["KVCACHED_AUTOPATCH"] = "1"
            runtimeVariables["KVCACHED_IPC_NAME"] = records[at].ipcName
        }
        let environment = EngineEnvironment.build(
            sidecar: sidecarEnvironment, passthrough: settings.environmentPassthrough, plan: plan.env, runtime: runtimeVariables,
            path: settings.enginePath)
        let files = engineFiles(name)
        let pid: Int32
        do {
            try StagingDirectory.createDirectory(files.work)
            pid = try EngineSpawner.spawn(
                program: program, arguments: plan.argv, environment: environment, logPath: files.log, workingDirectory: files.work)
        } catch {
            fail(name, "cannot start the engine: \(error.message)")
            return
        }
        // The start time can only be read once the child exists; a child that died at once
        // still gets an identity the supervisor finds dead.
        let identity = ProcessIdentity.of(pid) ?? ProcessIdentity(pid: pid, startTime: "exited")
        records[at].process = identity
        records[at].bootStartedAt = Date().timeIntervalSince1970
        records[at].unhealthySince = nil
        transition(at, to: .booting)
        live[name, default: Live()].ownChild = true
        live[name]?.bootTimeout = settings.bootTimeout ?? .seconds(plan.readiness.bootTimeoutSeconds)
        if live[name]?.log == nil { live[name]?.log = EngineLog(path: files.log, maximumBytes: settings.logMaxBytes, logger: engineLogger(name), fromEnd: false) }
        try? persist()
        logger.info(
            "engine started",
            metadata: ["model": "\(name)", "pid": "\(pid)", "argv": "\(plan.argv.joined(separator: " "))", "log": "\(files.log)"])
        await ensureEngineInstance(name)
        publish()
    }

    /// The driver instance the supervisor probes and calls the engine through.
    func ensureEngineInstance(_ name: String) async {
        guard live[name]?.engine == nil, let index = index(of: name), let driver = drivers.driver(forEngineKind: records[index].engine)
        else { return }
        let record = records[index]
        let configuration = EngineConfiguration(
            name: "model-\(record.modelName)", engine: record.engine, driver: driver.name, endpoint: "http://127.0.0.1:\(record.port)")
        do {
            let instance = try await DriverInstance.create(
                driver: driver,
                configuration: InstanceConfiguration(
                    name: configuration.name, engineKind: record.engine, endpoint: configuration.endpoint, configJSON: "{}"),
                pool: pool, httpClient: httpClient, logger: logger)
            guard self.index(of: name) != nil, live[name]?.engine == nil else {
                _ = await instance.shutdown(wait: .seconds(1))
                return
            }
            live[name]?.engine = ManagedEngine(configuration: configuration, instance: instance, deadlines: deadlines)
        } catch {
            logger.error("driver refused the launched engine", metadata: ["model": "\(name)", "error": "\(error.message)"])
        }
    }

    /// The artifact as a local path: downloaded (progress in the model list) or, for a local
    /// path, checked to lie inside the download roots.
    func resolveArtifact(_ name: String, url: String) async throws(RuntimeError) -> String {
        let source = try ArtifactSource.parse(url)
        if case .local(let path) = source {
            let checked = try downloads.roots.check(path)
            guard access(checked, R_OK) == 0 else { throw RuntimeError(.notFound, "\(checked) does not exist or is not readable") }
            return ArtifactReference.servedPath(checked)
        }
        let job = try downloads.start(DownloadManager.Request(uri: url))
        live[name]?.job = job
        logger.info("model artifact downloading", metadata: ["model": "\(name)", "job": "\(job.id)", "target": "\(job.target.path)"])
        let target = try await job.wait().get()
        return ArtifactReference.servedPath(target.path)
    }

    /// Fails the model for a reason that a restart would not cure.
    func fail(_ name: String, _ reason: String) {
        guard let index = index(of: name), records[index].phase != .stopping else { return }
        logger.error("model failed", metadata: ["model": "\(name)", "reason": "\(reason)"])
        transition(index, to: .failed, error: reason)
        try? persist()
        publish()
    }

    func engineFiles(_ name: String) -> (log: String, work: String) {
        (settings.stateDirectory + "/logs/" + name + ".log", settings.stateDirectory + "/work/" + name)
    }

    func engineLogger(_ name: String) -> Logger {
        var logger = self.logger
        logger[metadataKey: "model"] = "\(name)"
        logger[metadataKey: "source"] = "engine"
        return logger
    }
}

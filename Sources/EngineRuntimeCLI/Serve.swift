import ArgumentParser
import Host
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the management API (the default subcommand).",
        discussion: """
            Loads every driver in the driver directory, creates a driver instance for each \
            configured engine, then serves the HTTP management API until SIGTERM or SIGINT, on \
            which it finishes the requests in flight and exits.

            The engine comes from the AIBrix sidecar's variables, or several engines from --config.

            Environment variables (a flag wins over its variable):
              INFERENCE_ENGINE                 engine kind of the default engine (--engine); default vllm;
                                               none: no engine of its own (the default with --model-runtime
                                               when neither INFERENCE_ENGINE nor INFERENCE_ENGINE_ENDPOINT is set)
              INFERENCE_ENGINE_ENDPOINT        its base URL (--engine-endpoint); default http://localhost:8000
              INFERENCE_ENGINE_API_KEY         bearer token the engine expects; forwarded to it, never logged
              INFERENCE_ENGINE_ADMIN_API_KEY   the engine's administrator token (SGLang --admin-api-key),
                                               sent on its management routes instead; never logged
              INFERENCE_ENGINE_VERSION         engine version, informational (any string)
              ENGINE_RUNTIME_CONFIG            engines file (--config)
              ENGINE_RUNTIME_AUTH_TOKEN        require this bearer token on every route but /healthz and /ready (empty: an error)
              ENGINE_RUNTIME_HOST              address to listen on (--host)
              ENGINE_RUNTIME_PORT              port to listen on (--port)
              ENGINE_RUNTIME_DRIVER_DIR        driver directory (--driver-dir)
              ENGINE_RUNTIME_MAX_BODY_BYTES    request body limit (--max-body-bytes)
              ENGINE_RUNTIME_IDLE_TIMEOUT      seconds a keep-alive connection may stay idle (--idle-timeout); default 60
              ENGINE_RUNTIME_REQUEST_TIMEOUT   seconds for a request's head and body to arrive (--request-timeout); default 30
              ENGINE_RUNTIME_MAX_CONNECTIONS   open connections at most (--max-connections); default 1024
              ENGINE_RUNTIME_SHUTDOWN_TIMEOUT  seconds requests in flight get on SIGTERM (--shutdown-timeout); default 10
              ENGINE_RUNTIME_PROBE_TIMEOUT     seconds for health and read calls (--probe-timeout)
              ENGINE_RUNTIME_MUTATION_TIMEOUT  seconds for loads and other changes (--mutation-timeout)
              ENGINE_RUNTIME_METRICS_MODE      standard, original, both or aibrix (--metrics-mode; aibrix adds the
                                               AIBrix sidecar's names to both)
              ENGINE_RUNTIME_METRICS_CACHE_MS  how long one engine scrape serves /metrics (--metrics-cache-ms)
              ENGINE_RUNTIME_METRICS_BUFFER_MS how long a scrape's buffers wait for the next one
                                               (--metrics-buffer-ms); default 30000, 0 keeps none
              ENGINE_RUNTIME_LOG_LEVEL         log level (--log-level)

            Downloads (POST /v1/model/download, LoRA artifact_url; see docs/downloads.md):
              DOWNLOADER_LOCAL_DIR             base directory of models; default /tmp/aibrix/models
              ENGINE_RUNTIME_ADAPTER_DIR       base directory of LoRA artifacts; default /tmp/aibrix/adapters
              ENGINE_RUNTIME_DOWNLOAD_ROOTS    more directories a request's local_dir may name (colon-separated)
              ENGINE_RUNTIME_SECRETS_DIR       where credentials_secret secrets are mounted; default /var/run/secrets/aibrix
              ENGINE_RUNTIME_STAGING_MAX_AGE   seconds after which untouched staged data (failed, cancelled) is removed; default 86400, 0: never
              DOWNLOADER_ALLOWED_HOSTS         hosts sources may be fetched from, on every hop (redirects too)
              DOWNLOADER_NUM_THREADS, DOWNLOADER_PART_THRESHOLD, DOWNLOADER_PART_CHUNKSIZE,
              DOWNLOADER_ALLOW_FILE_SUFFIX, DOWNLOADER_FORCE_DOWNLOAD, DOWNLOADER_STALL_TIMEOUT,
              DOWNLOADER_MAX_ATTEMPTS, HF_ENDPOINT, HF_TOKEN, HF_REVISION, AWS_*, TOS_*, GCS_*
              AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN  IRSA: S3 credentials from STS, renewed before they expire
                                               (AWS_ROLE_SESSION_NAME, AWS_ENDPOINT_URL_STS, DOWNLOADER_STS_DURATION_SECONDS)
              GOOGLE_APPLICATION_CREDENTIALS   GCS service-account key file (OAuth tokens, renewed)
              GCE_METADATA_HOST                GCS token from this metadata server (found by itself on Google's cloud)

            Model runtime (engines the sidecar launches itself, AIBrix ModelClaim; off unless
            --model-runtime or ENGINE_RUNTIME_MODEL_RUNTIME=1; see docs/model-runtime.md):
              ENGINE_RUNTIME_MODEL_STATE_DIR        registry, engine logs, working dirs; default /var/run/engine-runtime
              AIBRIX_ENGINE_REGISTRY_PATH           registry file; default <state dir>/engines.json
              ENGINE_RUNTIME_MODEL_PORTS            engine ports, LOW-HIGH; default 20000-20999
              ENGINE_RUNTIME_MODEL_ENGINE_HOST      address engines listen on; default 0.0.0.0
              ENGINE_RUNTIME_MODEL_<KIND>_ARGS      engine flags operators may pass (comma list; * = any)
              ENGINE_RUNTIME_MODEL_<KIND>_COMMAND   the engine's program (words), e.g. /opt/venv/bin/vllm
              ENGINE_RUNTIME_MODEL_ENGINE_PATH      PATH of the engines; default the sidecar's PATH
              ENGINE_RUNTIME_MODEL_ENV              more variables passed to engines (comma list; never secrets)
              ENGINE_RUNTIME_MODEL_STOP_GRACE       seconds between SIGTERM and SIGKILL; default 20
              ENGINE_RUNTIME_MODEL_RESTART_BUDGET   restarts per window before a model fails; default 5
              ENGINE_RUNTIME_MODEL_RESTART_WINDOW   seconds of that window; default 600
              ENGINE_RUNTIME_MODEL_RESTART_BACKOFF_MS first restart delay, doubled each time up to 60 s; default 2000
              ENGINE_RUNTIME_MODEL_BOOT_TIMEOUT     seconds an engine may take to become ready; default the driver's
              ENGINE_RUNTIME_MODEL_UNHEALTHY_AFTER  seconds of "not ready" before an active engine is restarted; default 60
              ENGINE_RUNTIME_MODEL_MAX_MODELS       models at most; default 16
              ENGINE_RUNTIME_MODEL_STABLE_AFTER     seconds active before the restart count resets; default 300
              ENGINE_RUNTIME_MODEL_LOG_MAX_BYTES    an engine's log is rotated past this; default 67108864
              ENGINE_RUNTIME_MODEL_KVCACHED         0: do not give engines kvcached's variables; default 1
              ENGINE_RUNTIME_MODEL_SEGMENT_DIR      where kvcached's segments are; default /dev/shm
              ENGINE_RUNTIME_MODEL_SUPERVISOR_INTERVAL_MS  the supervisor's pass interval; default 1000
              AIBRIX_WEIGHT_CACHE_DIR               root of the served-artifact markers; default ~/.cache/huggingface
            """)

    @Option(help: ArgumentHelp("Address to listen on. Env: ENGINE_RUNTIME_HOST. Default: 0.0.0.0.", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("Port to listen on (0 picks a free one). Env: ENGINE_RUNTIME_PORT. Default: 8080.", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("Engine kind of the default engine. Env: INFERENCE_ENGINE. Default: vllm.", valueName: "kind"))
    var engine: String?

    @Option(
        name: .customLong("engine-endpoint"),
        help: ArgumentHelp("Base URL of the engine. Env: INFERENCE_ENGINE_ENDPOINT. Default: http://localhost:8000.", valueName: "url"))
    var engineEndpoint: String?

    @Option(
        help: ArgumentHelp(
            "JSON file describing several engines (see docs/operators.md); replaces the INFERENCE_ENGINE* settings. Env: ENGINE_RUNTIME_CONFIG.",
            valueName: "path"))
    var config: String?

    @Option(
        name: .customLong("auth-token-file"),
        help: ArgumentHelp(
            "File holding the bearer token required on every route but /healthz and /ready. Env (the token itself): ENGINE_RUNTIME_AUTH_TOKEN.",
            valueName: "path"))
    var authTokenFile: String?

    @Option(
        name: .customLong("max-body-bytes"),
        help: ArgumentHelp("Largest request body accepted. Env: ENGINE_RUNTIME_MAX_BODY_BYTES. Default: 1048576.", valueName: "bytes"))
    var maxBodyBytes: Int?

    @Option(
        name: .customLong("idle-timeout"),
        help: ArgumentHelp(
            "Seconds a keep-alive connection may stay idle before it is closed. Env: ENGINE_RUNTIME_IDLE_TIMEOUT. Default: 60.",
            valueName: "seconds"))
    var idleTimeout: Int?

    @Option(
        name: .customLong("request-timeout"),
        help: ArgumentHelp(
            "Seconds a request's head and body may take to arrive; later, the client gets 408 and the connection closes. Env: ENGINE_RUNTIME_REQUEST_TIMEOUT. Default: 30.",
            valueName: "seconds"))
    var requestTimeout: Int?

    @Option(
        name: .customLong("max-connections"),
        help: ArgumentHelp(
            "Open connections at most; at the cap the longest-idle connection is closed to make room, so probes get through. Lowered to fit the open-files limit. Env: ENGINE_RUNTIME_MAX_CONNECTIONS. Default: 1024.",
            valueName: "count"))
    var maxConnections: Int?

    @Option(
        name: .customLong("shutdown-timeout"),
        help: ArgumentHelp(
            "On SIGTERM, seconds the requests in flight get to finish before their connections are closed (downloads stop at once, keeping their data for a resume). Env: ENGINE_RUNTIME_SHUTDOWN_TIMEOUT. Default: 10.",
            valueName: "seconds"))
    var shutdownTimeout: Int?

    @Option(
        name: .customLong("probe-timeout"),
        help: ArgumentHelp("Seconds allowed for health, readiness and read calls. Env: ENGINE_RUNTIME_PROBE_TIMEOUT. Default: 3.", valueName: "seconds"))
    var probeTimeout: Int?

    @Option(
        name: .customLong("mutation-timeout"),
        help: ArgumentHelp("Seconds allowed for adapter loads and other changes. Env: ENGINE_RUNTIME_MUTATION_TIMEOUT. Default: 60.", valueName: "seconds"))
    var mutationTimeout: Int?

    @Option(
        name: .customLong("metrics-mode"),
        help: ArgumentHelp(
            "What /metrics shows: standard (llm_engine_*), original (the engines' own series), both, or aibrix (both plus the AIBrix sidecar's aibrix:* names). Env: ENGINE_RUNTIME_METRICS_MODE. Default: both.",
            valueName: "mode"))
    var metricsMode: String?

    @Option(
        name: .customLong("metrics-cache-ms"),
        help: ArgumentHelp(
            "Concurrent and repeated /metrics requests within this many milliseconds share one engine scrape (0: every request scrapes). Env: ENGINE_RUNTIME_METRICS_CACHE_MS. Default: 1000.",
            valueName: "ms"))
    var metricsCacheMs: Int?

    @Option(
        name: .customLong("metrics-buffer-ms"),
        help: ArgumentHelp(
            "A /metrics render writes over the last one's buffers (its body and each engine's parsed arrays, last two texts and standardization plan, about four times the exposition) if it comes within this many milliseconds, and reads a scrape that differs from the last only in values without parsing it again; fresh buffers cost more in page faults than the work. 0: every render allocates and frees at once, and parses in full. Env: ENGINE_RUNTIME_METRICS_BUFFER_MS. Default: 30000.",
            valueName: "ms"))
    var metricsBufferMs: Int?

    @Option(
        name: .customLong("driver-threads"),
        help: ArgumentHelp("Worker threads for driver calls (never the network event loop). Default: 16.", valueName: "count"))
    var driverThreads: Int = 16

    @Flag(
        name: .customLong("model-runtime"),
        help: "Serve /v1/runtime/*: launch and supervise engines per activated model (AIBrix ModelClaim). Env: ENGINE_RUNTIME_MODEL_RUNTIME=1.")
    var modelRuntime = false

    @OptionGroup var drivers: DriverOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.makeLogger()
        let server = ServerConfiguration(
            host: Settings.string(host, env: "ENGINE_RUNTIME_HOST", default: "0.0.0.0"),
            port: try Settings.integer(port, env: "ENGINE_RUNTIME_PORT", default: 8080, range: 0...65535),
            limits: try connectionLimits(logger: logger))
        let runtime = try runtimeConfiguration()
        let modeText = Settings.string(metricsMode, env: "ENGINE_RUNTIME_METRICS_MODE", default: "both")
        guard let mode = MetricsMode(rawValue: modeText) else {
            throw ValidationError("metrics mode \"\(modeText)\" must be standard, original, both or aibrix")
        }
        let metricsCache = try Settings.integer(metricsCacheMs, env: "ENGINE_RUNTIME_METRICS_CACHE_MS", default: 1000, range: 0...60_000)
        let metricsBuffers = try Settings.integer(
            metricsBufferMs, env: "ENGINE_RUNTIME_METRICS_BUFFER_MS", default: 30_000, range: 0...3_600_000)
        let environment = Settings.environmentDictionary()
        let downloadSettings: DownloadSettings
        let roots: ArtifactRoots
        do throws(RuntimeError) {
            downloadSettings = try DownloadSettings.fromEnvironment(environment)
            roots = try ArtifactRoots.fromEnvironment(environment)
        } catch {
            throw ValidationError(error.message)
        }
        // A write past RLIMIT_FSIZE must be a reported download error, not a fatal signal.
        signal(SIGXFSZ, SIG_IGN)
        // Large buffers (a /metrics body, a parsed exposition) are mapped on their own and go
        // back to the system when freed. glibc's default threshold rises to the largest block
        // freed so far, after which such buffers stay in the heap and the resident set with them.
        Self.mallopt(mmapThreshold: 1 << 20, arenaMax: 2)
        guard (1...256).contains(driverThreads) else { throw ValidationError("--driver-threads must be in 1...256") }
        // One HTTP client for the whole runtime: its easy handles keep their connections to the
        // engines open across driver calls and metric scrapes, serve download metadata, and
        // serve isolated drivers' requests.
        let http = CurlHTTPClient(logger: logger)
        let isolatedEngines = runtime.engines.filter(\.isolated).map { $0.driver ?? $0.engine }
        let registry = try drivers.loadDrivers(
            logger: logger, isolation: try drivers.isolation(adding: isolatedEngines, httpClient: http, logger: logger))
        defer { registry.stopIsolatedHosts() }
        let pool = WorkerPool(threads: driverThreads)
        let engines: EngineRegistry
        do throws(ConfigurationError) {
            engines = try await EngineRegistry.start(configuration: runtime, drivers: registry, pool: pool, httpClient: http, logger: logger)
        } catch {
            await pool.shutdown()
            throw ValidationError(error.description)
        }
        if runtime.authToken == nil {
            logger.notice("authentication is off: set ENGINE_RUNTIME_AUTH_TOKEN to require a bearer token")
        }
        let downloads = DownloadManager(settings: downloadSettings, roots: roots, http: http, logger: logger)
        let runtimeSettings: ModelRuntimeSettings
        do throws(RuntimeError) {
            runtimeSettings = try ModelRuntimeSettings.fromEnvironment(environment, enabled: modelRuntime ? true : nil)
        } catch {
            throw ValidationError(error.message)
        }
        let models =
            runtimeSettings.enabled
            ? ModelRuntime(
                settings: runtimeSettings, drivers: registry, pool: pool, httpClient: http, downloads: downloads,
                deadlines: runtime.deadlines, environment: environment, logger: logger) : nil
        let metrics = MetricsService(
            engines: engines, mode: mode, ttl: .milliseconds(Int64(metricsCache)), bufferLife: .milliseconds(Int64(metricsBuffers)),
            timeout: TimeAmount(runtime.deadlines.probe),
            runtimeMetrics: RuntimeMetrics(drivers: registry, aibrixNames: mode == .aibrix), pool: pool, httpClient: http, logger: logger,
            launched: models?.board)
        let secrets = CredentialsSecrets(directory: Settings.string(nil, env: "ENGINE_RUNTIME_SECRETS_DIR", default: "/var/run/secrets/aibrix"))
        let dependencies = RouterDependencies(
            engines: engines.directory, adapters: AdapterService(downloads: downloads, secrets: secrets), downloads: downloads,
            metrics: metrics, runtimeMetrics: metrics.runtimeMetrics, drivers: registry, authToken: runtime.authToken,
            maxBodyBytes: runtime.maxBodyBytes, modelRuntime: models,
            snapshots: models.map { RuntimeSnapshotService(runtime: $0, metrics: metrics) })
        if let models {
            // Engines left by an earlier sidecar are taken back before the API answers.
            await models.start()
            logger.info("model runtime on", metadata: ["state": "\(runtimeSettings.stateDirectory)", "ports": "\(runtimeSettings.ports)"])
        }
        let app = RuntimeRouter.application(dependencies, configuration: server, logger: logger)
        let stagingAge = try Settings.integer(nil, env: "ENGINE_RUNTIME_STAGING_MAX_AGE", default: 86_400, range: 0...(365 * 86_400))
        try await RuntimeServices.group(
            pool: pool, engines: engines, downloads: downloads, stagingMaxAge: stagingAge == 0 ? nil : .seconds(stagingAge), server: app,
            modelRuntime: models, supervisorInterval: runtimeSettings.supervisorInterval, logger: logger
        ).run()
        logger.info("engine-runtime stopped")
    }

    /// glibc's `mallopt(M_MMAP_THRESHOLD, ...)` and `mallopt(M_ARENA_MAX, ...)`; `<malloc.h>` is
    /// not part of Swift's Glibc module. Arenas: glibc makes up to eight per core for threads
    /// that meet in malloc, and each keeps megabytes it freed (a parsed exposition's arrays);
    /// two hold the runtime's few busy threads without that.
    static func mallopt(mmapThreshold: Int32, arenaMax: Int32) {
        _ = GNUExtensions.mallopt?(GNUExtensions.mmapThreshold, mmapThreshold)
        _ = GNUExtensions.mallopt?(GNUExtensions.arenaMax, arenaMax)
    }

    /// The connection limits, the cap fitted under the open-files limit (raised to its hard
    /// limit first, as Go and nginx do), with room left for drivers, downloads and engines.
    func connectionLimits(logger: Logger) throws -> ConnectionLimits {
        let requested = try Settings.integer(maxConnections, env: "ENGINE_RUNTIME_MAX_CONNECTIONS", default: 1024, range: 8...1_000_000)
        var cap = requested
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            if limit.rlim_cur < limit.rlim_max {
                var raised = limit
                raised.rlim_cur = limit.rlim_max
                if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
            }
            let reserve: rlim_t = 128
            let fitting = limit.rlim_cur > reserve * 2 ? Int(clamping: limit.rlim_cur - reserve) : Int(clamping: limit.rlim_cur / 2)
            if fitting < cap {
                logger.notice(
                    "max connections lowered to fit the open-files limit",
                    metadata: ["requested": "\(requested)", "max_connections": "\(fitting)", "nofile": "\(limit.rlim_cur)"])
                cap = fitting
            }
        }
        return ConnectionLimits(
            idleTimeout: .seconds(try Settings.integer(idleTimeout, env: "ENGINE_RUNTIME_IDLE_TIMEOUT", default: 60, range: 1...3600)),
            requestTimeout: .seconds(try Settings.integer(requestTimeout, env: "ENGINE_RUNTIME_REQUEST_TIMEOUT", default: 30, range: 1...600)),
            maxConnections: cap,
            drainTimeout: .seconds(try Settings.integer(shutdownTimeout, env: "ENGINE_RUNTIME_SHUTDOWN_TIMEOUT", default: 10, range: 0...600)))
    }

    /// No engine of its own: `INFERENCE_ENGINE=none`, or the model runtime on and no engine
    /// named by a flag or AIBrix's variables.
    func launchesOnly() -> Bool {
        let kind = (engine ?? Settings.environment("INFERENCE_ENGINE"))?.lowercased()
        if kind == "none" { return true }
        let runtimeOn = modelRuntime || ["1", "true"].contains(Settings.environment("ENGINE_RUNTIME_MODEL_RUNTIME")?.lowercased() ?? "")
        return runtimeOn && kind == nil && engineEndpoint == nil && Settings.environment("INFERENCE_ENGINE_ENDPOINT") == nil
    }

    /// Engines, auth, limits and deadlines from flags, environment and the engines file.
    func runtimeConfiguration() throws -> RuntimeConfiguration {
        let engines: [EngineConfiguration]
        let defaultEngine: String
        if let path = config ?? Settings.environment("ENGINE_RUNTIME_CONFIG") {
            let file: EnginesFile
            do {
                file = try JSONCoding.decode(EnginesFile.self, from: try Settings.readFile(path, limit: 1 << 20))
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("engines file \(path) is not valid: \(error)")
            }
            engines = try file.engines.map { entry in
                func secret(_ variable: String?, field: String) throws -> String? {
                    guard let variable else { return nil }
                    guard let value = Settings.environment(variable) else {
                        throw ValidationError("engine \"\(entry.name)\": \(field) names \(variable), which is not set")
                    }
                    return value
                }
                return EngineConfiguration(
                    name: entry.name, engine: entry.engine.lowercased(), driver: entry.driver, endpoint: entry.endpoint,
                    apiKey: try secret(entry.api_key_env, field: "api_key_env"),
                    adminAPIKey: try secret(entry.admin_api_key_env, field: "admin_api_key_env"),
                    engineVersion: entry.engine_version, options: entry.options, isolated: entry.isolated ?? false)
            }
            defaultEngine = file.default_engine ?? engines.first?.name ?? "default"
        } else if launchesOnly() {
            // A warm pool's sidecar: its engines are the ones it launches.
            engines = []
            defaultEngine = "default"
        } else {
            engines = [
                EngineConfiguration(
                    name: "default",
                    engine: Settings.string(engine, env: "INFERENCE_ENGINE", default: "vllm").lowercased(),
                    endpoint: Settings.string(engineEndpoint, env: "INFERENCE_ENGINE_ENDPOINT", default: "http://localhost:8000"),
                    apiKey: Settings.environment("INFERENCE_ENGINE_API_KEY"),
                    adminAPIKey: Settings.environment("INFERENCE_ENGINE_ADMIN_API_KEY"),
                    engineVersion: Settings.environment("INFERENCE_ENGINE_VERSION"))
            ]
            defaultEngine = "default"
        }
        // An empty token is a mistake in a manifest (a secret that did not resolve), not a
        // request to turn authentication off: that is what leaving the variable out means.
        if let raw = getenv("ENGINE_RUNTIME_AUTH_TOKEN"), String(cString: raw).allSatisfy(\.isWhitespace) {
            throw ValidationError(
                "ENGINE_RUNTIME_AUTH_TOKEN is set but empty: give it a token, or unset it to turn authentication off")
        }
        var authToken = Settings.environment("ENGINE_RUNTIME_AUTH_TOKEN")
        if let path = authTokenFile {
            let text = String(decoding: try Settings.readFile(path, limit: 4096), as: UTF8.self)
            authToken = String(text.filter { !$0.isWhitespace })
            if authToken?.isEmpty ?? true { throw ValidationError("auth token file \(path) is empty") }
        }
        let deadlines = Deadlines(
            probe: .seconds(try Settings.integer(probeTimeout, env: "ENGINE_RUNTIME_PROBE_TIMEOUT", default: 3, range: 1...600)),
            mutation: .seconds(try Settings.integer(mutationTimeout, env: "ENGINE_RUNTIME_MUTATION_TIMEOUT", default: 60, range: 1...3600)))
        let configuration = RuntimeConfiguration(
            engines: engines, defaultEngine: defaultEngine, authToken: authToken,
            maxBodyBytes: try Settings.integer(maxBodyBytes, env: "ENGINE_RUNTIME_MAX_BODY_BYTES", default: 1 << 20, range: 1024...(64 << 20)),
            deadlines: deadlines)
        do {
            return try configuration.validated(allowingNoEngine: launchesOnly())
        } catch {
            throw ValidationError(error.description)
        }
    }
}

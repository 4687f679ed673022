import ArgumentParser
import Hummingbird
import ServiceLifecycle
import Logging

/// Which engine the simulator imitates.
enum Flavor: String, ExpressibleByArgument, CaseIterable, Sendable {
    case vllm, sglang
}

struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-simulator",
        abstract: "A stand-in for a vLLM or SGLang server: their management routes, status codes, bodies and metrics, with fault knobs.",
        discussion: """
            For tests and demos of engine-runtime; no model runs. Every knob can also be changed \
            while it runs: POST /_sim/config with a JSON object of the same names in snake_case \
            (latency_ms, latency_path: the latency only on routes starting with it, error_rate, \
            malformed, hang, dead, running_requests, waiting_requests, \
            prompt_tokens_total, generation_tokens_total, metrics_bytes, started: ends an SGLang \
            start-up now). GET /_sim/stats counts \
            the requests per route.

            Started as an engine is (the model runtime's launch plans): `engine-simulator serve \
            MODEL --host H --port P --served-model-name N ...` (vLLM's `vllm serve`) or \
            `engine-simulator -m sglang.launch_server --model-path M ...` (SGLang's), usually \
            through a link named vllm or python3. The engine's flags and environment \
            (VLLM_SERVER_DEV_MODE, VLLM_ALLOW_RUNTIME_LORA_UPDATING, ENABLE_KVCACHED with \
            KVCACHED_IPC_NAME) set the matching options; ENGINE_SIMULATOR_STARTUP_DELAY and \
            ENGINE_SIMULATOR_SHUTDOWN_DELAY (seconds) set --startup-delay and --shutdown-delay.
            """)

    @Option(help: "vllm or sglang.") var flavor: Flavor = .vllm
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the log says which).") var port = 8000
    @Option(help: "Served model name.") var model = "sim-model"
    @Option(
        help: ArgumentHelp(
            "The release to reproduce and report: vLLM 0.33.0 (default) or 0.11.0, SGLang 0.5.23 (default) or 0.5.4; a version in between behaves as the older one."
        ))
    var engineVersion: String?
    @Option(help: "Require this bearer token (on the routes the real engine protects).") var apiKey: String?
    @Option(help: "SGLang: the administrator token its management routes take (both set: only this one works there).")
    var adminApiKey: String?
    @Flag(inversion: .prefixedNo, help: "LoRA enabled in the engine (--enable-lora); off: loads fail the way the engine fails them.")
    var lora = true
    @Option(help: "Data-parallel ranks (vLLM engine label, SGLang dp_rank), each reporting the knobs' values.")
    var dataParallelSize = 1
    @Option(help: "SGLang: tensor-parallel ranks per data-parallel group (DP-attention rank labels).")
    var tensorParallelSize = 1
    @Flag(help: "SGLang: --enable-metrics-for-all-schedulers (every TP rank repeats its group's series).")
    var metricsForAllSchedulers = false
    @Flag(help: "SGLang: --enable-priority-scheduling (request gauges per priority beside the total).")
    var priorityScheduling = false
    @Option(help: "Seconds before the engine is up (vLLM: port closed; SGLang: /health answers 503).")
    var startupDelay: Double = 0
    @Option(help: "Added latency per request, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Fraction of requests answered with HTTP 500 (0...1).") var errorRate: Double = 0
    @Flag(help: "Answer JSON routes with a malformed body.") var malformed = false
    @Flag(help: "Never answer (requests hang until the client gives up).") var hang = false
    @Option(help: "Grow /metrics to about this many bytes (more data-parallel ranks).") var metricsBytes: Int = 0
    @Flag(inversion: .prefixedNo, help: "vLLM: runtime LoRA updating enabled (VLLM_ALLOW_RUNTIME_LORA_UPDATING).")
    var loraUpdating = true
    @Flag(inversion: .prefixedNo, help: "vLLM: development routes (sleep, wake, cache reset) enabled (VLLM_SERVER_DEV_MODE).")
    var devMode = true
    @Flag(help: "vLLM: old flat error bodies instead of the nested {\"error\":{...}} shape.") var flatErrors = false
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @Option(
        help: ArgumentHelp(
            "kvcached: create the shared-memory segment /dev/shm/NAME as an engine does when its KV cache is set up, and remove it on an orderly exit.",
            valueName: "name"))
    var kvSegment: String?
    @Option(help: "Seconds the engine takes to exit after SIGTERM (an engine stuck tearing down its accelerator state).")
    var shutdownDelay: Double = 0
    @Option(help: ArgumentHelp("Engine flags given on an engine command line that the simulator accepts and ignores (logged).", valueName: "flags"))
    var engineFlags: String?

    func run() async throws {
        let logger = {
            var logger = Logger(label: "engine-simulator")
            logger.logLevel = logLevel
            return logger
        }()
        let state = SimulatorState(
            knobs: Knobs(
                latency_ms: latencyMs, error_rate: errorRate, malformed: malformed, hang: hang, dead: false,
                running_requests: 0, waiting_requests: 0, prompt_tokens_total: 0, generation_tokens_total: 0,
                metrics_bytes: metricsBytes))
        guard (1...64).contains(dataParallelSize), (1...64).contains(tensorParallelSize) else {
            throw ValidationError("--data-parallel-size and --tensor-parallel-size must be 1 to 64")
        }
        let version = engineVersion ?? Profile.defaultVersions[flavor]!
        let settings = SimulatorSettings(
            flavor: flavor, model: model, engineVersion: version, profile: Profile(flavor: flavor, version: version),
            apiKey: apiKey, adminAPIKey: adminApiKey, lora: lora, loraUpdating: loraUpdating, devMode: devMode,
            flatErrors: flatErrors, dataParallelSize: dataParallelSize, tensorParallelSize: tensorParallelSize,
            metricsForAllSchedulers: metricsForAllSchedulers, priorityScheduling: priorityScheduling,
            readyAt: ContinuousClock.now + .milliseconds(Int(startupDelay * 1000)))
        if flavor == .vllm, startupDelay > 0 {
            // vLLM does not listen until the model is loaded: refused connections meanwhile.
            logger.info("loading (simulated)", metadata: ["seconds": "\(startupDelay)"])
            try await Task.sleep(for: .milliseconds(Int(startupDelay * 1000)))
        }
        if let engineFlags { logger.info("engine flags accepted and ignored", metadata: ["flags": "\(engineFlags)"]) }
        let segment = try kvSegment.map { try KVSegmentFile(name: $0) }
        defer { segment?.remove() }
        let router = SimulatorRoutes.makeRouter(settings: settings, state: state)
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                logger.info(
                    "engine-simulator listening",
                    metadata: ["flavor": "\(flavor.rawValue)", "version": "\(version)", "port": "\(channel.localAddress?.port ?? -1)"])
            },
            logger: logger)
        // The watcher marks the shutdown so hung requests end and the server's drain finishes.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: ShutdownWatcher(state: state), successTerminationBehavior: .ignore)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if shutdownDelay > 0 {
            logger.info("shutting down slowly (simulated)", metadata: ["seconds": "\(shutdownDelay)"])
            try? await Task.sleep(for: .milliseconds(Int(shutdownDelay * 1000)))
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Waits for the shutdown to begin and says so to the engine's state.
struct ShutdownWatcher: Service {
    let state: SimulatorState

    func run() async throws {
        try? await gracefulShutdown()
        state.stopping.store(true, ordering: .relaxed)
    }
}

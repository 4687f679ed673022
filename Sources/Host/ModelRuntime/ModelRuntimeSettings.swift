/// How the model runtime (engines the sidecar launches itself) is configured. Read from the
/// environment once at start; a bad value fails the start with one line.
public struct ModelRuntimeSettings: Sendable {
    public var enabled: Bool
    /// Where the registry (`engines.json`), the engines' logs and working directories live.
    public var stateDirectory: String
    /// The registry file (AIBrix: `AIBRIX_ENGINE_REGISTRY_PATH`).
    public var registryPath: String
    /// Ports engines may get, explicit or picked (AIBrix: 20000-20999).
    public var ports: ClosedRange<Int>
    /// The address engines listen on: the gateway routes to podIP:port, so all interfaces by
    /// default; 127.0.0.1 keeps them to the pod.
    public var engineHost: String
    /// Engine flags operators may pass per engine kind; `*` allows any flag (not advised).
    public var allowedArgs: [String: Set<String>]
    /// The operator's program per engine kind, replacing the driver's default.
    public var commands: [String: [String]]
    /// PATH of the engines (and where their programs are looked up).
    public var enginePath: String
    /// Variables of the sidecar passed to engines beside the basics (never its secrets).
    public var environmentPassthrough: [String]
    /// SIGTERM first, SIGKILL after this long: for deactivate, restarts and shutdown.
    public var stopGrace: Duration
    /// Restarts allowed within `restartWindow` before the model is failed.
    public var restartBudget: Int
    public var restartWindow: Duration
    public var restartBackoffBase: Duration
    public var restartBackoffMax: Duration
    /// An engine active this long has its restart count reset.
    public var stableAfter: Duration
    /// An active engine that answers "not ready" this long in a row is restarted.
    public var unhealthyRestartAfter: Duration
    /// Overrides every plan's boot timeout when set.
    public var bootTimeout: Duration?
    public var maxModels: Int
    /// Engine log files are rotated past this size.
    public var logMaxBytes: Int
    /// Engines get kvcached's variables (ENABLE_KVCACHED, KVCACHED_IPC_NAME ...).
    public var kvcached: Bool
    /// Where kvcached's shared-memory segments are (`/dev/shm`).
    public var segmentDirectory: String
    /// Served-artifact markers go under `<this>/.aibrix/served/` (AIBRIX_WEIGHT_CACHE_DIR).
    public var markerRoot: String
    public var supervisorInterval: Duration

    public static let defaultAllowedArgs: [String: Set<String>] = [
        "vllm": [
            "--max-model-len", "--dtype", "--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp", "--max-num-seqs",
            "--max-num-batched-tokens", "--enable-lora", "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--enable-prefix-caching",
            "--no-enable-prefix-caching", "--quantization", "--kv-cache-dtype", "--enforce-eager", "--block-size", "--seed",
            "--revision", "--tokenizer-mode", "--enable-chunked-prefill", "--disable-log-stats", "--disable-log-requests",
        ],
        "sglang": [
            "--context-length", "--dtype", "--tp-size", "--tensor-parallel-size", "--pp-size", "--max-running-requests",
            "--chunked-prefill-size", "--enable-lora", "--max-lora-rank", "--max-loras-per-batch", "--lora-target-modules",
            "--quantization", "--kv-cache-dtype", "--disable-radix-cache", "--random-seed", "--revision", "--skip-server-warmup",
            "--enable-metrics", "--log-level",
        ],
        "llamacpp": [
            "-c", "--ctx-size", "-ngl", "--n-gpu-layers", "-np", "--parallel", "-t", "--threads", "-b", "--batch-size",
            "--lora", "--lora-scaled", "--no-warmup", "--seed", "-fa", "--flash-attn", "--cache-type-k", "--cache-type-v",
            "--log-disable", "--no-webui", "--slots", "--no-slots",
        ],
    ]

    public static let defaultCommands: [String: String] = [:]

    /// Settings from the environment (`ENGINE_RUNTIME_MODEL_*`, AIBrix's `AIBRIX_*`).
    public static func fromEnvironment(_ environment: [String: String], enabled flag: Bool?) throws(RuntimeError) -> ModelRuntimeSettings {
        func text(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingWhitespace(), !value.isEmpty else { return nil }
            return value
        }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws(RuntimeError) -> Int {
            guard let raw = text(name) else { return fallback }
            return try DownloadSettings.integer(raw, name: name, in: range)
        }
        func path(_ name: String, _ fallback: String) throws(RuntimeError) -> String {
            let raw = text(name) ?? fallback
            guard let normalized = ArtifactRoots.normalized(raw) else {
                throw RuntimeError(.invalidArgument, "\(name) must be an absolute path without '..', got \"\(raw)\"")
            }
            return normalized
        }
        let enabledText = text("ENGINE_RUNTIME_MODEL_RUNTIME")
        guard enabledText == nil || ["0", "1", "true", "false"].contains(enabledText!.lowercased()) else {
            throw RuntimeError(.invalidArgument, "ENGINE_RUNTIME_MODEL_RUNTIME=\"\(enabledText!)\" must be 1 or 0")
        }
        let enabled = flag ?? ["1", "true"].contains(enabledText?.lowercased() ?? "0")
        let state = try path("ENGINE_RUNTIME_MODEL_STATE_DIR", "/var/run/engine-runtime")
        let registry = try path("AIBRIX_ENGINE_REGISTRY_PATH", state + "/engines.json")
        let portText = text("ENGINE_RUNTIME_MODEL_PORTS") ?? "20000-20999"
        let bounds = portText.split(separator: "-").map { Int($0.trimmingWhitespace()) }
        guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 1024 <= low, low <= high, high <= 65535 else {
            throw RuntimeError(.invalidArgument, "ENGINE_RUNTIME_MODEL_PORTS=\"\(portText)\" must be LOW-HIGH within 1024-65535")
        }
        var allowed = defaultAllowedArgs
        var commands: [String: [String]] = [:]
        for (name, value) in environment {
            guard name.hasPrefix("ENGINE_RUNTIME_MODEL_"), let kind = Self.kind(in: name) else { continue }
            if name.hasSuffix("_ARGS") {
                allowed[kind] = Set(value.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty })
            } else if name.hasSuffix("_COMMAND") {
                let words = value.split(whereSeparator: \.isWhitespace).map(String.init)
                guard !words.isEmpty else { throw RuntimeError(.invalidArgument, "\(name) is empty: give the engine's program") }
                // Engines start in their own working directory: a relative path would name
                // another file there.
                guard words[0].hasPrefix("/") || !words[0].contains("/") else {
                    throw RuntimeError(.invalidArgument, "\(name): the program \(words[0]) must be an absolute path or a name on the engines' PATH")
                }
                commands[kind] = words
            }
        }
        let home = environment["HOME"] ?? "/root"
        let grace = try integer("ENGINE_RUNTIME_MODEL_STOP_GRACE", 20, 1...3600)
        let boot = try integer("ENGINE_RUNTIME_MODEL_BOOT_TIMEOUT", 0, 0...86_400)
        return ModelRuntimeSettings(
            enabled: enabled, stateDirectory: state, registryPath: registry, ports: low...high,
            engineHost: text("ENGINE_RUNTIME_MODEL_ENGINE_HOST") ?? "0.0.0.0", allowedArgs: allowed, commands: commands,
            enginePath: text("ENGINE_RUNTIME_MODEL_ENGINE_PATH") ?? environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            environmentPassthrough: (text("ENGINE_RUNTIME_MODEL_ENV") ?? "").split(separator: ",").map { $0.trimmingWhitespace() }
                .filter { !$0.isEmpty },
            stopGrace: .seconds(grace),
            restartBudget: try integer("ENGINE_RUNTIME_MODEL_RESTART_BUDGET", 5, 0...1000),
            restartWindow: .seconds(try integer("ENGINE_RUNTIME_MODEL_RESTART_WINDOW", 600, 1...86_400)),
            restartBackoffBase: .milliseconds(try integer("ENGINE_RUNTIME_MODEL_RESTART_BACKOFF_MS", 2000, 0...600_000)),
            restartBackoffMax: .seconds(60), stableAfter: .seconds(try integer("ENGINE_RUNTIME_MODEL_STABLE_AFTER", 300, 1...86_400)),
            unhealthyRestartAfter: .seconds(try integer("ENGINE_RUNTIME_MODEL_UNHEALTHY_AFTER", 60, 1...86_400)),
            bootTimeout: boot == 0 ? nil : .seconds(boot), maxModels: try integer("ENGINE_RUNTIME_MODEL_MAX_MODELS", 16, 1...256),
            logMaxBytes: try integer("ENGINE_RUNTIME_MODEL_LOG_MAX_BYTES", 64 << 20, 4096...(1 << 40)),
            kvcached: (text("ENGINE_RUNTIME_MODEL_KVCACHED") ?? "1") != "0",
            segmentDirectory: try path("ENGINE_RUNTIME_MODEL_SEGMENT_DIR", "/dev/shm"),
            markerRoot: try path("AIBRIX_WEIGHT_CACHE_DIR", home + "/.cache/huggingface"),
            supervisorInterval: .milliseconds(try integer("ENGINE_RUNTIME_MODEL_SUPERVISOR_INTERVAL_MS", 1000, 50...60_000)))
    }

    /// `ENGINE_RUNTIME_MODEL_<KIND>_ARGS` / `_COMMAND`: the kind in lower case.
    private static func kind(in name: String) -> String? {
        let middle = name.dropFirst("ENGINE_RUNTIME_MODEL_".count)
        for suffix in ["_ARGS", "_COMMAND"] where middle.hasSuffix(suffix) {
            let kind = middle.dropLast(suffix.count).lowercased()
            return kind.isEmpty ? nil : kind
        }
        return nil
    }
}

/// The JSON of `plan_launch` (ABI 1.3), shared by the host and Swift drivers so both sides
/// read and write one shape.

/// What the host asks a driver to launch: one engine serving one model.
public struct LaunchSpec: Codable, Sendable, Equatable {
    public var engineKind: String
    /// The served name (`--served-model-name`, or llama.cpp's `--alias`).
    public var modelName: String
    /// A local path the host has already resolved (downloaded, verified).
    public var modelPath: String
    public var host: String
    public var port: Int
    /// The operator's replacement for the engine's program; nil: the driver's default.
    public var command: [String]?
    /// Operator-allowed flags in order, each `[flag, value]`; value "" is a bare flag.
    public var args: [[String]]
    public var config: JSONValue?

    public init(
        engineKind: String, modelName: String, modelPath: String, host: String, port: Int, command: [String]? = nil,
        args: [[String]] = [], config: JSONValue? = nil
    ) {
        self.engineKind = engineKind
        self.modelName = modelName
        self.modelPath = modelPath
        self.host = host
        self.port = port
        self.command = command
        self.args = args
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case engineKind = "engine_kind", modelName = "model_name", modelPath = "model_path", host, port, command, args, config
    }

    /// The flags as argv words: each flag, then its value unless it is a bare flag.
    public var argumentWords: [String] {
        args.flatMap { pair -> [String] in
            guard let flag = pair.first else { return [] }
            let value = pair.count > 1 ? pair[1] : ""
            return value.isEmpty ? [flag] : [flag, value]
        }
    }
}

/// How to start the engine, and how long it may take to become ready.
public struct LaunchPlan: Codable, Sendable, Equatable {
    public struct Readiness: Codable, Sendable, Equatable {
        /// How long the engine may take from spawn to its first ready answer before the host
        /// counts the start as failed and restarts it.
        public var bootTimeoutSeconds: Int
        /// How often the host asks the driver whether the engine is ready while it boots.
        public var probeIntervalMilliseconds: Int

        public init(bootTimeoutSeconds: Int, probeIntervalMilliseconds: Int = 500) {
            self.bootTimeoutSeconds = bootTimeoutSeconds
            self.probeIntervalMilliseconds = probeIntervalMilliseconds
        }

        enum CodingKeys: String, CodingKey {
            case bootTimeoutSeconds = "boot_timeout_seconds", probeIntervalMilliseconds = "probe_interval_ms"
        }
    }

    /// Program first; never a shell string.
    public var argv: [String]
    /// Added to the host's clean environment.
    public var env: [String: String]
    public var readiness: Readiness
    /// The flags the plan sets itself (informational: the host refuses them from operators too).
    public var ownedFlags: [String]

    public init(argv: [String], env: [String: String] = [:], readiness: Readiness, ownedFlags: [String] = []) {
        self.argv = argv
        self.env = env
        self.readiness = readiness
        self.ownedFlags = ownedFlags
    }

    enum CodingKeys: String, CodingKey {
        case argv, env, readiness
        case ownedFlags = "owned_flags"
    }
}

/// One engine the runtime manages.
public struct EngineConfiguration: Sendable, Equatable {
    /// The engine's name in routes (`/v1/engines/{name}/...`); `default` for the one from env.
    public var name: String
    /// The engine kind a driver must drive (`vllm`, `sglang`, or a vendor's kind).
    public var engine: String
    /// A specific driver by name; nil takes the first driver that drives `engine`.
    public var driver: String?
    public var endpoint: String
    /// Bearer token the engine expects. Never logged.
    public var apiKey: String?
    /// The engine's administrator token (SGLang `--admin-api-key`). Never logged.
    public var adminAPIKey: String?
    /// Informational engine version (any string).
    public var engineVersion: String?
    /// Driver-specific options (a JSON object).
    public var options: JSONValue?
    /// Run this engine's driver in a host process of its own (`ENGINE_RUNTIME_ISOLATED_DRIVERS`).
    public var isolated: Bool

    public init(
        name: String, engine: String, driver: String? = nil, endpoint: String, apiKey: String? = nil,
        adminAPIKey: String? = nil, engineVersion: String? = nil, options: JSONValue? = nil, isolated: Bool = false
    ) {
        self.isolated = isolated
        self.adminAPIKey = adminAPIKey
        self.name = name
        self.engine = engine
        self.driver = driver
        self.endpoint = endpoint
        self.apiKey = apiKey
        self.engineVersion = engineVersion
        self.options = options
    }
}

/// How long the runtime waits for a driver, per kind of call.
public struct Deadlines: Sendable, Equatable {
    /// Health, readiness and other read operations.
    public var probe: Duration = .seconds(3)
    /// Adapter and model loads and other mutations.
    public var mutation: Duration = .seconds(60)

    public init(probe: Duration = .seconds(3), mutation: Duration = .seconds(60)) {
        self.probe = probe
        self.mutation = mutation
    }
}

/// Everything `serve` needs besides the drivers: engines, security and limits.
public struct RuntimeConfiguration: Sendable {
    public var engines: [EngineConfiguration]
    /// The engine the AIBrix-compatible routes and the `/v1/...` shortcuts address.
    public var defaultEngine: String
    /// When set, every route but /healthz and /ready needs `Authorization: Bearer <token>`.
    public var authToken: String?
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    public var deadlines: Deadlines

    public init(
        engines: [EngineConfiguration], defaultEngine: String, authToken: String? = nil, maxBodyBytes: Int = 1 << 20,
        deadlines: Deadlines = Deadlines()
    ) {
        self.engines = engines
        self.defaultEngine = defaultEngine
        self.authToken = authToken
        self.maxBodyBytes = maxBodyBytes
        self.deadlines = deadlines
    }
}

/// The optional engines file (`--config`): several engines for one sidecar.
///
/// ```json
/// {"default_engine": "chat",
///  "engines": [{"name": "chat", "engine": "vllm", "endpoint": "http://localhost:8000"},
///              {"name": "embed", "engine": "sglang", "endpoint": "http://localhost:30000",
///               "api_key_env": "EMBED_API_KEY"}]}
/// ```
/// `api_key_env` and `admin_api_key_env` name environment variables holding the keys, so
/// secrets stay out of the file.
public struct EnginesFile: Decodable, Sendable {
    public struct Entry: Decodable, Sendable {
        public var name: String
        public var engine: String
        public var driver: String?
        public var endpoint: String
        public var api_key_env: String?
        public var admin_api_key_env: String?
        public var engine_version: String?
        public var options: JSONValue?
        /// Run the engine's driver isolated, in a host process of its own.
        public var isolated: Bool?
    }

    public var default_engine: String?
    public var engines: [Entry]
}

/// A configuration problem, reported as one line before the server starts.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension RuntimeConfiguration {
    /// Checks names, endpoints and the default engine; throws the first problem found. No
    /// engine at all is allowed only for a sidecar that launches its engines itself (the
    /// model runtime of a warm pool).
    public func validated(allowingNoEngine: Bool = false) throws(ConfigurationError) -> RuntimeConfiguration {
        if engines.isEmpty, allowingNoEngine { return self }
        guard !engines.isEmpty else { throw ConfigurationError("no engine configured") }
        var seen = Set<String>()
        for engine in engines {
            guard ResourceName.isValidEngineName(engine.name) else {
                throw ConfigurationError("engine name \"\(engine.name)\" must match [a-z0-9][a-z0-9_-]{0,62}")
            }
            guard seen.insert(engine.name).inserted else { throw ConfigurationError("engine \"\(engine.name)\" is configured twice") }
            guard engine.endpoint.hasPrefix("http://") || engine.endpoint.hasPrefix("https://") else {
                throw ConfigurationError("engine \"\(engine.name)\": endpoint \"\(engine.endpoint)\" must start with http:// or https://")
            }
            if let options = engine.options, case .object = options {} else if engine.options != nil {
                throw ConfigurationError("engine \"\(engine.name)\": options must be a JSON object")
            }
        }
        guard seen.contains(defaultEngine) else {
            throw ConfigurationError("default engine \"\(defaultEngine)\" is not among the configured engines")
        }
        guard maxBodyBytes >= 1024 else { throw ConfigurationError("the request body limit must be at least 1024 bytes") }
        return self
    }
}

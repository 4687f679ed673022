import Logging

/// LoRA adapters on an engine: direct loads, loads from an artifact (downloaded first when it
/// is remote), unloads with AIBrix's cleanup of a downloaded copy, and the loaded list. Every
/// route that touches adapters goes through here, so the same load through any route is one
/// single-flight key and one engine call.
public struct AdapterService: Sendable {
    let downloads: DownloadManager
    let secrets: CredentialsSecrets

    public init(downloads: DownloadManager, secrets: CredentialsSecrets) {
        self.downloads = downloads
        self.secrets = secrets
    }

    /// A load of an adapter from a path the engine can read.
    public struct Load: Codable, Sendable, Equatable {
        public var lora_name: String
        public var lora_path: String
        public var load_inplace: Bool?
        public var pinned: Bool?

        public init(name: String, path: String, loadInPlace: Bool? = nil, pinned: Bool? = nil) {
            lora_name = name
            lora_path = path
            load_inplace = loadInPlace
            self.pinned = pinned
        }

        /// Loads that ask for the same thing share one flight; an absent flag is its default.
        var flightKey: String { "\(lora_name)\u{0}\(lora_path)\u{0}\(load_inplace ?? false)\u{0}\(pinned ?? false)" }
    }

    /// Loads `load` on `engine`; returns the engine's answer.
    public func load(_ load: Load, on engine: any Engine, logger: Logger) async throws(RuntimeError) -> [UInt8] {
        try Self.checkName(load.lora_name)
        guard !load.lora_path.isEmpty else { throw RuntimeError.invalid("lora_path must not be empty") }
        let answer = try await engine.adapterCall(.loadLoRAAdapter, key: load.flightKey, load)
        logger.info("LoRA adapter loaded", metadata: ["engine": "\(engine.name)", "adapter": "\(load.lora_name)"])
        return answer
    }

    /// AIBrix's artifact mode: where the adapter comes from and how to reach it.
    public struct ArtifactLoad: Sendable {
        public var name: String
        public var url: String
        public var credentialsSecret: String?
        public var credentials: [String: String]?
        public var additionalConfig: [String: String]?
        public var localDir: String?

        public init(
            name: String, url: String, credentialsSecret: String? = nil, credentials: [String: String]? = nil,
            additionalConfig: [String: String]? = nil, localDir: String? = nil
        ) {
            self.name = name
            self.url = url
            self.credentialsSecret = credentialsSecret
            self.credentials = credentials
            self.additionalConfig = additionalConfig
            self.localDir = localDir
        }
    }

    /// Local artifacts (an absolute path or file:// URL) are loaded in place; remote ones are
    /// downloaded first into `<local_dir>/<name>` (default: the adapter root), sharing one
    /// download among concurrent requests, and loaded from there once complete and verified.
    /// Returns the path loaded and the engine's answer.
    public func load(
        _ artifact: ArtifactLoad, on engine: any Engine, logger: Logger
    ) async throws(RuntimeError) -> (localPath: String, answer: [UInt8]) {
        try Self.checkName(artifact.name)
        let source = try ArtifactSource.parse(artifact.url)
        let localPath: String
        if case .local(let path) = source {
            localPath = path
        } else {
            var credentials = artifact.credentials ?? [:]
            if artifact.credentials == nil, let secret = artifact.credentialsSecret { credentials = try secrets.read(secret) }
            // AIBrix merges additional_config into the credentials; keys that mean nothing
            // to a download are left alone rather than refused.
            for (key, value) in artifact.additionalConfig ?? [:] where DownloadSettings.credentialKeys.contains(key) {
                credentials[key] = value
            }
            let settings = try downloads.settings.applying(credentials: credentials, to: source)
            let job = try downloads.start(
                .init(uri: artifact.url, localDir: artifact.localDir, modelName: artifact.name, settings: settings),
                defaultDirectory: downloads.roots.adapters)
            localPath = try await job.wait().get().path
        }
        let answer = try await load(Load(name: artifact.name, path: localPath), on: engine, logger: logger)
        return (localPath, answer)
    }

    /// Unloads `name` from `engine`. `cleanupLocal` removes the runtime's downloaded copy (only
    /// a copy the runtime downloaded is ever removed); its default is AIBrix's effective one:
    /// `{lora_name}` alone cleans up, a direct-mode body (with `lora_int_id`) does not. Returns
    /// the engine's answer and whether a local copy was removed.
    public func unload(
        _ name: String, loraIntID: Int? = nil, cleanupLocal: Bool? = nil, on engine: any Engine, logger: Logger
    ) async throws(RuntimeError) -> (answer: [UInt8], removedLocalCopy: Bool) {
        try Self.checkName(name)
        struct Unload: Codable, Sendable {
            var lora_name: String
            var lora_int_id: Int?
        }
        let answer = try await engine.adapterCall(.unloadLoRAAdapter, key: name, Unload(lora_name: name, lora_int_id: loraIntID))
        logger.info("LoRA adapter unloaded", metadata: ["engine": "\(engine.name)", "adapter": "\(name)"])
        var removed = false
        if cleanupLocal ?? (loraIntID == nil), let target = try? ArtifactTarget(localDir: downloads.roots.adapters, modelName: name),
            await downloads.remove(target)
        {
            logger.info("local adapter copy removed", metadata: ["path": "\(target.path)"])
            removed = true
        }
        return (answer, removed)
    }

    /// The adapters `engine` has loaded, from the LoRA cards of its model list.
    public func list(on engine: any Engine) async throws(RuntimeError) -> [LoadedAdapter] {
        try LoadedAdapter.fromModelList(try await engine.call(.listModels, EmptyRequest()))
    }

    static func checkName(_ name: String) throws(RuntimeError) {
        if let problem = ResourceName.adapterNameProblem(name) {
            throw RuntimeError.invalid("invalid lora_name \"\(name.prefix(64))\": \(problem)")
        }
    }
}

import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The AIBrix runtime sidecar's routes, with the same paths, fields and success codes, and its
/// known defects fixed: /ready probes the engine, engine errors are reported (never retried
/// into a generic 500), names accept every Kubernetes object name, the API key is forwarded.
struct CompatibleRoutes {
    let engines: EngineRegistry
    let body: RequestBody
    let downloads: DownloadManager
    let secrets: CredentialsSecrets

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in JSONResponse.raw(Array(#"{"status":"ok"}"#.utf8)) }
        router.get("/ready") { _, _ in try await Self.ready(engines.engines) }
        router.get("/v1/models") { _, _ in
            JSONResponse.raw(try await engines.defaultEngine.callOrThrow(.listModels, EmptyRequest()))
        }
        router.post("/v1/lora_adapter/load") { request, context in try await load(request, context) }
        router.post("/v1/lora_adapter/unload") { request, context in try await unload(request, context) }
    }

    /// 200 `{"status":"ready"}` when every engine answers its readiness check; 503 with the
    /// reason otherwise.
    static func ready(_ list: [ManagedEngine]) async throws -> Response {
        struct Answer: Encodable {
            var status: String
            var reason: String?
        }
        let results = await withTaskGroup(of: (String, Bool, String?).self) { group in
            for engine in list { group.addTask { let (ready, reason) = await engine.readiness(); return (engine.name, ready, reason) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let problems = results.filter { !$0.1 }.sorted { $0.0 < $1.0 }.map { "engine \($0.0): \($0.2 ?? "not ready")" }
        if problems.isEmpty { return try JSONResponse.make(Answer(status: "ready")) }
        return try JSONResponse.make(Answer(status: "not ready", reason: problems.joined(separator: "; ")), status: .serviceUnavailable)
    }

    static let directLoadFields: Set<String> = ["lora_name", "lora_path"]
    static let delegatedLoadFields: Set<String> = [
        "lora_name", "artifact_url", "credentials_secret", "credentials", "additional_config", "local_dir",
    ]

    /// Direct mode `{lora_name, lora_path}` answers AIBrix's plain-text success line; the
    /// artifact mode `{lora_name, artifact_url, ...}` answers AIBrix's JSON.
    func load(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (bytes, object) = try await body.checkedBody(request, allowed: Self.directLoadFields.union(Self.delegatedLoadFields))
        if object["lora_path"] != nil, object["artifact_url"] != nil {
            throw APIError.invalid("give either lora_path (direct mode) or artifact_url (artifact mode), not both")
        }
        if object["artifact_url"] != nil {
            return try await loadArtifact(bytes, context)
        }
        if let extra = object.keys.sorted().first(where: { !Self.directLoadFields.contains($0) }) {
            throw APIError.invalid("field \"\(extra)\" belongs to the artifact mode, which needs artifact_url")
        }
        struct Direct: Codable, Sendable {
            var lora_name: String
            var lora_path: String
        }
        let direct = try RequestBody.decode(Direct.self, bytes: bytes)
        try Self.checkAdapterName(direct.lora_name)
        guard !direct.lora_path.isEmpty else { throw APIError.invalid("lora_path must not be empty") }
        let engine = engines.defaultEngine
        _ = try await engine.adapterCallOrThrow(.loadLoRAAdapter, key: "\(direct.lora_name)\u{0}\(direct.lora_path)", direct)
        context.logger.info("LoRA adapter loaded", metadata: ["engine": "\(engine.name)", "adapter": "\(direct.lora_name)"])
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(direct.lora_name)' loaded successfully from '\(direct.lora_path)'.")))
    }

    /// The artifact mode. Local artifacts (an absolute path or file:// URL) are loaded in place;
    /// remote ones are downloaded first into `<local_dir>/<lora_name>` (default
    /// `/tmp/aibrix/adapters`), sharing one download among concurrent requests, and loaded
    /// from there once complete and verified.
    func loadArtifact(_ bytes: [UInt8], _ context: BasicRequestContext) async throws -> Response {
        struct Delegated: Decodable {
            var lora_name: String
            var artifact_url: String
            var credentials_secret: String?
            var credentials: [String: String]?
            var additional_config: [String: String]?
            var local_dir: String?
        }
        let delegated = try RequestBody.decode(Delegated.self, bytes: bytes)
        try Self.checkAdapterName(delegated.lora_name)
        let url = delegated.artifact_url
        let localPath: String
        do {
            let source = try ArtifactSource.parse(url)
            if case .local(let path) = source {
                localPath = path
            } else {
                var credentials = try delegated.credentials ?? delegated.credentials_secret.map { try secrets.read($0) } ?? [:]
                // AIBrix merges additional_config into the credentials; keys that mean nothing
                // to a download are left alone rather than refused.
                for (key, value) in delegated.additional_config ?? [:] where DownloadSettings.credentialKeys.contains(key) {
                    credentials[key] = value
                }
                let settings = try downloads.settings.applying(credentials: credentials, to: source)
                let job = try downloads.start(
                    .init(uri: url, localDir: delegated.local_dir, modelName: delegated.lora_name, settings: settings),
                    defaultDirectory: downloads.roots.adapters)
                localPath = try await job.wait().get().path
            }
        } catch let error as ArtifactError {
            throw APIError(error)
        }
        struct Direct: Codable, Sendable {
            var lora_name: String
            var lora_path: String
        }
        let engine = engines.defaultEngine
        let answer = try await engine.adapterCallOrThrow(
            .loadLoRAAdapter, key: "\(delegated.lora_name)\u{0}\(localPath)", Direct(lora_name: delegated.lora_name, lora_path: localPath))
        context.logger.info("LoRA adapter loaded", metadata: ["engine": "\(engine.name)", "adapter": "\(delegated.lora_name)"])
        struct EngineResponse: Encodable { var message: String }
        struct Answer: Encodable {
            var status = "success"
            var message: String
            var local_path: String
            var engine_response: JSONValue
        }
        let engineAnswer = (try? JSONCoding.decode(JSONValue.self, from: answer)) ?? .null
        return try JSONResponse.make(
            Answer(
                message: "Successfully loaded adapter \(delegated.lora_name) from \(url)", local_path: localPath,
                engine_response: engineAnswer))
    }

    /// Unload reports the engine's error (AIBrix swallowed it and answered 200).
    func unload(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        struct Unload: Codable, Sendable {
            var lora_name: String
            var cleanup_local: Bool?
            var lora_int_id: Int?
        }
        let unload = try await body.decode(Unload.self, request, allowed: ["lora_name", "cleanup_local", "lora_int_id"])
        try Self.checkAdapterName(unload.lora_name)
        struct DriverRequest: Codable, Sendable {
            var lora_name: String
            var lora_int_id: Int?
        }
        let engine = engines.defaultEngine
        _ = try await engine.adapterCallOrThrow(
            .unloadLoRAAdapter, key: unload.lora_name, DriverRequest(lora_name: unload.lora_name, lora_int_id: unload.lora_int_id))
        context.logger.info("LoRA adapter unloaded", metadata: ["engine": "\(engine.name)", "adapter": "\(unload.lora_name)"])
        // AIBrix's effective default: `{lora_name}` alone cleans up, a direct-mode body
        // (with lora_int_id) does not. Only a copy the runtime downloaded is ever removed.
        if unload.cleanup_local ?? (unload.lora_int_id == nil),
            let target = try? ArtifactTarget(localDir: downloads.roots.adapters, modelName: unload.lora_name),
            downloads.remove(target)
        {
            context.logger.info("local adapter copy removed", metadata: ["path": "\(target.path)"])
        }
        struct Answer: Encodable {
            var status = "success"
            var message: String
        }
        return try JSONResponse.make(Answer(message: "Successfully unloaded adapter \(unload.lora_name)"))
    }

    static func checkAdapterName(_ name: String) throws {
        if let problem = ResourceName.adapterNameProblem(name) {
            throw APIError.invalid("invalid lora_name \"\(name.prefix(64))\": \(problem)")
        }
    }
}

extension ManagedEngine {
    /// `call`, with the driver's failure as an API error.
    func callOrThrow(_ operation: DriverOperation, _ request: some Encodable) async throws -> [UInt8] {
        do { return try await call(operation, request) } catch { throw APIError(error) }
    }

    func extensionOrThrow(_ operation: ExtensionOperation, arguments: [UInt8]) async throws -> JSONValue {
        let timeout = TimeAmount(operation.isMutating ? deadlines.mutation : deadlines.probe)
        do {
            return try await instance.invokeExtension(named: operation.name, argumentsJSON: arguments, timeout: timeout)
        } catch {
            throw APIError(error)
        }
    }

    func adapterCallOrThrow(_ operation: DriverOperation, key: String, _ request: some Encodable & Sendable) async throws -> [UInt8] {
        do { return try await adapterCall(operation, key: key, request) } catch { throw APIError(error) }
    }
}

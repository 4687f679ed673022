import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The AIBrix runtime sidecar's routes, with the same paths, fields and success codes, and its
/// known defects fixed: /ready probes the engine, engine errors are reported (never retried
/// into a generic 500), names accept every Kubernetes object name, the API key is forwarded.
struct CompatibleRoutes {
    let engines: EngineDirectory
    let adapters: AdapterService
    let body: RequestBody

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in JSONResponse.raw(Array(#"{"status":"ok"}"#.utf8)) }
        router.get("/ready") { _, _ in try await Self.ready(engines.engines) }
        router.get("/v1/models") { _, _ in
            JSONResponse.raw(try await engines.defaultEngine.call(.listModels, EmptyRequest()))
        }
        router.post("/v1/lora_adapter/load") { request, context in try await load(request, context) }
        router.post("/v1/lora_adapter/unload") { request, context in try await unload(request, context) }
    }

    /// 200 `{"status":"ready"}` when every engine answers its readiness check; 503 with the
    /// reason otherwise.
    static func ready(_ list: [any Engine]) async throws -> Response {
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
            throw RuntimeError.invalid("give either lora_path (direct mode) or artifact_url (artifact mode), not both")
        }
        if object["artifact_url"] != nil {
            // A remote artifact is planned and downloaded first, on the disk: off the event loop.
            return try await offEventLoop { try await loadArtifact(bytes, context) }
        }
        if let extra = object.keys.sorted().first(where: { !Self.directLoadFields.contains($0) }) {
            throw RuntimeError.invalid("field \"\(extra)\" belongs to the artifact mode, which needs artifact_url")
        }
        struct Direct: Decodable {
            var lora_name: String
            var lora_path: String
        }
        let direct = try RequestBody.decode(Direct.self, bytes: bytes)
        let answer = try await adapters.load(.init(name: direct.lora_name, path: direct.lora_path), on: engines.defaultEngine, logger: context.logger)
        // AIBrix's controller matches this route's text; the driver's own answer goes to the log.
        context.logger.debug("driver answered", metadata: ["answer": "\(String(decoding: answer.prefix(512), as: UTF8.self))"])
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(direct.lora_name)' loaded successfully from '\(direct.lora_path)'.")))
    }

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
        let (localPath, answer) = try await adapters.load(
            AdapterService.ArtifactLoad(
                name: delegated.lora_name, url: delegated.artifact_url, credentialsSecret: delegated.credentials_secret,
                credentials: delegated.credentials, additionalConfig: delegated.additional_config, localDir: delegated.local_dir),
            on: engines.defaultEngine, logger: context.logger)
        struct Answer: Encodable {
            var status = "success"
            var message: String
            var local_path: String
            var engine_response: JSONValue
        }
        return try JSONResponse.make(
            Answer(
                message: "Successfully loaded adapter \(delegated.lora_name) from \(delegated.artifact_url)", local_path: localPath,
                engine_response: (try? JSONCoding.decode(JSONValue.self, from: answer)) ?? .null))
    }

    /// Unload reports the engine's error (AIBrix swallowed it and answered 200).
    func unload(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        struct Unload: Decodable {
            var lora_name: String
            var cleanup_local: Bool?
            var lora_int_id: Int?
        }
        let unload = try await body.decode(Unload.self, request, allowed: ["lora_name", "cleanup_local", "lora_int_id"])
        _ = try await adapters.unload(
            unload.lora_name, loraIntID: unload.lora_int_id, cleanupLocal: unload.cleanup_local, on: engines.defaultEngine,
            logger: context.logger)
        struct Answer: Encodable {
            var status = "success"
            var message: String
        }
        return try JSONResponse.make(Answer(message: "Successfully unloaded adapter \(unload.lora_name)"))
    }
}

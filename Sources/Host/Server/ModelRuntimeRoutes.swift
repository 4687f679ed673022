import HTTPTypes
import Hummingbird
import NIOCore

/// AIBrix's model-runtime routes (`/v1/runtime/...`, aibrix/runtime/model_runtime_api.py) over
/// the model runtime. Errors answer AIBrix's `{"detail": ...}` (a list for a malformed body,
/// with 422) beside our envelope's fields, so both kinds of clients read them; activate's
/// errors keep its own shape (`status: "error"`).
struct ModelRuntimeRoutes {
    /// The services behind the routes; nil when the model runtime is off.
    let runtime: ModelRuntime?
    let snapshots: RuntimeSnapshotService?
    let body: RequestBody

    static let paths = [
        "/v1/runtime/models/activate", "/v1/runtime/models/deactivate", "/v1/runtime/models/kv-limit", "/v1/runtime/models/sleep",
        "/v1/runtime/models/wake",
    ]

    func register(on parent: Router<BasicRequestContext>) {
        // Activation writes files and starts processes: not on the event loop.
        let router = parent.group().add(middleware: OffEventLoopMiddleware())
        guard let runtime, let snapshots else {
            let off = RuntimeError(
                .notFound, "the model runtime is off: start engine-runtime with --model-runtime or ENGINE_RUNTIME_MODEL_RUNTIME=1")
            for path in Self.paths { router.post(RouterPath(path)) { _, _ in Self.detail(off) } }
            for path in ["/v1/runtime/models", "/v1/runtime/snapshot"] { router.get(RouterPath(path)) { _, _ in Self.detail(off) } }
            return
        }
        router.post("/v1/runtime/models/activate") { request, _ in
            do {
                let fields = try await Self.fields(request, body, Self.activateFields)
                let activation = try fields.activation()
                do throws(RuntimeError) {
                    return try Self.encoded(try await runtime.activate(activation))
                } catch {
                    let answer = ActivateAnswer(status: "error", model_name: activation.modelName, port: 0, ipc_name: "", message: error.message)
                    return (try? JSONResponse.make(answer, status: HTTPResponse.Status(code: error.kind.httpStatus))) ?? Self.detail(error)
                }
            } catch let error as RuntimeError { return Self.detail(error) }
        }
        router.post("/v1/runtime/models/deactivate") { request, _ in
            try await Self.answering {
                let fields = try await Self.fields(request, body, ["model_name", "mode"])
                let name = try fields.string("model_name")
                _ = try fields.optionalString("mode")
                await runtime.deactivate(name)
                return try JSONResponse.make(["status": "success"])
            }
        }
        router.post("/v1/runtime/models/kv-limit") { request, _ in
            try await Self.answering {
                let fields = try await Self.fields(request, body, ["model_name", "limit_bytes", "operation_id"])
                let bytes = try fields.integer("limit_bytes", range: 0...Int(Int64.max))
                return try JSONResponse.make(
                    try await runtime.kvLimit(model: fields.string("model_name"), bytes: Int64(bytes), operationID: fields.operationID()))
            }
        }
        router.post("/v1/runtime/models/sleep") { request, _ in
            try await Self.answering {
                let fields = try await Self.fields(request, body, ["model_name", "level", "operation_id"])
                let level = try fields.integer("level", range: 1...2, default: 1)
                return try JSONResponse.make(
                    try await runtime.sleep(model: fields.string("model_name"), level: level, operationID: fields.operationID()))
            }
        }
        router.post("/v1/runtime/models/wake") { request, _ in
            try await Self.answering {
                let fields = try await Self.fields(request, body, ["model_name", "operation_id"])
                return try JSONResponse.make(try await runtime.wake(model: fields.string("model_name"), operationID: fields.operationID()))
            }
        }
        router.get("/v1/runtime/models") { _, _ in try JSONResponse.make(await runtime.list()) }
        router.get("/v1/runtime/snapshot") { _, _ in try JSONResponse.make(await snapshots.snapshot()) }
    }

    static let activateFields: Set<String> = [
        "model_name", "artifact_url", "engine", "port", "ipc_name", "credentials", "engine_config", "claim_ref", "additional_config",
    ]

    /// The body's fields; a malformed body's error is marked as such (rendered as a 422).
    private static func fields(_ request: Request, _ body: RequestBody, _ allowed: Set<String>) async throws -> RuntimeFields {
        do {
            return RuntimeFields(try await body.checkedBody(request, allowed: allowed).object)
        } catch let error as RuntimeError where error.kind == .invalidArgument {
            throw RuntimeError(.invalidArgument, RuntimeFields.bodyPrefix + error.message)
        }
    }

    private static func encoded(_ value: some Encodable) throws(RuntimeError) -> Response {
        do { return try JSONResponse.make(value) } catch { throw RuntimeError(.internalError, "could not encode the answer: \(error)") }
    }

    private static func answering(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let error as RuntimeError { return detail(error) }
    }

    /// AIBrix's `{"detail": ...}` with our envelope's fields beside it. A malformed body is
    /// FastAPI's 422 with a list of problems.
    static func detail(_ error: RuntimeError) -> Response {
        struct Problem: Encodable {
            var type = "value_error"
            var loc = ["body"]
            var msg: String
            var input: String? = nil
        }
        struct Listed: Encodable {
            var detail: [Problem]
            var object = "error"
            var message: String
            var type: String
            var code = 422
        }
        struct Plain: Encodable {
            var detail: String
            var object = "error"
            var message: String
            var type: String
            var code: Int
        }
        if error.kind == .invalidArgument, error.message.hasPrefix(RuntimeFields.bodyPrefix) {
            let message = String(error.message.dropFirst(RuntimeFields.bodyPrefix.count))
            let body = Listed(detail: [Problem(msg: message)], message: message, type: error.kind.envelopeType)
            return (try? JSONResponse.make(body, status: .init(code: 422))) ?? ErrorEnvelope.response(status: .init(code: 422), type: "invalid_argument", message: error.message)
        }
        let status = HTTPResponse.Status(code: error.kind.httpStatus)
        let body = Plain(detail: error.message, message: error.message, type: error.kind.envelopeType, code: status.code)
        return (try? JSONResponse.make(body, status: status)) ?? ErrorEnvelope.response(status: status, type: error.kind.envelopeType, message: error.message)
    }
}

/// The fields of one runtime request, read the way pydantic's lax mode reads them ("20500" and
/// 1.0 are integers; a number is not a string; null is absent). Problems carry `bodyPrefix`,
/// which marks them as the body's (422) and is not shown.
struct RuntimeFields {
    static let bodyPrefix = "\u{1}body: "
    let object: [String: JSONValue]

    init(_ object: [String: JSONValue]) { self.object = object }

    private func problem(_ text: String) -> RuntimeError { RuntimeError(.invalidArgument, Self.bodyPrefix + text) }

    func optionalString(_ key: String, maximum: Int = 4096) throws(RuntimeError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard text.utf8.count <= maximum else { throw problem("\(key) is longer than \(maximum) bytes") }
            return text
        default: throw problem("\(key) must be a string")
        }
    }

    func string(_ key: String, maximum: Int = 4096) throws(RuntimeError) -> String {
        guard let text = try optionalString(key, maximum: maximum) else { throw problem("\(key) is required") }
        return text
    }

    func operationID() throws(RuntimeError) -> String {
        let id = try string("operation_id", maximum: 1024)
        guard !id.isEmpty else { throw problem("operation_id must not be empty") }
        return id
    }

    func integer(_ key: String, range: ClosedRange<Int>, default fallback: Int? = nil) throws(RuntimeError) -> Int {
        let value: Int?
        switch object[key] {
        case nil, .null?: value = fallback
        case .integer(let number)?: value = Int(exactly: number)
        case .number(let number)?: value = Int(exactly: number)
        case .string(let text)?: value = Int(text.trimmingWhitespace())
        case .bool(let flag)?: value = flag ? 1 : 0
        default: value = nil
        }
        guard let value else { throw problem(object[key] == nil ? "\(key) is required" : "\(key) must be an integer") }
        guard range.contains(value) else { throw problem("\(key) must be in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func stringMap(_ key: String, in object: [String: JSONValue]? = nil) throws(RuntimeError) -> [(String, String)]? {
        switch (object ?? self.object)[key] {
        case nil, .null?: return nil
        case .object(let entries)?:
            var pairs: [(String, String)] = []
            for (name, value) in entries {
                guard case .string(let text) = value else { throw problem("\(key).\(name) must be a string") }
                pairs.append((name, text))
            }
            return pairs
        default: throw problem("\(key) must be an object of strings")
        }
    }

    /// The activation, with engine flags from `engine_config.args` then the legacy
    /// `additional_config["engine-arg:<flag>"]` (AIBrix's model_runtime.py:706-721) overriding.
    func activation() throws(RuntimeError) -> ActivateRequest {
        var args: [(String, String)] = []
        switch object["engine_config"] {
        case nil, .null?: break
        case .object(let config)?:
            if let extra = config.keys.first(where: { $0 != "args" }) { throw problem("engine_config.\(extra) is not a field") }
            args = try stringMap("args", in: config) ?? []
        default: throw problem("engine_config must be an object")
        }
        // The JSON object's key order is lost in decoding: flags are passed sorted, which the
        // engines do not mind (no flag depends on its position).
        args.sort { $0.0 < $1.0 }
        for (key, value) in (try stringMap("additional_config") ?? []).sorted(by: { $0.0 < $1.0 }) where key.hasPrefix("engine-arg:") {
            let flag = String(key.dropFirst("engine-arg:".count))
            args.removeAll { $0.0 == flag }
            args.append((flag, value))
        }
        _ = try stringMap("credentials")
        var claim: ClaimReference?
        switch object["claim_ref"] {
        case nil, .null?: break
        case .object(let fields)?:
            let reader = RuntimeFields(fields)
            if let extra = fields.keys.first(where: { !["namespace", "name", "uid"].contains($0) }) { throw problem("claim_ref.\(extra) is not a field") }
            claim = ClaimReference(namespace: try reader.string("namespace"), name: try reader.string("name"), uid: try reader.string("uid"))
        default: throw problem("claim_ref must be an object")
        }
        return ActivateRequest(
            modelName: try string("model_name", maximum: 253), artifactURL: try string("artifact_url"),
            engine: try optionalString("engine", maximum: 63) ?? "vllm", port: try integer("port", range: 0...65535, default: 0),
            ipcName: try optionalString("ipc_name", maximum: 256), engineArgs: args, claimRef: claim)
    }
}

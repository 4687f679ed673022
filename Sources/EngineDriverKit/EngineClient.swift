import FoundationEssentials
import PluginABI

/// HTTP calls to one engine's API with its base URL and bearer token: what every HTTP engine
/// driver needs. Also reads the engines' error bodies.
public struct EngineClient: Sendable {
    public let endpoint: String
    /// The engine's name in messages ("vLLM", "SGLang").
    public let engineName: String
    private let authorization: [String]
    /// For routes the engine guards with its administrator key: that key when configured,
    /// else the API key (SGLang's `admin_optional` rule, `sglang/srt/utils/auth.py:128-143`).
    private let managementAuthorization: [String]

    public init(settings: InstanceSettings, engineName: String) {
        endpoint = settings.endpoint
        self.engineName = engineName
        authorization = settings.apiKey.map { ["Authorization: Bearer \($0)"] } ?? []
        managementAuthorization = (settings.adminAPIKey ?? settings.apiKey).map { ["Authorization: Bearer \($0)"] } ?? []
    }

    private init(endpoint: String, engineName: String, authorization: [String], managementAuthorization: [String]) {
        self.endpoint = endpoint
        self.engineName = engineName
        self.authorization = authorization
        self.managementAuthorization = managementAuthorization
    }

    /// The same client for another server of the same engine (llama-server's router runs each
    /// model as a child server on its own port), with the same keys.
    public func retargeted(to endpoint: String) -> EngineClient {
        EngineClient(
            endpoint: endpoint, engineName: engineName, authorization: authorization, managementAuthorization: managementAuthorization)
    }

    /// The credentials header for a route: `management` routes get the administrator key.
    private func credentials(_ management: Bool) -> [String] { management ? managementAuthorization : authorization }

    /// No per-request timeout of the driver's own (0): the host bounds every call by the
    /// operation's deadline, which the operator sets (--probe-timeout, --mutation-timeout).
    public static let timeoutMilliseconds: UInt32 = 0

    /// `retry`: the host may send it again on a transport failure or a 502/503/504 (not for
    /// probes, whose 503 or refused connection is the answer).
    public func get(
        _ path: String, in call: CallScope, management: Bool = false, retry: Bool = true, maxResponseBytes: UInt64 = 0
    ) throws(DriverFailure) -> CallScope.Reply {
        try call.http(
            "GET", endpoint + path, headers: credentials(management) + ["Accept: application/json"],
            timeoutMilliseconds: Self.timeoutMilliseconds, idempotent: retry, maxResponseBytes: maxResponseBytes)
    }

    /// POSTs a JSON body (never retried: engine mutations are not idempotent in general).
    public func post(
        _ path: String, json: some Encodable, in call: CallScope, management: Bool = false
    ) throws(DriverFailure) -> CallScope.Reply {
        let body = try DriverJSON.encode(json)
        return try call.http(
            "POST", endpoint + path,
            headers: credentials(management) + ["Content-Type: application/json", "Accept: application/json"],
            body: body, timeoutMilliseconds: Self.timeoutMilliseconds)
    }

    /// POSTs without a body (query-string routes such as vLLM's /sleep).
    public func post(_ path: String, in call: CallScope, management: Bool = false) throws(DriverFailure) -> CallScope.Reply {
        try call.http("POST", endpoint + path, headers: credentials(management), timeoutMilliseconds: Self.timeoutMilliseconds)
    }

    /// The engine's own message from an error body: vLLM's nested `{"error":{"message"}}`, the
    /// older flat `{"message"}`, the route-local `{"error":"text"}` (vLLM's pause routes, both
    /// engines' auth), SGLang's `{"error_message"}`, FastAPI's `{"detail"}`, or the text itself
    /// (cut to 512 bytes).
    public static func errorMessage(_ reply: CallScope.Reply) -> String {
        struct Body: Decodable {
            var error: String?
            var message: String?
            var error_message: String?
            var detail: String?
            enum Keys: String, CodingKey { case error, message, error_message, detail }
            struct Nested: Decodable { var message: String? }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                error =
                    (try? container.decodeIfPresent(String.self, forKey: .error))
                    ?? (try? container.decodeIfPresent(Nested.self, forKey: .error))?.message
                message = try? container.decodeIfPresent(String.self, forKey: .message)
                error_message = try? container.decodeIfPresent(String.self, forKey: .error_message)
                detail = try? container.decodeIfPresent(String.self, forKey: .detail)
            }
        }
        if let body = reply.decode(Body.self) {
            if let message = body.error ?? body.message ?? body.error_message ?? body.detail, !message.isEmpty {
                return message
            }
        }
        let text = String(reply.text.prefix(512)).split(whereSeparator: \.isNewline).joined(separator: " ")
        let trimmed = text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
        return trimmed.isEmpty ? "HTTP \(reply.status) with an empty body" : String(trimmed)
    }

    /// True when the reply is FastAPI's answer for a route that does not exist, as opposed to
    /// a handler's own 404.
    public static func isMissingRoute(_ reply: CallScope.Reply) -> Bool {
        struct Body: Decodable { var detail: String? }
        return reply.status == 404 && reply.decode(Body.self)?.detail == "Not Found"
    }
}

extension EngineClient {
    /// Probes a health route: (true, nil) on 200, (false, reason) when the engine answers
    /// otherwise or is not listening (a refused connection during start-up is "not ready yet",
    /// not a driver error). Never retried: a retried 503 ("loading", "paused") would hide
    /// the state the probe is for until the engine changed it or the deadline passed.
    /// `fallback` is probed instead when the engine has no `path` route (an older release).
    public func probe(_ path: String, orIfMissing fallback: String? = nil, in call: CallScope) throws(DriverFailure) -> (
        ok: Bool, reason: String?
    ) {
        let reply: CallScope.Reply
        do {
            reply = try get(path, in: call, retry: false)
        } catch where error.status == ERT_STATUS_UNAVAILABLE {
            return (false, "\(engineName) is not accepting connections yet (starting up or down): \(error.message)")
        }
        if reply.status == 200 { return (true, nil) }
        if let fallback, Self.isMissingRoute(reply) { return try probe(fallback, in: call) }
        return (false, "\(engineName) \(path) answered HTTP \(reply.status): \(Self.errorMessage(reply))")
    }

    /// Maps a failed engine answer to a status, keeping the engine's message. `missingRoute`
    /// explains a route the engine does not serve (usually an engine setting to turn on).
    public func failure(_ reply: CallScope.Reply, doing what: String, missingRoute: String? = nil) -> DriverFailure {
        let upstream = Int32(reply.status)
        if Self.isMissingRoute(reply) {
            return .unsupported(missingRoute ?? "this \(engineName) build has no route to \(what)", upstream: upstream)
        }
        let message = Self.errorMessage(reply)
        switch reply.status {
        case 400, 422: return DriverFailure(ERT_STATUS_INVALID_ARGUMENT, message, upstreamHTTPStatus: upstream)
        case 401, 403:
            return .upstream(
                "\(engineName) refused the credentials (set INFERENCE_ENGINE_API_KEY, and INFERENCE_ENGINE_ADMIN_API_KEY when the engine has an admin key): \(message)",
                status: upstream)
        case 404: return .notFound(message, upstream: upstream)
        case 409: return .conflict(message, upstream: upstream)
        case 503: return DriverFailure(ERT_STATUS_UNAVAILABLE, message, upstreamHTTPStatus: upstream)
        default: return .upstream("\(engineName) could not \(what): \(message)", status: upstream)
        }
    }
}

/// The answers every driver gives for health, readiness and state changes.
public struct HealthAnswer: Encodable, Sendable {
    public var healthy: Bool
    public var reason: String?
    public init(healthy: Bool, reason: String?) {
        self.healthy = healthy
        self.reason = reason
    }
}

public struct ReadinessAnswer: Encodable, Sendable {
    public var ready: Bool
    public var reason: String?
    public init(ready: Bool, reason: String?) {
        self.ready = ready
        self.reason = reason
    }
}

public struct MessageAnswer: Encodable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

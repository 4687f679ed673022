import FoundationEssentials

/// HTTP calls to one engine's API with its base URL and bearer token: what every HTTP engine
/// driver needs. Also reads the engines' error bodies.
public struct EngineClient: Sendable {
    public let endpoint: String
    private let authorization: [String]

    public init(settings: InstanceSettings) {
        endpoint = settings.endpoint
        authorization = settings.apiKey.map { ["Authorization: Bearer \($0)"] } ?? []
    }

    /// Default per-request timeout for management calls (the host clamps it to the deadline).
    public static let timeoutMilliseconds: UInt32 = 30_000

    public func get(_ path: String, in call: CallScope, maxResponseBytes: UInt64 = 0) throws(DriverFailure) -> CallScope.Reply {
        try call.http(
            "GET", endpoint + path, headers: authorization + ["Accept: application/json"],
            timeoutMilliseconds: Self.timeoutMilliseconds, idempotent: true, maxResponseBytes: maxResponseBytes)
    }

    /// POSTs a JSON body (never retried: engine mutations are not idempotent in general).
    public func post(_ path: String, json: some Encodable, in call: CallScope) throws(DriverFailure) -> CallScope.Reply {
        let body = try DriverJSON.encode(json)
        return try call.http(
            "POST", endpoint + path, headers: authorization + ["Content-Type: application/json", "Accept: application/json"],
            body: body, timeoutMilliseconds: Self.timeoutMilliseconds)
    }

    /// The engine's own message from an error body: vLLM's nested `{"error":{"message"}}`, the
    /// older flat `{"message"}`, SGLang's `{"error_message"}`, FastAPI's `{"detail"}`, or the
    /// text itself (cut to 512 bytes).
    public static func errorMessage(_ reply: CallScope.Reply) -> String {
        struct Body: Decodable {
            struct Nested: Decodable { var message: String? }
            var error: Nested?
            var message: String?
            var error_message: String?
            var detail: String?
        }
        if let body = reply.decode(Body.self) {
            if let message = body.error?.message ?? body.message ?? body.error_message ?? body.detail, !message.isEmpty {
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

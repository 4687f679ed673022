/// The one kind taxonomy of the runtime: every failure, from a driver, a download, the HTTP
/// client or a request check, is one of these, and each kind has one HTTP status and one
/// envelope `type` (rendered once, in `Server/ErrorEnvelope.swift`).
///
/// The raw value is the kind's name in download job snapshots (`error_kind`).
public enum ErrorKind: String, Sendable, Codable, CaseIterable {
    /// The request itself is wrong (fields, names, URI form, settings).
    case invalidArgument = "invalid_argument"
    case notFound = "not_found"
    case permissionDenied = "permission_denied"
    /// Already exists, busy, or the state forbids it (another download holds the target).
    case conflict
    /// The engine (as configured) or its driver cannot do this.
    case unsupported
    /// The engine is not reachable or not ready yet.
    case unavailable
    /// The engine or a download source answered with an error or garbage.
    case upstream
    /// Bytes arrived but do not match the size or digest the source published.
    case integrity
    /// Writing to the local disk failed (no space, quota, I/O error).
    case storage
    case timeout
    /// The work was cancelled (a download job by its own API, or a call by shutdown). 409, not
    /// nginx's 499: the client that sees it is still connected, and the state forbade the work.
    case cancelled
    /// A bug or resource failure; the message says nothing internal.
    case internalError = "internal"
    /// No valid bearer token.
    case unauthorized
    /// The route exists but not with this method.
    case methodNotAllowed = "method_not_allowed"
    /// The request body passed the size limit.
    case tooLarge = "too_large"
    /// The request did not arrive within the request timeout (written by the connection guard).
    case requestTimeout = "request_timeout"
    /// A JSON route got a body that is not declared JSON.
    case unsupportedMediaType = "unsupported_media_type"

    /// The HTTP status the API answers with.
    public var httpStatus: Int {
        switch self {
        case .invalidArgument: 400
        case .unauthorized: 401
        case .permissionDenied: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .requestTimeout: 408
        case .conflict, .cancelled: 409
        case .tooLarge: 413
        case .unsupportedMediaType: 415
        case .internalError: 500
        case .unsupported: 501
        case .upstream, .integrity: 502
        case .unavailable: 503
        case .timeout: 504
        case .storage: 507
        }
    }

    /// The `type` field of the error envelope.
    public var envelopeType: String {
        switch self {
        case .invalidArgument, .tooLarge: "invalid_argument"
        case .notFound: "not_found"
        case .permissionDenied: "permission_denied"
        case .conflict: "conflict"
        case .unsupported: "unsupported"
        case .unavailable: "unavailable"
        case .upstream: "upstream_error"
        case .integrity: "integrity_error"
        case .storage: "storage_error"
        case .timeout: "timeout"
        case .cancelled: "cancelled"
        case .internalError: "internal_error"
        case .unauthorized: "unauthorized"
        case .methodNotAllowed: "method_not_allowed"
        case .requestTimeout: "request_timeout"
        case .unsupportedMediaType: "unsupported_media_type"
        }
    }
}

/// A failure anywhere in the runtime: its kind, one sentence for a person (never credentials),
/// and the engine's HTTP status when an engine answered.
public struct RuntimeError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public var kind: ErrorKind
    public var message: String
    public var upstreamHTTPStatus: Int?

    public init(_ kind: ErrorKind, _ message: String, upstreamHTTPStatus: Int? = nil) {
        self.kind = kind
        self.message = message
        self.upstreamHTTPStatus = upstreamHTTPStatus
    }

    public static func invalid(_ message: String) -> RuntimeError { RuntimeError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> RuntimeError { RuntimeError(.notFound, message) }

    public var description: String {
        var text = "\(kind.envelopeType): \(message)"
        if let upstreamHTTPStatus { text += " (engine answered HTTP \(upstreamHTTPStatus))" }
        return text
    }
}

import PluginABI

/// A driver's answer status (`ert_status`), with its deterministic HTTP mapping.
public enum DriverStatus: Int32, Sendable, CaseIterable, Codable {
    case ok = 0
    case invalidArgument = 1
    case notFound = 2
    case conflict = 3
    case unsupported = 4
    case unavailable = 5
    case upstream = 6
    case timeout = 7
    case cancelled = 8
    case internalError = 9

    /// Maps a raw status from a driver; unknown codes are `internalError` (ABI rule).
    public init(raw: ert_status) {
        self = DriverStatus(rawValue: raw) ?? .internalError
    }

    /// True when `raw` is a status this host knows.
    public static func isKnown(_ raw: ert_status) -> Bool { DriverStatus(rawValue: raw) != nil }

    /// The HTTP status the facade answers with.
    public var httpStatus: Int {
        switch self {
        case .ok: 200
        case .invalidArgument: 400
        case .notFound: 404
        case .conflict: 409
        case .unsupported: 501
        case .unavailable: 503
        case .upstream: 502
        case .timeout: 504
        case .cancelled: 499
        case .internalError: 500
        }
    }

    /// The `type` field of the error envelope.
    public var errorType: String {
        switch self {
        case .ok: "ok"
        case .invalidArgument: "invalid_argument"
        case .notFound: "not_found"
        case .conflict: "conflict"
        case .unsupported: "unsupported"
        case .unavailable: "unavailable"
        case .upstream: "upstream_error"
        case .timeout: "timeout"
        case .cancelled: "cancelled"
        case .internalError: "internal_error"
        }
    }
}

/// A failed driver call or host service: the status, the engine's HTTP status when there was
/// one, and one line saying what happened.
public struct DriverCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: DriverStatus
    public var upstreamHTTPStatus: Int?
    public var message: String

    public init(_ status: DriverStatus, _ message: String, upstreamHTTPStatus: Int? = nil) {
        self.status = status
        self.message = message
        self.upstreamHTTPStatus = upstreamHTTPStatus
    }

    /// True when the driver broke the ABI in answering (an unknown status, or a failure
    /// without a message); the host filled in the message.
    public var isContractViolation: Bool { message.hasPrefix(Self.violationPrefix) }
    static let violationPrefix = "driver returned "

    public var description: String {
        var text = "\(status.errorType): \(message)"
        if let upstreamHTTPStatus { text += " (engine answered HTTP \(upstreamHTTPStatus))" }
        return text
    }
}

extension ert_error {
    /// A zeroed error record with its size set, ready to hand to a driver.
    static func empty() -> ert_error {
        var error = ert_error()
        error.struct_size = UInt32(MemoryLayout<ert_error>.size)
        return error
    }

    /// Reads what a driver wrote, whatever it wrote (the message is cut at the first NUL or at
    /// the capacity, and invalid UTF-8 is repaired).
    func callError(returned raw: ert_status) -> DriverCallError {
        let message = CString.read(self.message)
        let status = DriverStatus(raw: raw)
        let text: String
        if !DriverStatus.isKnown(raw) {
            text = DriverCallError.violationPrefix + "unknown status \(raw)" + (message.isEmpty ? "" : ": \(message)")
        } else {
            text = message.isEmpty ? DriverCallError.violationPrefix + "\(status.errorType) without a message" : message
        }
        let upstream = upstream_http_status > 0 ? Int(upstream_http_status) : nil
        return DriverCallError(status, text, upstreamHTTPStatus: upstream)
    }

    /// Fills this record from a Swift error (host services answering a driver).
    mutating func fill(from error: DriverCallError) {
        status = error.status.rawValue
        upstream_http_status = Int32(error.upstreamHTTPStatus ?? 0)
        CString.copy(error.message, into: &message)
    }
}

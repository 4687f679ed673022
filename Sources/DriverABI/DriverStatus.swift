import PluginABI

/// A driver's answer status (`ert_status`), one case per `ERT_STATUS_*` constant of the header.
/// Each case's value comes from the header itself, so the two cannot drift apart.
public enum DriverStatus: Sendable, CaseIterable, Hashable {
    case ok, invalidArgument, notFound, conflict, unsupported, unavailable, upstream, timeout, cancelled, internalError

    /// The header's value for this status.
    public var raw: ert_status {
        switch self {
        case .ok: ERT_STATUS_OK
        case .invalidArgument: ERT_STATUS_INVALID_ARGUMENT
        case .notFound: ERT_STATUS_NOT_FOUND
        case .conflict: ERT_STATUS_CONFLICT
        case .unsupported: ERT_STATUS_UNSUPPORTED
        case .unavailable: ERT_STATUS_UNAVAILABLE
        case .upstream: ERT_STATUS_UPSTREAM
        case .timeout: ERT_STATUS_TIMEOUT
        case .cancelled: ERT_STATUS_CANCELLED
        case .internalError: ERT_STATUS_INTERNAL
        }
    }

    /// The status for `raw`, nil when the header defines no such status.
    public init?(known raw: ert_status) {
        guard let status = Self.allCases.first(where: { $0.raw == raw }) else { return nil }
        self = status
    }

    /// Maps a raw status from the other side; unknown codes are `internalError` (ABI rule).
    public init(raw: ert_status) { self = Self(known: raw) ?? .internalError }

    /// True when `raw` is a status the header defines.
    public static func isKnown(_ raw: ert_status) -> Bool { Self(known: raw) != nil }

    /// The name used in messages and logs ("not_found", ...).
    public var name: String {
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

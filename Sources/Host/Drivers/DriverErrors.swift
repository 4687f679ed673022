import PluginABI

/// Where the runtime's errors meet the ABI's statuses: a driver's failure becomes a
/// `RuntimeError`, and a host service's failure goes back to the driver as an `ert_status`.
extension ErrorKind {
    public init(_ status: DriverStatus) {
        switch status {
        case .ok, .internalError: self = .internalError
        case .invalidArgument: self = .invalidArgument
        case .notFound: self = .notFound
        case .conflict: self = .conflict
        case .unsupported: self = .unsupported
        case .unavailable: self = .unavailable
        case .upstream: self = .upstream
        case .timeout: self = .timeout
        case .cancelled: self = .cancelled
        }
    }
}

extension DriverStatus {
    /// The status a host service answers a driver with. Kinds the ABI has no status for map
    /// to the nearest one a driver can act on.
    public init(_ kind: ErrorKind) {
        switch kind {
        case .invalidArgument, .tooLarge, .methodNotAllowed, .unsupportedMediaType: self = .invalidArgument
        case .notFound: self = .notFound
        case .conflict: self = .conflict
        case .unsupported: self = .unsupported
        case .unavailable: self = .unavailable
        case .upstream, .integrity, .unauthorized, .permissionDenied: self = .upstream
        case .timeout, .requestTimeout: self = .timeout
        case .cancelled: self = .cancelled
        case .internalError, .storage: self = .internalError
        }
    }
}

extension RuntimeError {
    /// True when the driver broke the ABI in answering (an unknown status, or a failure
    /// without a message); the host filled in the message.
    public var isContractViolation: Bool { message.hasPrefix(Self.violationPrefix) }
    static let violationPrefix = "driver returned "

    /// Reads what a driver wrote into `record` with status `raw`, whatever it wrote (the
    /// message is cut at the first NUL or at the capacity, and invalid UTF-8 is repaired).
    init(driverReturned raw: ert_status, record: ert_error) {
        let (upstream, message) = ErrorRecord.read(record)
        let status = DriverStatus(raw: raw)
        let text: String
        if !DriverStatus.isKnown(raw) {
            text = Self.violationPrefix + "unknown status \(raw)" + (message.isEmpty ? "" : ": \(message)")
        } else {
            text = message.isEmpty ? Self.violationPrefix + "\(status.name) without a message" : message
        }
        self.init(ErrorKind(status), text, upstreamHTTPStatus: upstream)
    }

    /// Fills a driver's error record (host services answering a driver); returns the status.
    @discardableResult
    func write(to record: UnsafeMutablePointer<ert_error>?) -> ert_status {
        let status = DriverStatus(kind).raw
        ErrorRecord.write(status, upstreamHTTPStatus: Int32(upstreamHTTPStatus ?? 0), message: message, into: record)
        return status
    }
}

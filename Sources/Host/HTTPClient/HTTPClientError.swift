import CCurl

/// A libcurl transfer that did not produce an answer: the HTTP client's own error, turned into
/// the runtime's kinds (`RuntimeError(_:)`) by its callers, and into an `ert_status` only where
/// host services answer a driver.
public struct HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The request itself is wrong (URL, method, header line).
        case invalidRequest
        /// Nothing answered: connection refused, name not resolved.
        case unreachable
        case timeout
        case cancelled
        /// The answer passed the caller's size limit.
        case tooLarge
        /// The connection broke after it was made (nothing or part of an answer arrived).
        case connectionBroken
        /// A local file source could not be read.
        case fileNotFound
        /// Anything else libcurl reports (TLS, too many redirects, ...).
        case failed
        /// A redirect led to a host the request's allow-list does not have; no connection was
        /// made to it.
        case hostRefused
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// The one classification of libcurl's result codes, for engine calls and downloads alike.
    /// (Overflow and cancellation are told apart by the caller, which knows why a callback
    /// stopped the transfer.)
    static func kind(of code: CURLcode) -> Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .unreachable
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidRequest
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE: .connectionBroken
        case CURLE_FILE_COULDNT_READ_FILE: .fileNotFound
        default: .failed
        }
    }

    /// libcurl's own words for `code`.
    static func reason(_ code: CURLcode) -> String { String(cString: curl_easy_strerror(code)) }
}

extension ErrorKind {
    /// What an HTTP client failure means to the runtime.
    public init(_ kind: HTTPClientError.Kind) {
        switch kind {
        case .invalidRequest: self = .invalidArgument
        case .unreachable: self = .unavailable
        case .timeout: self = .timeout
        case .cancelled: self = .cancelled
        case .fileNotFound: self = .notFound
        case .tooLarge, .connectionBroken, .failed: self = .upstream
        case .hostRefused: self = .permissionDenied
        }
    }
}

extension RuntimeError {
    public init(_ error: HTTPClientError) { self.init(ErrorKind(error.kind), error.message) }
}

/// Exponential backoff between attempts, with optional jitter: the one retry delay of the
/// runtime's libcurl code (engine calls retry fast and few, downloads slower and more).
struct Backoff: Sendable {
    var first: Duration
    var cap: Duration
    /// Up to this fraction of the delay is added at random, so retries of many parts spread out.
    var jitter: Double = 0

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1).
    func delay(after attempt: Int) -> Duration {
        var delay = first
        for _ in 1..<max(1, attempt) where delay < cap { delay = delay * 2 }
        delay = min(delay, cap)
        guard jitter > 0 else { return delay }
        return delay + delay * Double.random(in: 0...jitter)
    }

    /// Engine calls: 50, 100 ms; the deadline bounds them anyway.
    static let engineCall = Backoff(first: .milliseconds(50), cap: .seconds(1))
    /// Downloads: 0.5, 1, 2, 4, 8 s with a quarter of jitter.
    static let download = Backoff(first: .milliseconds(500), cap: .seconds(8), jitter: 0.25)
}

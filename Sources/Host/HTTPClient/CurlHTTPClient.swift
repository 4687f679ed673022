#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Logging
import NIOCore
import Synchronization

/// One HTTP request for `CurlHTTPClient`.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    /// "Name: value" lines.
    public var headers: [String]
    public var body: [UInt8]
    /// Per-attempt timeout; clamped to the deadline.
    public var timeout: TimeAmount
    /// May be sent again after a transport failure or a 502/503/504 answer.
    public var idempotent: Bool
    public var maxResponseBytes: Int
    /// Follow up to five redirects (http and https only). Off for engine calls.
    public var followRedirects: Bool
    /// Sign with AWS Signature V4 (object stores); nil sends no credentials of its own.
    public var signing: AWSSigning?
    /// Every connection, a redirect's included, must go to one of these hosts.
    public var allowedHosts: HostAllowList?
    /// An earlier body's array for this response to be written over (its contents dropped,
    /// its capacity kept): a metrics scrape reuses the last one's pages instead of faulting
    /// in megabytes of fresh ones. The first attempt takes it.
    public var responseStorage: Handoff<[UInt8]>?

    public init(
        method: String, url: String, headers: [String] = [], body: [UInt8] = [],
        timeout: TimeAmount = CurlHTTPClient.defaultTimeout, idempotent: Bool = false,
        maxResponseBytes: Int = CurlHTTPClient.defaultMaxResponseBytes,
        followRedirects: Bool = false, signing: AWSSigning? = nil, allowedHosts: HostAllowList? = nil
    ) {
        self.allowedHosts = allowedHosts
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.idempotent = idempotent
        self.maxResponseBytes = maxResponseBytes
        self.followRedirects = followRedirects
        self.signing = signing
    }
}

/// AWS Signature V4 credentials, applied by libcurl (`CURLOPT_AWS_SIGV4`).
public struct AWSSigning: Sendable, Equatable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var region: String

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, region: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
    }

    /// The headers S3 wants besides the signature: libcurl signs every header it sends, and
    /// takes the payload hash from `x-amz-content-sha256` when it is present.
    var headers: [String] {
        ["x-amz-content-sha256: UNSIGNED-PAYLOAD"] + (sessionToken.map { ["x-amz-security-token: \($0)"] } ?? [])
    }
}

/// What came back.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// Connections libcurl had to open for this answer (0 when a pooled one was reused).
    public var newConnections: Int
    /// Headers of the final answer, names in lower case (the last value of a repeated name).
    public var headers: [String: String] = [:]
}

/// The host's HTTP client on libcurl, shared with drivers through the ABI.
///
/// Easy handles are pooled and reused, so each keeps its connections open to the engine
/// (connection reuse without a share lock). Calls block the calling thread: run them on a
/// worker thread. Thread-safe.
public final class CurlHTTPClient: Sendable {
    public static let defaultTimeout = TimeAmount.seconds(30)
    public static let defaultMaxResponseBytes = 16 << 20
    /// Attempts for idempotent requests (first try included).
    static let maximumAttempts = 3

    private let idleHandles = Mutex<[CurlEasyHandle]>([])
    private let maximumIdleHandles: Int
    private let logger: Logger

    public init(maximumIdleHandles: Int = 32, logger: Logger = Logger(label: "engine-runtime.http-client")) {
        CurlGlobal.initializeOnce()
        self.maximumIdleHandles = maximumIdleHandles
        self.logger = logger
    }

    /// Performs `request`, retrying idempotent ones with a short backoff while the deadline
    /// allows. `isCancelled` is polled during the transfer.
    public func perform(
        _ request: HTTPClientRequest, deadline: NIODeadline? = nil, isCancelled: @escaping () -> Bool = { false }
    ) -> Result<HTTPClientResponse, HTTPClientError> {
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://") else {
            return .failure(HTTPClientError(.invalidRequest, "URL must start with http:// or https://"))
        }
        guard ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"].contains(request.method) else {
            return .failure(HTTPClientError(.invalidRequest, "unsupported HTTP method \"\(request.method)\""))
        }
        // Byte-level check: "\r\n" is one Character, so String.contains("\r") would miss it.
        if let bad = request.headers.first(where: { line in
            !line.utf8.contains(UInt8(ascii: ":")) || line.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 })
        }) {
            return .failure(HTTPClientError(.invalidRequest, "malformed header line \"\(bad.prefix(64))\""))
        }
        var attempt = 1
        while true {
            let result = performOnce(request, deadline: deadline, isCancelled: isCancelled)
            guard request.idempotent, attempt < Self.maximumAttempts, Self.isRetryable(result) else { return result }
            let backoff = Backoff.engineCall.delay(after: attempt)
            if let deadline, deadline - .now() < TimeAmount(backoff) + .milliseconds(10) { return result }
            if isCancelled() { return result }
            logger.debug(
                "retrying idempotent request",
                metadata: ["method": "\(request.method)", "url": "\(Self.redacted(request.url))", "attempt": "\(attempt + 1)"])
            usleep(UInt32(TimeAmount(backoff).nanoseconds / 1000))
            attempt += 1
        }
    }

    /// A broken connection, and the gateway-style answers. A refused connection is not among
    /// them: it is an answer ("nothing listens"), and readiness probes need it fast.
    static func isRetryable(_ outcome: Result<HTTPClientResponse, HTTPClientError>) -> Bool {
        switch outcome {
        case .success(let response): [502, 503, 504].contains(response.status)
        case .failure(let failure): failure.kind == .connectionBroken
        }
    }

    /// The URL without its query string, for logs (queries may carry tokens).
    static func redacted(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }

    private func performOnce(
        _ request: HTTPClientRequest, deadline: NIODeadline?, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, HTTPClientError> {
        var timeout = request.timeout
        if let deadline {
            let left = deadline - .now()
            if left <= .zero { return .failure(HTTPClientError(.timeout, "the deadline passed before the request was sent")) }
            timeout = min(timeout, left)
        }
        let handle = checkOut()
        defer { checkIn(handle) }
        return handle.perform(
            request, timeoutMilliseconds: max(1, Int(timeout.nanoseconds / 1_000_000)), isCancelled: isCancelled)
    }

    private func checkOut() -> CurlEasyHandle {
        idleHandles.withLock { $0.popLast() } ?? CurlEasyHandle()
    }

    private func checkIn(_ handle: CurlEasyHandle) {
        let kept = idleHandles.withLock { handles -> Bool in
            guard handles.count < maximumIdleHandles else { return false }
            handles.append(handle)
            return true
        }
        if !kept { handle.close() }
    }
}

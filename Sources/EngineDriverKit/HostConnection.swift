#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PluginABI

/// The host's services, bound to a context (an instance's or a call's).
public struct HostConnection: @unchecked Sendable {
    let services: UnsafePointer<ert_host_services>
    let context: UnsafeMutableRawPointer?

    public enum LogLevel: Int32 { case trace = 0, debug, info, warning, error }

    public func log(_ level: LogLevel, _ message: String) {
        guard let log = services.pointee.log else { return }
        log(context, level.rawValue, message)
    }
}

/// What a driver may do while answering one operation: HTTP through the host, logging,
/// deadline checks. Valid only during that operation.
public struct CallScope {
    public let host: HostConnection

    public var isCancelled: Bool { host.services.pointee.is_cancelled?(host.context) ?? false }

    /// Milliseconds left before the operation's deadline; nil when there is none.
    public var remainingMilliseconds: Int64? {
        guard let remaining = host.services.pointee.remaining_ms?(host.context), remaining >= 0 else { return nil }
        return remaining
    }

    /// Waits `milliseconds` (for polling an engine), or less when the deadline is nearer;
    /// false when the call is cancelled or out of time.
    public func pause(milliseconds: Int64) -> Bool {
        let wait = min(milliseconds, remainingMilliseconds ?? milliseconds)
        guard wait > 0, !isCancelled else { return false }
        usleep(useconds_t(wait * 1000))
        return !isCancelled && (remainingMilliseconds ?? 1) > 0
    }

    public func log(_ level: HostConnection.LogLevel, _ message: String) { host.log(level, message) }

    /// An HTTP answer from the engine.
    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]

        /// Decodes the body as JSON.
        public func decode<T: Decodable>(_ type: T.Type) -> T? {
            try? JSONCoding.decode(type, from: body)
        }

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends a request through the host's HTTP client. Transport failures (engine unreachable,
    /// timeout, cancelled) throw with the host's status; any HTTP answer is returned.
    public func http(
        _ method: String, _ url: String, headers: [String] = [], body: [UInt8] = [], timeoutMilliseconds: UInt32 = 0,
        idempotent: Bool = false, maxResponseBytes: UInt64 = 0
    ) throws(DriverFailure) -> Reply {
        guard let send = host.services.pointee.http_request else {
            throw DriverFailure.internalError("the host offers no HTTP service")
        }
        let collector = ByteSink()
        var response = ert_http_response()
        response.struct_size = UInt32(MemoryLayout<ert_http_response>.size)
        var error = ErrorRecord.empty()
        let cHeaders = headers.map { strdup($0) }
        defer { cHeaders.forEach { free($0) } }
        let status: ert_status = method.withCString { cMethod in
            url.withCString { cURL in
                cHeaders.map { $0.map { UnsafePointer<CChar>($0) } }.withUnsafeBufferPointer { headerLines in
                    body.withUnsafeBufferPointer { bodyBytes in
                        bodyBytes.withMemoryRebound(to: CChar.self) { bodyChars in
                            var request = ert_http_request(
                                struct_size: UInt32(MemoryLayout<ert_http_request>.size), method: cMethod, url: cURL,
                                headers: headerLines.baseAddress, header_count: headerLines.count,
                                body: bodyChars.baseAddress, body_length: bodyChars.count, timeout_ms: timeoutMilliseconds,
                                flags: idempotent ? UInt32(ERT_HTTP_IDEMPOTENT) : 0, max_response_bytes: maxResponseBytes)
                            return collector.withCSink { sink in send(host.context, &request, &response, sink, &error) }
                        }
                    }
                }
            }
        }
        guard status == ERT_STATUS_OK else {
            throw DriverFailure(status, CString.read(error.message), upstreamHTTPStatus: error.upstream_http_status)
        }
        let contentType = CString.read(response.content_type)
        return Reply(status: Int(response.status), contentType: contentType, body: collector.bytes)
    }
}

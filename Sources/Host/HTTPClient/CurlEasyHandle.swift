import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// One libcurl easy handle and the state of the transfer it runs. Used by one thread at a
/// time (the pool hands it out exclusively), so it needs no locking.
final class CurlEasyHandle: @unchecked Sendable {
    private var handle: UnsafeMutableRawPointer?

    init() {
        handle = curl_easy_init()
    }

    func close() {
        if let handle { curl_easy_cleanup(handle) }
        handle = nil
    }

    deinit { close() }

    /// The state shared with libcurl's callbacks during one transfer.
    private final class Transfer {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        let limit: Int
        var overflowed = false
        let isCancelled: () -> Bool
        var cancelled = false
        init(limit: Int, isCancelled: @escaping () -> Bool) {
            self.limit = limit
            self.isCancelled = isCancelled
        }
    }

    /// A failed transfer; `transient` when a second attempt may succeed (the connection broke
    /// after it was made).
    struct Failure: Error {
        var error: DriverCallError
        var transient: Bool
    }

    func perform(
        _ request: HTTPClientRequest, timeoutMilliseconds: Int, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, Failure> {
        guard let handle else {
            return .failure(Failure(error: DriverCallError(.internalError, "curl_easy_init failed"), transient: false))
        }
        curl_easy_reset(handle)  // keeps the connection cache
        let transfer = Transfer(limit: request.maxResponseBytes, isCancelled: isCancelled)
        let context = Unmanaged.passUnretained(transfer).toOpaque()

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for line in request.headers + (request.signing?.headers ?? []) { headerList = curl_slist_append(headerList, line) }
        // libcurl adds "Expect: 100-continue" to large POSTs; engines do not need the round trip.
        headerList = curl_slist_append(headerList, "Expect:")
        defer { curl_slist_free_all(headerList) }

        _ = ert_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = ert_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ert_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        Self.applyRedirectsAndSigning(handle, followRedirects: request.followRedirects, signing: request.signing)
        _ = ert_curl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data else { return length }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            HTTPHeaderLine.collect(line, into: &transfer.headers)
            return length
        }
        _ = ert_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        _ = ert_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
        _ = ert_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(timeoutMilliseconds, 10_000))
        _ = ert_curl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        _ = ert_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        _ = ert_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard transfer.body.count + length <= transfer.limit else {
                transfer.overflowed = true
                return 0  // makes libcurl stop with CURLE_WRITE_ERROR
            }
            if let data, length > 0 {
                data.withMemoryRebound(to: UInt8.self, capacity: length) {
                    transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                }
            }
            return length
        }
        _ = ert_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        _ = ert_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
        _ = ert_curl_setopt_xferinfo_callback(handle) { context, _, _, _, _ in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            if transfer.isCancelled() {
                transfer.cancelled = true
                return 1
            }
            return 0
        }
        _ = ert_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)

        switch request.method {
        case "GET": _ = ert_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD": _ = ert_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default: _ = ert_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }

        let code: CURLcode = request.body.withUnsafeBufferPointer { body in
            if request.method != "GET", request.method != "HEAD" {
                _ = ert_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                _ = ert_curl_setopt_pointer(
                    handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        withExtendedLifetime(transfer) {}

        if code != CURLE_OK {
            return .failure(Self.error(for: code, transfer: transfer, request: request, timeoutMilliseconds: timeoutMilliseconds))
        }
        var status = 0
        _ = ert_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var contentType: UnsafePointer<CChar>? = nil
        _ = ert_curl_getinfo_string(handle, CURLINFO_CONTENT_TYPE, &contentType)
        var connects = 0
        _ = ert_curl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        return .success(
            HTTPClientResponse(
                status: status, contentType: contentType.map { String(cString: $0) } ?? "", body: transfer.body,
                newConnections: connects, headers: transfer.headers))
    }

    /// The redirect policy (at most five, http and https only) and SigV4 signing, shared by
    /// every libcurl transfer of the host: engine calls, source metadata and downloads.
    static func applyRedirectsAndSigning(_ handle: UnsafeMutableRawPointer, followRedirects: Bool, signing: AWSSigning?) {
        _ = ert_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, followRedirects ? 1 : 0)
        _ = ert_curl_setopt_long(handle, CURLOPT_MAXREDIRS, 5)
        _ = ert_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        if let signing {
            _ = ert_curl_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):s3")
            _ = ert_curl_setopt_string(handle, CURLOPT_USERNAME, signing.accessKey)
            _ = ert_curl_setopt_string(handle, CURLOPT_PASSWORD, signing.secretKey)
        }
    }

    private static func error(
        for code: CURLcode, transfer: Transfer, request: HTTPClientRequest, timeoutMilliseconds: Int
    ) -> Failure {
        let error = describe(code, transfer: transfer, request: request, timeoutMilliseconds: timeoutMilliseconds)
        let transient = [CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE].contains(code)
        return Failure(error: error, transient: transient)
    }

    private static func describe(
        _ code: CURLcode, transfer: Transfer, request: HTTPClientRequest, timeoutMilliseconds: Int
    ) -> DriverCallError {
        let target = "\(request.method) \(CurlHTTPClient.redacted(request.url))"
        let reason = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_WRITE_ERROR where transfer.overflowed:
            return DriverCallError(.upstream, "response to \(target) is larger than \(request.maxResponseBytes) bytes")
        case CURLE_ABORTED_BY_CALLBACK where transfer.cancelled:
            return DriverCallError(.cancelled, "\(target) was cancelled")
        case CURLE_OPERATION_TIMEDOUT:
            return DriverCallError(.timeout, "\(target) timed out after \(timeoutMilliseconds) ms")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return DriverCallError(.unavailable, "cannot reach \(target): \(reason)")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return DriverCallError(.invalidArgument, "bad URL for \(target): \(reason)")
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE:
            return DriverCallError(.upstream, "connection to \(target) failed: \(reason)")
        default:
            return DriverCallError(.upstream, "\(target) failed: \(reason)")
        }
    }
}

/// Response header lines as libcurl hands them over, one per callback.
enum HTTPHeaderLine {
    /// Adds `line` to `headers`; a status line (the start of an answer, redirects included)
    /// clears what came before, so only the final answer's headers stay.
    static func collect(_ line: String, into headers: inout [String: String]) {
        if line.hasPrefix("HTTP/") {
            headers.removeAll(keepingCapacity: true)
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingWhitespace()
        headers[name] = value
    }
}

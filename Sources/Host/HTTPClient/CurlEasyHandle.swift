import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// One libcurl easy handle: the one place the host sets up a transfer, for engine calls
/// (`perform`) and for the download engine's multi transfers (`configure`). Used by one thread
/// at a time (a pool or the multi loop hands it out exclusively), so it needs no locking.
final class CurlEasyHandle: @unchecked Sendable {
    private(set) var pointer: UnsafeMutableRawPointer?
    /// The header list of the transfer in progress; freed by the next `configure` or `close`.
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// The body receiver of the transfer in progress (`receiveBody`); dropped by the next
    /// `configure` or `close`.
    private var receiver: BodyReceiver?
    private var hostGuard: HostGuard?

    /// The host a redirect tried to reach and the allow-list refused, during the last transfer.
    var refusedHost: String? { hostGuard?.refused }

    init() {
        CurlGlobal.initializeOnce()
        pointer = curl_easy_init()
    }

    func close() {
        curl_slist_free_all(headerList)
        headerList = nil
        receiver = nil
        if let pointer { curl_easy_cleanup(pointer) }
        pointer = nil
    }

    deinit { close() }

    /// What every transfer of the host shares: URL, protocols, headers (SigV4's own included),
    /// the redirect policy (at most five, within `protocols`), signing, connect timeout,
    /// TCP_NODELAY and no signals. Resets what the previous transfer set, keeping the handle's
    /// connection cache.
    func configure(
        url: String, protocols: String = "http,https", headers: [String], followRedirects: Bool, signing: AWSSigning?,
        connectTimeoutMilliseconds: Int, allowedHosts: HostAllowList? = nil
    ) {
        guard let handle = pointer else { return }
        curl_easy_reset(handle)
        curl_slist_free_all(headerList)
        headerList = nil
        receiver = nil
        hostGuard = nil
        if let allowedHosts, !allowedHosts.isEmpty {
            // libcurl calls this for every socket it opens, before connecting: a redirect to
            // a host off the list fails there, with nothing sent to it (the URL being fetched
            // is already the redirect's target then).
            let guardBox = HostGuard(handle: handle, allowed: allowedHosts)
            hostGuard = guardBox
            _ = ert_curl_setopt_pointer(handle, CURLOPT_SOCKOPTDATA, Unmanaged.passUnretained(guardBox).toOpaque())
            _ = ert_curl_setopt_sockopt_callback(handle) { context, _, _ in
                Unmanaged<HostGuard>.fromOpaque(context!).takeUnretainedValue().check() ? 0 : 1  // CURL_SOCKOPT_OK / _ERROR
            }
        }
        for line in headers + (signing?.headers ?? []) { headerList = curl_slist_append(headerList, line) }
        // libcurl adds "Expect: 100-continue" to large POSTs; no server here needs the round trip.
        headerList = curl_slist_append(headerList, "Expect:")
        _ = ert_curl_setopt_string(handle, CURLOPT_URL, url)
        _ = ert_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ert_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, protocols)
        _ = ert_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, followRedirects ? 1 : 0)
        _ = ert_curl_setopt_long(handle, CURLOPT_MAXREDIRS, 5)
        _ = ert_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, protocols)
        if let signing {
            _ = ert_curl_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):s3")
            _ = ert_curl_setopt_string(handle, CURLOPT_USERNAME, signing.accessKey)
            _ = ert_curl_setopt_string(handle, CURLOPT_PASSWORD, signing.secretKey)
        }
        _ = ert_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds)
        _ = ert_curl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        _ = ert_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
    }

    /// Options of long transfers (downloads): fail when fewer than one byte a second arrives
    /// for `stallSeconds`; read in `bufferBytes` pieces; ask for `range` ("from-to") when set.
    func setTransferOptions(stallSeconds: Int, bufferBytes: Int, range: String?) {
        guard let handle = pointer else { return }
        _ = ert_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = ert_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, stallSeconds)
        _ = ert_curl_setopt_long(handle, CURLOPT_BUFFERSIZE, bufferBytes)
        if let range { _ = ert_curl_setopt_string(handle, CURLOPT_RANGE, range) }
    }

    /// Hands the body of the answer to `receive`, piece by piece; `receive` returns how many
    /// bytes it took (fewer than given stops the transfer with a write error).
    func receiveBody(_ receive: @escaping (UnsafeRawBufferPointer) -> Int) {
        guard let handle = pointer else { return }
        let box = BodyReceiver(receive)
        receiver = box
        _ = ert_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(box).toOpaque())
        _ = ert_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let box = Unmanaged<BodyReceiver>.fromOpaque(context!).takeUnretainedValue()
            return box.receive(UnsafeRawBufferPointer(start: data, count: size * count))
        }
    }

    private final class HostGuard {
        let handle: UnsafeMutableRawPointer
        let allowed: HostAllowList
        var refused: String?

        init(handle: UnsafeMutableRawPointer, allowed: HostAllowList) {
            self.handle = handle
            self.allowed = allowed
        }

        func check() -> Bool {
            var url: UnsafePointer<CChar>? = nil
            _ = ert_curl_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &url)
            let host = url.map { CurlURL.host(of: String(cString: $0)) } ?? ""
            guard allowed.allows(host: host) else {
                refused = host
                return false
            }
            return true
        }
    }

    private final class BodyReceiver {
        let receive: (UnsafeRawBufferPointer) -> Int
        init(_ receive: @escaping (UnsafeRawBufferPointer) -> Int) { self.receive = receive }
    }

    /// The HTTP status of the last answer (0 before one arrived).
    var responseStatus: Int {
        var status = 0
        if let pointer { _ = ert_curl_getinfo_long(pointer, CURLINFO_RESPONSE_CODE, &status) }
        return status
    }

    /// The headers of the final answer (after redirects), names in lower case, the last value
    /// of a repeated name: libcurl's own header API, no parsing here.
    var responseHeaders: [String: String] {
        guard let pointer else { return [:] }
        var headers: [String: String] = [:]
        var previous: UnsafeMutablePointer<curl_header>? = nil
        while let header = curl_easy_nextheader(pointer, UInt32(CURLH_HEADER), -1, previous) {
            if let name = header.pointee.name, let value = header.pointee.value {
                headers[String(cString: name).lowercased()] = String(cString: value)
            }
            previous = header
        }
        return headers
    }

    /// The state shared with libcurl's callbacks during one `perform`.
    private final class Transfer {
        var body: [UInt8]
        var handle: UnsafeMutableRawPointer? = nil
        let limit: Int
        var overflowed = false
        let isCancelled: () -> Bool
        var cancelled = false
        init(limit: Int, storage: Handoff<[UInt8]>?, isCancelled: @escaping () -> Bool) {
            self.limit = limit
            // Taken straight into the property: a local copy on the way would make the first
            // append copy the old contents.
            self.body = storage?.take() ?? []
            self.body.removeAll(keepingCapacity: true)
            self.isCancelled = isCancelled
        }
    }

    /// One blocking request with the body collected in memory (engine calls, metadata).
    func perform(
        _ request: HTTPClientRequest, timeoutMilliseconds: Int, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, HTTPClientError> {
        guard let handle = pointer else { return .failure(HTTPClientError(.failed, "curl_easy_init failed")) }
        configure(
            url: request.url, headers: request.headers, followRedirects: request.followRedirects, signing: request.signing,
            connectTimeoutMilliseconds: min(timeoutMilliseconds, 10_000), allowedHosts: request.allowedHosts)
        let transfer = Transfer(limit: request.maxResponseBytes, storage: request.responseStorage, isCancelled: isCancelled)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        _ = ert_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
        _ = ert_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard transfer.body.count + length <= transfer.limit else {
                transfer.overflowed = true
                return 0  // makes libcurl stop with CURLE_WRITE_ERROR
            }
            if let data, length > 0 {
                if transfer.body.isEmpty, let handle = transfer.handle {
                    // The whole body at once when its length is known: growing a multi-megabyte
                    // array by doubling copies it and faults its pages in again each time.
                    var expected: curl_off_t = -1
                    _ = ert_curl_getinfo_off(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected)
                    if expected > 0 { transfer.body.reserveCapacity(Int(min(Int64(transfer.limit), Int64(expected)))) }
                }
                data.withMemoryRebound(to: UInt8.self, capacity: length) {
                    transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                }
            }
            return length
        }
        transfer.handle = handle
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
            let target = "\(request.method) \(CurlHTTPClient.redacted(request.url))"
            let reason = HTTPClientError.reason(code)
            if let host = refusedHost {
                return .failure(
                    HTTPClientError(.hostRefused, "\(target) was redirected to host \"\(host)\", which DOWNLOADER_ALLOWED_HOSTS does not allow; nothing was fetched from it"))
            }
            if code == CURLE_WRITE_ERROR, transfer.overflowed {
                return .failure(HTTPClientError(.tooLarge, "response to \(target) is larger than \(request.maxResponseBytes) bytes"))
            }
            if code == CURLE_ABORTED_BY_CALLBACK, transfer.cancelled {
                return .failure(HTTPClientError(.cancelled, "\(target) was cancelled"))
            }
            let kind = HTTPClientError.kind(of: code)
            let message =
                switch kind {
                case .timeout: "\(target) timed out after \(timeoutMilliseconds) ms"
                case .unreachable: "cannot reach \(target): \(reason)"
                case .invalidRequest: "bad URL for \(target): \(reason)"
                case .connectionBroken: "connection to \(target) failed: \(reason)"
                default: "\(target) failed: \(reason)"
                }
            return .failure(HTTPClientError(kind, message))
        }
        var contentType: UnsafePointer<CChar>? = nil
        _ = ert_curl_getinfo_string(handle, CURLINFO_CONTENT_TYPE, &contentType)
        var connects = 0
        _ = ert_curl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        return .success(
            HTTPClientResponse(
                status: responseStatus, contentType: contentType.map { String(cString: $0) } ?? "", body: transfer.body,
                newConnections: connects, headers: responseHeaders))
    }
}

/// `curl_global_init` must run once before any other libcurl call, while single-threaded
/// is best; a static let gives exactly-once, thread-safe initialization.
enum CurlGlobal {
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    static func initializeOnce() { _ = initialized }
}

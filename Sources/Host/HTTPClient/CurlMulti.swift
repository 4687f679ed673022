import CCurl

/// A libcurl multi handle: many transfers side by side on the calling thread (the download
/// engine's loop). Not thread-safe: one loop, one thread.
final class CurlMulti {
    private let multi: UnsafeMutableRawPointer
    /// The transfers added and not yet finished, by their easy handle.
    private var running: [UnsafeMutableRawPointer: CurlEasyHandle] = [:]

    init(maximumHostConnections: Int) throws(HTTPClientError) {
        CurlGlobal.initializeOnce()
        guard let multi = curl_multi_init() else { throw HTTPClientError(.failed, "curl_multi_init failed") }
        self.multi = multi
        _ = ert_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maximumHostConnections)
    }

    deinit {
        for pointer in running.keys { curl_multi_remove_handle(multi, pointer) }
        curl_multi_cleanup(multi)
    }

    /// Starts the transfer `easy` was configured for.
    func add(_ easy: CurlEasyHandle) throws(HTTPClientError) {
        guard let pointer = easy.pointer else { throw HTTPClientError(.failed, "curl_easy_init failed") }
        running[pointer] = easy
        curl_multi_add_handle(multi, pointer)
    }

    /// Stops a transfer that has not ended; its handle can be closed or configured again.
    func remove(_ easy: CurlEasyHandle) {
        guard let pointer = easy.pointer, running.removeValue(forKey: pointer) != nil else { return }
        curl_multi_remove_handle(multi, pointer)
    }

    /// Moves every transfer on as far as it can without waiting; returns those that ended, with
    /// their result (their handles can be configured again).
    func perform() -> [(easy: CurlEasyHandle, result: CurlResult)] {
        var stillRunning: Int32 = 0
        curl_multi_perform(multi, &stillRunning)
        var finished: [(CurlEasyHandle, CurlResult)] = []
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let pointer = message.pointee.easy_handle,
                let easy = running.removeValue(forKey: pointer)
            else { continue }
            curl_multi_remove_handle(multi, pointer)
            finished.append((easy, CurlResult(code: message.pointee.data.result)))
        }
        return finished
    }

    /// Waits until a transfer has something to do, at most `milliseconds`.
    func wait(milliseconds: Int32) {
        var ready: Int32 = 0
        curl_multi_poll(multi, nil, 0, milliseconds, &ready)
    }
}

/// How one transfer ended, in the one classification of libcurl's codes (`HTTPClientError`).
struct CurlResult {
    let code: CURLcode

    var isOK: Bool { code == CURLE_OK }
    var kind: HTTPClientError.Kind { HTTPClientError.kind(of: code) }
    /// A redirect loop is a failure another attempt does not cure.
    var isRedirectLoop: Bool { code == CURLE_TOO_MANY_REDIRECTS }
    var reason: String { HTTPClientError.reason(code) }
}

import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// Fetches staged files with one libcurl multi handle: whole small files and the ranged parts
/// of large ones run side by side (up to `numThreads` at once), each written straight to its
/// offset, so memory stays at libcurl's buffers whatever the file sizes.
///
/// Runs on the calling thread until every part is done, one fails for good, or
/// `isCancelled` turns true; `onTick` runs on that thread at least every 100 ms.
/// Not thread-safe: one engine, one thread.
final class TransferEngine {
    private let access: TransferAccess
    private let settings: DownloadSettings
    private let isCancelled: () -> Bool
    private let onTick: () -> Void
    private let log: (String) -> Void

    init(
        access: TransferAccess, settings: DownloadSettings, isCancelled: @escaping () -> Bool,
        onTick: @escaping () -> Void, log: @escaping (String) -> Void
    ) {
        self.access = access
        self.settings = settings
        self.isCancelled = isCancelled
        self.onTick = onTick
        self.log = log
        CurlGlobal.initializeOnce()
    }

    /// One part waiting for its (next) attempt.
    private struct Pending {
        var file: StagedFile
        var part: Int
        var attempt: Int
        var notBefore: UInt64
    }

    /// The state libcurl's callbacks share with the engine during one attempt.
    final class Attempt {
        let file: StagedFile
        let part: Int
        let attempt: Int
        let easy: UnsafeMutableRawPointer
        let rangeRequested: Bool
        var status = 0
        var writeErrno: Int32 = 0
        var rangeIgnored = false
        var tooLong = false
        var errorBody: [UInt8] = []
        var received: Int64 = 0
        var headers: UnsafeMutablePointer<curl_slist>?

        init(file: StagedFile, part: Int, attempt: Int, easy: UnsafeMutableRawPointer, rangeRequested: Bool) {
            self.file = file
            self.part = part
            self.attempt = attempt
            self.easy = easy
            self.rangeRequested = rangeRequested
        }
    }

    /// Transfers every unfinished part of `files`.
    func run(_ files: [StagedFile]) throws(ArtifactError) {
        var pending: [Pending] = []
        for file in files where !file.isTransferred {
            for (index, part) in file.parts.enumerated() where !part.isComplete {
                if !file.remote.acceptsRanges, part.done > 0 { file.restart(part: index) }
                pending.append(Pending(file: file, part: index, attempt: 1, notBefore: 0))
            }
        }
        guard !pending.isEmpty else { return }
        guard let multi = curl_multi_init() else { throw ArtifactError(.storage, "curl_multi_init failed") }
        _ = ert_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, settings.numThreads)
        var active: [UnsafeMutableRawPointer: Attempt] = [:]
        var idleHandles: [UnsafeMutableRawPointer] = []
        var lastSave = Self.now()
        defer {
            for (easy, attempt) in active {
                curl_multi_remove_handle(multi, easy)
                curl_slist_free_all(attempt.headers)
                Unmanaged.passUnretained(attempt).release()
                curl_easy_cleanup(easy)
            }
            for easy in idleHandles { curl_easy_cleanup(easy) }
            curl_multi_cleanup(multi)
            for file in files { try? file.saveIfChanged() }
        }

        while !pending.isEmpty || !active.isEmpty {
            if isCancelled() { throw ArtifactError(.cancelled, "the download was cancelled; finished bytes are kept for a resume") }
            let now = Self.now()
            // Start what may start: bounded by numThreads, retries after their backoff.
            var index = 0
            while active.count < settings.numThreads, index < pending.count {
                guard pending[index].notBefore <= now else { index += 1; continue }
                let next = pending.remove(at: index)
                let easy = idleHandles.popLast() ?? curl_easy_init()
                guard let easy else { throw ArtifactError(.storage, "curl_easy_init failed") }
                let attempt = start(next, easy: easy)
                active[easy] = attempt
                curl_multi_add_handle(multi, easy)
            }

            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let attempt = active.removeValue(forKey: easy)
                else { continue }
                let code = message.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                curl_slist_free_all(attempt.headers)
                attempt.headers = nil
                Unmanaged.passUnretained(attempt).release()
                idleHandles.append(easy)
                if let retry = try finish(attempt, code: code) {
                    pending.append(retry)
                }
            }
            if Self.now() - lastSave >= 1_000_000_000 {
                for file in files { try file.saveIfChanged() }
                lastSave = Self.now()
            }
            onTick()
            // Refill free slots at once: curl_multi_poll sleeps its whole timeout when no
            // transfer is running, which would cost 100 ms per batch of small files.
            let now2 = Self.now()
            let canStart = active.count < settings.numThreads && pending.contains { $0.notBefore <= now2 }
            if canStart { continue }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, active.isEmpty ? 20 : 100, &ready)
        }
    }

    private func start(_ pending: Pending, easy: UnsafeMutableRawPointer) -> Attempt {
        let file = pending.file
        let part = file.parts[pending.part]
        curl_easy_reset(easy)
        let from = part.start + part.done
        let rangeRequested = from > 0 || file.parts.count > 1
        let attempt = Attempt(file: file, part: pending.part, attempt: pending.attempt, easy: easy, rangeRequested: rangeRequested)
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        for line in access.headers + (access.signing?.headers ?? []) { headers = curl_slist_append(headers, line) }
        if rangeRequested, let tag = file.remote.ifMatch { headers = curl_slist_append(headers, "If-Match: \(tag)") }
        attempt.headers = headers
        _ = ert_curl_setopt_string(easy, CURLOPT_URL, file.remote.url)
        _ = ert_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, access.protocols)
        _ = ert_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        CurlEasyHandle.applyRedirectsAndSigning(easy, followRedirects: access.followRedirects, signing: access.signing)
        _ = ert_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, 15_000)
        _ = ert_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = ert_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, settings.stallTimeoutSeconds)
        _ = ert_curl_setopt_long(easy, CURLOPT_BUFFERSIZE, 256 << 10)
        _ = ert_curl_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        _ = ert_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
        if rangeRequested {
            let end = part.length.map { String(part.start + $0 - 1) } ?? ""
            _ = ert_curl_setopt_string(easy, CURLOPT_RANGE, "\(from)-\(end)")
        }
        let context = Unmanaged.passRetained(attempt).toOpaque()
        _ = ert_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        _ = ert_curl_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let attempt = Unmanaged<TransferEngine.Attempt>.fromOpaque(context!).takeUnretainedValue()
            return TransferEngine.receive(attempt, UnsafeRawBufferPointer(start: data, count: size * count))
        }
        return attempt
    }

    /// libcurl's write callback: the body of an answer, in pieces.
    static func receive(_ attempt: Attempt, _ bytes: UnsafeRawBufferPointer) -> Int {
        if attempt.status == 0 {
            var status = 0
            _ = ert_curl_getinfo_long(attempt.easy, CURLINFO_RESPONSE_CODE, &status)
            attempt.status = status
            // 200 to a Range request is the whole file. A one-part file starts over at byte 0;
            // for a part of a larger file, writing it at the part's offset would corrupt it.
            if status == 200, attempt.rangeRequested {
                guard attempt.file.parts.count == 1 else {
                    attempt.rangeIgnored = true
                    return 0
                }
                attempt.file.restart(part: 0)
            }
        }
        guard attempt.status == 200 || attempt.status == 206 || attempt.file.remote.url.hasPrefix("file:") else {
            if attempt.errorBody.count < 4096 { attempt.errorBody += bytes.prefix(4096 - attempt.errorBody.count) }
            return bytes.count
        }
        let part = attempt.file.parts[attempt.part]
        if let length = part.length, part.done + Int64(bytes.count) > length {
            attempt.tooLong = true
            return 0
        }
        if let code = attempt.file.write(bytes, part: attempt.part) {
            attempt.writeErrno = code
            return 0
        }
        attempt.received += Int64(bytes.count)
        return bytes.count
    }

    /// Settles a finished attempt: nil when the part is done, a retry, or a thrown error.
    /// A finished part of a large file is saved at once, so a kill right after loses nothing
    /// of it; one-part files wait for the periodic save (at most a second of small files).
    private func finish(_ attempt: Attempt, code: CURLcode) throws(ArtifactError) -> Pending? {
        let retry = try settle(attempt, code: code)
        if attempt.file.parts.count > 1 { try attempt.file.saveIfChanged() }
        return retry
    }

    private func settle(_ attempt: Attempt, code: CURLcode) throws(ArtifactError) -> Pending? {
        let file = attempt.file
        let part = file.parts[attempt.part]
        let name = file.remote.relativePath
        if attempt.writeErrno != 0 {
            throw StagingDirectory.error(attempt.writeErrno, "write", file.dataPath)
        }
        if attempt.rangeIgnored {
            throw ArtifactError(.upstream, "the server ignored the Range header for \(name); it cannot be fetched in parts")
        }
        if attempt.tooLong {
            throw ArtifactError(.integrity, "\(name) is longer than its published size \(file.remote.size ?? 0)")
        }
        var status = attempt.status
        if status == 0 { _ = ert_curl_getinfo_long(attempt.easy, CURLINFO_RESPONSE_CODE, &status) }
        let isFile = file.remote.url.hasPrefix("file:")
        var failure: ArtifactError
        var transient: Bool
        if code == CURLE_OK, isFile || status == 200 || status == 206 {
            if part.isComplete || (part.length == nil) {
                if part.length == nil { file.finishedUnknownSize = true }
                return nil
            }
            failure = ArtifactError(.upstream, "\(name): the answer ended after \(part.done) of \(part.length ?? 0) bytes")
            transient = true
        } else if code == CURLE_OK {
            (failure, transient) = ArtifactError.httpAnswer(status, body: attempt.errorBody, what: name)
        } else {
            let reason = String(cString: curl_easy_strerror(code))
            switch code {
            case CURLE_OPERATION_TIMEDOUT:
                failure = ArtifactError(.timeout, "\(name): no data for \(settings.stallTimeoutSeconds) s (\(reason))")
                transient = true
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_TOO_MANY_REDIRECTS:
                failure = ArtifactError(.upstream, "\(name): \(reason)")
                transient = false
            case CURLE_FILE_COULDNT_READ_FILE:
                failure = ArtifactError(.notFound, "\(name): \(reason)")
                transient = false
            default:
                failure = ArtifactError(.upstream, "\(name): \(reason)")
                transient = true
            }
        }
        if !file.remote.acceptsRanges { file.restart(part: attempt.part) }
        guard transient, attempt.attempt < settings.maxAttempts else {
            if transient { failure.message += " (after \(attempt.attempt) attempts)" }
            throw failure
        }
        let backoff = min(UInt64(8_000_000_000), UInt64(250_000_000) << UInt64(attempt.attempt))
        let jitter = UInt64.random(in: 0...(backoff / 4))
        log("retrying \(name) part \(attempt.part + 1)/\(file.parts.count) from byte \(part.start + file.parts[attempt.part].done) in \((backoff + jitter) / 1_000_000) ms: \(failure.message)")
        return Pending(file: file, part: attempt.part, attempt: attempt.attempt + 1, notBefore: Self.now() + backoff + jitter)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}


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
    private let isCancelled: @Sendable () -> Bool
    private let onTick: () -> Void
    private let log: (String) -> Void

    init(
        access: TransferAccess, settings: DownloadSettings, isCancelled: @escaping @Sendable () -> Bool,
        onTick: @escaping () -> Void, log: @escaping (String) -> Void
    ) {
        self.access = access
        self.settings = settings
        self.isCancelled = isCancelled
        self.onTick = onTick
        self.log = log
    }

    /// One part waiting for its (next) attempt.
    private struct Pending {
        var file: StagedFile
        var part: Int
        var attempt: Int
        var notBefore: ContinuousClock.Instant
    }

    /// The state libcurl's callbacks share with the engine during one attempt.
    final class Attempt {
        let file: StagedFile
        let part: Int
        let attempt: Int
        let easy: CurlEasyHandle
        let rangeRequested: Bool
        var status = 0
        var writeErrno: Int32 = 0
        var rangeIgnored = false
        var tooLong = false
        var errorBody: [UInt8] = []
        var received: Int64 = 0

        init(file: StagedFile, part: Int, attempt: Int, easy: CurlEasyHandle, rangeRequested: Bool) {
            self.file = file
            self.part = part
            self.attempt = attempt
            self.easy = easy
            self.rangeRequested = rangeRequested
        }
    }

    /// Transfers every unfinished part of `files`.
    func run(_ files: [StagedFile]) throws(RuntimeError) {
        var pending: [Pending] = []
        for file in files where !file.isTransferred {
            for (index, part) in file.parts.enumerated() where !part.isComplete {
                if !file.remote.acceptsRanges, part.done > 0 { file.restart(part: index) }
                pending.append(Pending(file: file, part: index, attempt: 1, notBefore: .now))
            }
        }
        guard !pending.isEmpty else { return }
        let multi: CurlMulti
        do { multi = try CurlMulti(maximumHostConnections: settings.numThreads) } catch { throw RuntimeError(.storage, error.message) }
        var active: [ObjectIdentifier: Attempt] = [:]
        var idleHandles: [CurlEasyHandle] = []
        var lastSave = ContinuousClock.now
        defer {
            // A handle leaves the multi before it is closed (libcurl's rule); closing drops its
            // body receiver, which holds the attempt.
            for attempt in active.values {
                multi.remove(attempt.easy)
                attempt.easy.close()
            }
            for easy in idleHandles { easy.close() }
            for file in files { try? file.saveIfChanged() }
        }

        while !pending.isEmpty || !active.isEmpty {
            if isCancelled() { throw RuntimeError(.cancelled, "the download was cancelled; finished bytes are kept for a resume") }
            let now = ContinuousClock.now
            // Start what may start: bounded by numThreads, retries after their backoff.
            var index = 0
            while active.count < settings.numThreads, index < pending.count {
                guard pending[index].notBefore <= now else { index += 1; continue }
                let next = pending.remove(at: index)
                let easy = idleHandles.popLast() ?? CurlEasyHandle()
                let attempt = try start(next, easy: easy)
                do { try multi.add(easy) } catch { throw RuntimeError(.storage, error.message) }
                active[ObjectIdentifier(easy)] = attempt
            }

            for (easy, result) in multi.perform() {
                guard let attempt = active.removeValue(forKey: ObjectIdentifier(easy)) else { continue }
                idleHandles.append(easy)
                if let retry = try finish(attempt, result: result) {
                    pending.append(retry)
                }
            }
            if ContinuousClock.now - lastSave >= .seconds(1) {
                for file in files { try file.saveIfChanged() }
                lastSave = ContinuousClock.now
            }
            onTick()
            // Refill free slots at once: curl_multi_poll sleeps its whole timeout when no
            // transfer is running, which would cost 100 ms per batch of small files.
            let now2 = ContinuousClock.now
            let canStart = active.count < settings.numThreads && pending.contains { $0.notBefore <= now2 }
            if canStart { continue }
            multi.wait(milliseconds: active.isEmpty ? 20 : 100)
        }
    }

    private func start(_ pending: Pending, easy handle: CurlEasyHandle) throws(RuntimeError) -> Attempt {
        let file = pending.file
        let part = file.parts[pending.part]
        let from = part.start + part.done
        let rangeRequested = from > 0 || file.parts.count > 1
        let attempt = Attempt(file: file, part: pending.part, attempt: pending.attempt, easy: handle, rangeRequested: rangeRequested)
        // Credentials are asked per part: a long download outlives a short-lived session.
        var (headers, signing) = try access.authorize(isCancelled: isCancelled)
        if rangeRequested, let tag = file.remote.ifMatch { headers.append("If-Match: \(tag)") }
        handle.configure(
            url: file.remote.url, protocols: access.protocols, headers: headers, followRedirects: access.followRedirects,
            signing: signing, connectTimeoutMilliseconds: 15_000, allowedHosts: access.allowedHosts)
        let range = rangeRequested ? "\(from)-\(part.length.map { String(part.start + $0 - 1) } ?? "")" : nil
        handle.setTransferOptions(stallSeconds: settings.stallTimeoutSeconds, bufferBytes: 256 << 10, range: range)
        handle.receiveBody { bytes in TransferEngine.receive(attempt, bytes) }
        return attempt
    }

    /// libcurl's write callback: the body of an answer, in pieces.
    static func receive(_ attempt: Attempt, _ bytes: UnsafeRawBufferPointer) -> Int {
        if attempt.status == 0 {
            attempt.status = attempt.easy.responseStatus
            // 200 to a Range request is the whole file. A one-part file starts over at byte 0;
            // for a part of a larger file, writing it at the part's offset would corrupt it.
            if attempt.status == 200, attempt.rangeRequested {
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
    private func finish(_ attempt: Attempt, result: CurlResult) throws(RuntimeError) -> Pending? {
        let retry = try settle(attempt, result: result)
        if attempt.file.parts.count > 1 { try attempt.file.saveIfChanged() }
        return retry
    }

    private func settle(_ attempt: Attempt, result: CurlResult) throws(RuntimeError) -> Pending? {
        let file = attempt.file
        let part = file.parts[attempt.part]
        let name = file.remote.relativePath
        if attempt.writeErrno != 0 {
            throw StagingDirectory.error(attempt.writeErrno, "write", file.dataPath)
        }
        if let host = attempt.easy.refusedHost {
            throw RuntimeError(
                .permissionDenied, "\(name) was redirected to host \"\(host)\", which DOWNLOADER_ALLOWED_HOSTS does not allow; nothing was fetched from it")
        }
        if attempt.rangeIgnored {
            throw RuntimeError(.upstream, "the server ignored the Range header for \(name); it cannot be fetched in parts")
        }
        if attempt.tooLong {
            throw RuntimeError(.integrity, "\(name) is longer than its published size \(file.remote.size ?? 0)")
        }
        let status = attempt.status == 0 ? attempt.easy.responseStatus : attempt.status
        let isFile = file.remote.url.hasPrefix("file:")
        var failure: RuntimeError
        var transient: Bool
        if result.isOK, isFile || status == 200 || status == 206 {
            if part.isComplete || (part.length == nil) {
                if part.length == nil { file.finishedUnknownSize = true }
                return nil
            }
            failure = RuntimeError(.upstream, "\(name): the answer ended after \(part.done) of \(part.length ?? 0) bytes")
            transient = true
        } else if result.isOK {
            (failure, transient) = RuntimeError.httpAnswer(status, body: attempt.errorBody, what: name)
        } else {
            let reason = result.reason
            switch result.kind {
            case .timeout:
                failure = RuntimeError(.timeout, "\(name): no data for \(settings.stallTimeoutSeconds) s (\(reason))")
                transient = true
            case .fileNotFound:
                failure = RuntimeError(.notFound, "\(name): \(reason)")
                transient = false
            case .invalidRequest:
                failure = RuntimeError(.upstream, "\(name): \(reason)")
                transient = false
            // A source that is down or breaks the connection may be back for the next attempt.
            case .unreachable, .connectionBroken, .failed, .tooLarge, .cancelled, .hostRefused:
                failure = RuntimeError(.upstream, "\(name): \(reason)")
                transient = !result.isRedirectLoop
            }
        }
        if !file.remote.acceptsRanges { file.restart(part: attempt.part) }
        guard transient, attempt.attempt < settings.maxAttempts else {
            if transient { failure.message += " (after \(attempt.attempt) attempts)" }
            throw failure
        }
        let backoff = Backoff.download.delay(after: attempt.attempt)
        log("retrying \(name) part \(attempt.part + 1)/\(file.parts.count) from byte \(part.start + file.parts[attempt.part].done) in \(Int(backoff / .milliseconds(1))) ms: \(failure.message)")
        return Pending(file: file, part: attempt.part, attempt: attempt.attempt + 1, notBefore: .now + backoff)
    }
}

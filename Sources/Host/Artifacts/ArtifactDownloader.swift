import Dispatch
import FoundationEssentials
import Logging
import Synchronization

/// Runs one job from listing to publishing, on the calling (download) thread:
/// lock, plan, stage (resuming what is there), transfer, verify, publish.
struct ArtifactDownloader {
    let job: DownloadJob
    let http: CurlHTTPClient
    let credentials: CredentialSources
    /// Where each transfer's `DigestWorker` runs.
    let hashers: ElasticThreadPool
    let logger: Logger

    /// What planning hands to the transfer: the lock (held until the job ends, across
    /// threads), the staged files and how to reach them. Used by one thread at a time.
    final class Prepared: @unchecked Sendable {
        let lock: ArtifactLock
        let files: [StagedFile]
        let plan: DownloadPlan
        let started: ContinuousClock.Instant
        init(lock: ArtifactLock, files: [StagedFile], plan: DownloadPlan, started: ContinuousClock.Instant) {
            self.lock = lock
            self.files = files
            self.plan = plan
            self.started = started
        }
    }

    /// The first phase, on a planning thread (never behind the transfers, so a missing
    /// repository is reported at once even when every transfer slot is busy): lock, list,
    /// stage (resuming what is there), and reserve the space still needed through `admit`.
    /// `.success(nil)` when the target is already published.
    func prepare(
        admit: (_ needed: Int64, _ files: Int, _ bytes: Int64, _ alreadyDone: Int64) throws(RuntimeError) -> Void
    ) -> Result<Prepared?, RuntimeError> {
        let started = ContinuousClock.now
        let target = job.target
        let settings = job.settings
        var staged: [StagedFile] = []
        // Declared out here so the lock is still held while a failure cleans the staging
        // directory up: another process must not start on it in between.
        var held: ArtifactLock? = nil
        defer { withExtendedLifetime(held) {} }
        do throws(RuntimeError) {
            try StagingDirectory.createDirectory(target.localDir)
            guard let lock = try ArtifactLock(target) else {
                throw RuntimeError(.conflict, "another process is downloading \(target.path)")
            }
            held = lock
            if !settings.forceDownload, let manifest = ArtifactManifest.load(target) {
                guard manifest.source == job.displayURI else {
                    throw RuntimeError(
                        .conflict, "\(target.path) already holds \(manifest.source); choose another model_name or set force_download")
                }
                let total = manifest.files.reduce(0) { $0 + $1.size }
                job.planned(files: manifest.files.count, bytes: total, alreadyDone: total)
                return .success(nil)
            }
            job.update { $0.state = .listing }
            let isCancelled: @Sendable () -> Bool = { [job] in job.isCancelled }
            let plan = try ArtifactPlanner(settings: settings, http: http, credentials: credentials).plan(job.source, isCancelled: isCancelled)
            if settings.forceDownload { StagingDirectory.remove(target.stagingDirectory) }
            StagingDirectory.remove(target.failureMarkerPath)
            for remote in plan.files {
                staged.append(try StagedFile(remote: remote, stagingRoot: target.stagingDirectory, settings: settings))
            }
            let alreadyDone = staged.reduce(0) { $0 + $1.doneBytes }
            if alreadyDone > 0 {
                logger.info("resuming download", metadata: ["id": "\(job.id)", "bytes_on_disk": "\(alreadyDone)", "path": "\(target.path)"])
            }
            try admit(plan.totalBytes - alreadyDone, staged.count, plan.totalBytes, alreadyDone)
            return .success(Prepared(lock: lock, files: staged, plan: plan, started: started))
        } catch {
            failed(error, files: staged)
            return .failure(error)
        }
    }

    /// The second phase, on a transfer thread: transfer, verify, publish.
    func complete(_ prepared: Prepared) -> Result<Void, RuntimeError> {
        defer { prepared.lock.unlock() }
        do throws(RuntimeError) {
            try publish(prepared)
            let snapshot = job.snapshot
            let seconds = (ContinuousClock.now - prepared.started) / .seconds(1)
            logger.info(
                "download finished",
                metadata: [
                    "id": "\(job.id)", "source": "\(job.displayURI)", "path": "\(job.target.path)", "files": "\(snapshot.files_total)",
                    "bytes": "\(snapshot.bytes_total)", "milliseconds": "\(Int(seconds * 1000))",
                ])
            return .success(())
        } catch {
            failed(error, files: prepared.files)
            return .failure(error)
        }
    }

    /// Logs a failure and leaves the staging directory as something worth keeping or nothing:
    /// bytes that cannot be resumed (a source without ranges or size) are removed, an empty
    /// staging directory goes, and a failed one keeps a marker so the list says `failed`.
    /// Cancelled staging stays as it is, to be resumed.
    private func failed(_ error: RuntimeError, files: [StagedFile]) {
        logger.error(
            "download failed",
            metadata: ["id": "\(job.id)", "source": "\(job.displayURI)", "kind": "\(error.kind.rawValue)", "error": "\(error.message)"])
        let target = job.target
        guard error.kind != .cancelled, error.kind != .conflict, StagingDirectory.exists(target.stagingDirectory) else { return }
        for file in files where !file.isResumable { try? file.discard() }
        if files.allSatisfy({ $0.doneBytes == 0 }) {
            StagingDirectory.remove(target.stagingDirectory)
            return
        }
        let marker = ArtifactFailure(kind: error.kind.rawValue, error: error.message, failed_at: Date().ISO8601Format())
        if let bytes = try? JSONCoding.encode(marker) { try? StagingDirectory.writeAtomically(bytes, to: target.failureMarkerPath) }
    }

    private func publish(_ prepared: Prepared) throws(RuntimeError) {
        let files = prepared.files
        let settings = job.settings
        let plan = prepared.plan
        job.update { $0.state = .downloading }
        var hashed = try transfer(files, access: plan.access, settings: settings)
        let damaged = try verify(files, hashed: hashed).map(\.file)
        if !damaged.isEmpty {
            logger.warning(
                "re-fetching files that failed verification",
                metadata: ["id": "\(job.id)", "files": "\(damaged.map(\.remote.relativePath).joined(separator: ","))"])
            for file in damaged { try file.discard() }
            hashed = try transfer(damaged, access: plan.access, settings: settings)
            if let still = try verify(damaged, hashed: hashed).first {
                throw RuntimeError(.integrity, "\(still.problem) (after fetching it twice)")
            }
        }

        for file in files { file.closeDescriptor() }
        let manifest = ArtifactManifest(
            source: job.displayURI, kind: job.source.kind, revision: plan.revision,
            files: files.map { file in
                let sha256: String? = if case .sha256(let hex) = file.remote.digest { hex } else { nil }
                return .init(path: file.remote.relativePath, size: file.doneBytes, sha256: sha256, etag: file.remote.etag)
            },
            completed_at: Date().ISO8601Format())
        try ArtifactStore.publish(job.target, files: files, manifest: manifest, sync: settings.syncBeforePublish)
    }

    /// Fetches what is missing of `files` while a `DigestWorker` hashes what is written; returns
    /// its digests, one per file.
    private func transfer(_ files: [StagedFile], access: TransferAccess, settings: DownloadSettings) throws(RuntimeError) -> [RunningDigest?] {
        var lastTick = ContinuousClock.now - .seconds(1)
        let engine = TransferEngine(
            access: access, settings: settings, isCancelled: { [job] in job.isCancelled },
            onTick: { [job] in
                let now = ContinuousClock.now
                guard now - lastTick > .milliseconds(200) else { return }
                lastTick = now
                job.advanced(bytes: files.reduce(0) { $0 + $1.doneBytes }, files: files.count { $0.isTransferred })
            },
            log: { [logger, job] message in logger.warning("\(message)", metadata: ["id": "\(job.id)"]) })
        let hashing = DigestWorker(files, threads: hashers)
        hashing.start()
        defer {
            _ = hashing.finish()
            job.advanced(bytes: files.reduce(0) { $0 + $1.doneBytes }, files: files.count { $0.isTransferred })
        }
        try engine.run(files)
        return hashing.finish()
    }

    /// The files whose size or digest is wrong, with what is wrong. Good ones are marked so a
    /// second round skips them. `hashed` is what the `DigestWorker` hashed of each file during
    /// the transfer; only the rest is read.
    private func verify(_ files: [StagedFile], hashed: [RunningDigest?]) throws(RuntimeError) -> [(file: StagedFile, problem: String)] {
        job.update { $0.state = .verifying }
        let unverified = zip(files, hashed).filter { !$0.0.verified }
        let pending = unverified.map(\.0)
        let checks = unverified.map { file, running in
            (file.dataPath, file.remote.size, file.remote.digest, file.remote.relativePath, running)
        }
        // Digests are CPU work: the files are checked side by side, as many at once as cores.
        let results = Mutex([Result<String?, RuntimeError>?](repeating: nil, count: pending.count))
        DispatchQueue.concurrentPerform(iterations: checks.count) { [job] index in
            let (path, size, digest, name, running) = checks[index]
            let result: Result<String?, RuntimeError> =
                job.isCancelled
                ? .failure(RuntimeError(.cancelled, "the download was cancelled"))
                : Result { () throws(RuntimeError) in try FileDigest.mismatch(path: path, size: size, expected: digest, name: name, running: running) }
            results.withLock { $0[index] = result }
        }
        var damaged: [(file: StagedFile, problem: String)] = []
        for (file, result) in zip(pending, results.withLock { $0 }) {
            switch result {
            case .failure(let error): throw error
            case .success(let problem?):
                logger.warning("verification failed", metadata: ["id": "\(job.id)", "problem": "\(problem)"])
                damaged.append((file, problem))
            case .success(nil): file.markVerified()
            case nil: throw RuntimeError(.internalError, "a file was not verified")
            }
        }
        job.update { $0.state = .downloading }
        return damaged
    }
}

import FoundationEssentials
import Logging

/// Runs one job from listing to publishing, on the calling (download) thread:
/// lock, plan, stage (resuming what is there), transfer, verify, publish.
struct ArtifactDownloader {
    let job: DownloadJob
    let http: CurlHTTPClient
    let logger: Logger

    func run() -> Result<Void, RuntimeError> {
        let started = ContinuousClock.now
        do throws(RuntimeError) {
            try download()
            let snapshot = job.snapshot
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            logger.info(
                "download finished",
                metadata: [
                    "id": "\(job.id)", "source": "\(job.displayURI)", "path": "\(job.target.path)", "files": "\(snapshot.files_total)",
                    "bytes": "\(snapshot.bytes_total)", "milliseconds": "\(Int(seconds * 1000))",
                ])
            return .success(())
        } catch {
            logger.error(
                "download failed",
                metadata: ["id": "\(job.id)", "source": "\(job.displayURI)", "kind": "\(error.kind.rawValue)", "error": "\(error.message)"])
            return .failure(error)
        }
    }

    private func download() throws(RuntimeError) {
        let target = job.target
        let settings = job.settings
        try StagingDirectory.createDirectory(target.localDir)
        guard let lock = try ArtifactLock(target) else {
            throw RuntimeError(.conflict, "another process is downloading \(target.path)")
        }
        defer { withExtendedLifetime(lock) {} }

        if !settings.forceDownload, let manifest = ArtifactManifest.load(target) {
            guard manifest.source == job.displayURI else {
                throw RuntimeError(
                    .conflict,
                    "\(target.path) already holds \(manifest.source); choose another model_name or set force_download")
            }
            let total = manifest.files.reduce(0) { $0 + $1.size }
            job.planned(files: manifest.files.count, bytes: total, alreadyDone: total)
            return
        }

        job.update { $0.state = .listing }
        let isCancelled: @Sendable () -> Bool = { [job] in job.isCancelled }
        let plan = try ArtifactPlanner(settings: settings, http: http).plan(job.source, isCancelled: isCancelled)
        if settings.forceDownload { StagingDirectory.remove(target.stagingDirectory) }
        let files = try plan.files.map { remote throws(RuntimeError) in
            try StagedFile(remote: remote, stagingRoot: target.stagingDirectory, settings: settings)
        }
        let alreadyDone = files.reduce(0) { $0 + $1.doneBytes }
        job.planned(files: files.count, bytes: plan.totalBytes, alreadyDone: alreadyDone)
        if alreadyDone > 0 {
            logger.info("resuming download", metadata: ["id": "\(job.id)", "bytes_on_disk": "\(alreadyDone)", "path": "\(target.path)"])
        }
        let needed = plan.totalBytes - alreadyDone
        if let free = StagingDirectory.freeBytes(at: target.localDir), needed > free {
            throw RuntimeError(.storage, "no space left for \(target.path): needs \(needed) more bytes, \(free) free")
        }

        try transfer(files, access: plan.access, settings: settings)
        let damaged = try verify(files)
        if !damaged.isEmpty {
            logger.warning(
                "re-fetching files that failed verification",
                metadata: ["id": "\(job.id)", "files": "\(damaged.map(\.remote.relativePath).joined(separator: ","))"])
            for file in damaged { try file.discard() }
            try transfer(damaged, access: plan.access, settings: settings)
            if let still = try verify(damaged).first {
                throw RuntimeError(.integrity, try problem(of: still) ?? "\(still.remote.relativePath) failed verification twice")
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
        try ArtifactStore.publish(target, files: files, manifest: manifest, sync: settings.syncBeforePublish)
    }

    private func transfer(_ files: [StagedFile], access: TransferAccess, settings: DownloadSettings) throws(RuntimeError) {
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
        defer { job.advanced(bytes: files.reduce(0) { $0 + $1.doneBytes }, files: files.count { $0.isTransferred }) }
        try engine.run(files)
    }

    /// The files whose size or digest is wrong. Good ones are marked so a second round skips them.
    private func verify(_ files: [StagedFile]) throws(RuntimeError) -> [StagedFile] {
        job.update { $0.state = .verifying }
        var damaged: [StagedFile] = []
        for file in files where !file.verified {
            if job.isCancelled { throw RuntimeError(.cancelled, "the download was cancelled") }
            if let problem = try problem(of: file) {
                logger.warning("verification failed", metadata: ["id": "\(job.id)", "problem": "\(problem)"])
                damaged.append(file)
            } else {
                file.markVerified()
            }
        }
        job.update { $0.state = .downloading }
        return damaged
    }

    private func problem(of file: StagedFile) throws(RuntimeError) -> String? {
        try FileDigest.mismatch(path: file.dataPath, size: file.remote.size, expected: file.remote.digest, name: file.remote.relativePath)
    }
}

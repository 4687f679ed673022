import FoundationEssentials
import Logging
import NIOPosix
import Synchronization

/// Starts downloads, shares one job among every request for the same target, and keeps
/// recent jobs for the progress API. Each job is planned (listed, staged, its space reserved)
/// on a planning thread as soon as it is asked for, then transferred on a transfer thread (at
/// most `maximumConcurrentJobs` at once; planned jobs wait as `queued`). Thread-safe.
public final class DownloadManager: Sendable {
    public let settings: DownloadSettings
    public let roots: ArtifactRoots
    private let http: CurlHTTPClient
    /// Shared by every download, so a session or token fetched for one serves the next.
    private let credentials: CredentialSources
    let logger: Logger
    private let planners: ElasticThreadPool
    private let pool: ElasticThreadPool
    private let hashers: ElasticThreadPool
    private let jobs = Mutex<[DownloadJob]>([])
    /// Held while a job checks free space against what planned jobs still need, so two jobs
    /// cannot both pass a check that only one of them fits.
    private let admission = Mutex<[DownloadJob: UInt64]>([:])
    /// Finished jobs kept for `GET /v1/downloads`.
    private static let keptFinishedJobs = 100

    public init(
        settings: DownloadSettings, roots: ArtifactRoots, http: CurlHTTPClient = CurlHTTPClient(),
        logger: Logger = Logger(label: "engine-runtime.downloads"), maximumConcurrentJobs: Int = 4
    ) {
        self.settings = settings
        self.roots = roots
        self.http = http
        self.logger = logger
        credentials = CredentialSources(http: http, logger: logger)
        // Threads only while downloads run: most sidecars download a model once, at start.
        planners = ElasticThreadPool(maximum: maximumConcurrentJobs, name: "ert-planner")
        pool = ElasticThreadPool(maximum: maximumConcurrentJobs, name: "ert-download")
        // One per running transfer (a transfer runs on a `pool` thread), so none waits for one.
        hashers = ElasticThreadPool(maximum: maximumConcurrentJobs, name: "ert-digest")
    }

    /// Stops every download that has not finished, keeping the bytes already on disk for a
    /// resume (a model takes minutes; the pod's grace period is seconds), then ends the
    /// download threads, waiting at most `wait`. Queued jobs fail as cancelled. Called by the
    /// runtime's service group on shutdown.
    public func shutdown(wait: Duration = .seconds(3)) async {
        let unfinished = allJobs.filter { !$0.snapshot.state.isFinished }
        for job in unfinished {
            job.cancel()
            let snapshot = job.snapshot
            logger.notice(
                "shutdown: download stopped; the bytes on disk are kept for a resume",
                metadata: [
                    "id": "\(job.id)", "path": "\(job.target.path)", "state": "\(snapshot.state.rawValue)",
                    "bytes_done": "\(snapshot.bytes_done)", "bytes_total": "\(snapshot.bytes_total)",
                ])
        }
        let ended = await withTimeout(wait) { [planners, pool, hashers] in
            await planners.shutdownGracefully()
            await pool.shutdownGracefully()
            await hashers.shutdownGracefully()
        }
        if !ended {
            logger.warning("shutdown: a download thread did not stop in time; exiting without it")
        }
    }

    /// A request for one artifact.
    public struct Request: Sendable {
        public var uri: String
        public var localDir: String?
        public var modelName: String?
        public var settings: DownloadSettings?
        public init(uri: String, localDir: String? = nil, modelName: String? = nil, settings: DownloadSettings? = nil) {
            self.uri = uri
            self.localDir = localDir
            self.modelName = modelName
            self.settings = settings
        }
    }

    /// Checks `request` and returns its target without starting anything.
    public func target(for request: Request, defaultDirectory: String? = nil) throws(RuntimeError) -> (ArtifactSource, ArtifactTarget) {
        let source = try ArtifactSource.parse(request.uri)
        let directory = try roots.check(request.localDir ?? defaultDirectory ?? roots.models)
        let target = try ArtifactTarget(localDir: directory, modelName: request.modelName ?? source.defaultName)
        // A symbolic link inside the root (`models/org -> /elsewhere`) must not carry the
        // artifact or the runtime's working files out of the roots.
        for path in [target.path, target.workDirectory] where (try? roots.check(path)) == nil {
            throw RuntimeError(
                .permissionDenied, "\(path) leads outside the download roots through a symbolic link; refusing to write there")
        }
        return (source, target)
    }

    /// The running job for the request's target, or a new one. A running job for the same
    /// target from another source is a conflict.
    public func start(_ request: Request, defaultDirectory: String? = nil) throws(RuntimeError) -> DownloadJob {
        let (source, target) = try self.target(for: request, defaultDirectory: defaultDirectory)
        return try start(request, source: source, target: target)
    }

    /// `start` for a request whose source and target are already checked.
    func start(_ request: Request, source: ArtifactSource, target: ArtifactTarget) throws(RuntimeError) -> DownloadJob {
        if ArtifactStore.holdsForeignData(target) { throw ArtifactStore.foreignDataError(target) }
        let (job, isNew) = try jobs.withLock { jobs throws(RuntimeError) -> (DownloadJob, Bool) in
            if let running = jobs.first(where: { $0.target == target && !$0.snapshot.state.isFinished }) {
                guard running.source.isSameArtifact(as: source) else {
                    throw RuntimeError(.conflict, "\(target.path) is being downloaded from \(running.displayURI) (job \(running.id))")
                }
                return (running, false)
            }
            let job = DownloadJob(source: source, uri: request.uri, target: target, settings: request.settings ?? settings)
            jobs.append(job)
            let finished = jobs.filter { $0.snapshot.state.isFinished }
            if finished.count > Self.keptFinishedJobs {
                let drop = Set(finished.prefix(finished.count - Self.keptFinishedJobs).map(\.id))
                jobs.removeAll { drop.contains($0.id) }
            }
            return (job, true)
        }
        if isNew {
            logger.info("download queued", metadata: ["id": "\(job.id)", "source": "\(job.displayURI)", "path": "\(target.path)"])
            planners.submit { [self] state in
                guard state == .active else { return job.finish(.failure(Self.shuttingDown)) }
                let downloader = ArtifactDownloader(job: job, http: http, credentials: credentials, hashers: hashers, logger: logger)
                let prepared = downloader.prepare { (needed, files, bytes, alreadyDone) throws(RuntimeError) in
                    try admit(job, needed: needed) { job.planned(files: files, bytes: bytes, alreadyDone: alreadyDone) }
                }
                switch prepared {
                case .failure(let error):
                    release(job)
                    job.finish(.failure(error))
                case .success(nil):
                    job.finish(.success(()))
                case .success(let prepared?):
                    pool.submit { [self] state in
                        defer { release(job) }
                        guard state == .active else { return job.finish(.failure(Self.shuttingDown)) }
                        job.finish(downloader.complete(prepared))
                    }
                }
            }
        } else {
            logger.info("joined running download", metadata: ["id": "\(job.id)", "path": "\(target.path)"])
        }
        return job
    }

    private static var shuttingDown: RuntimeError { RuntimeError(.cancelled, "the runtime is shutting down") }

    /// Reserves `needed` bytes on the job's volume, counting what the other planned jobs on
    /// that volume still have to write, then runs `planned` (which makes this job's own need
    /// visible) before the next job checks.
    private func admit(_ job: DownloadJob, needed: Int64, planned: () -> Void) throws(RuntimeError) {
        let directory = job.target.localDir
        let volume = StagingDirectory.volume(at: directory) ?? 0
        try admission.withLock { (admitted: inout [DownloadJob: UInt64]) throws(RuntimeError) in
            let promised = admitted.filter { $0.key !== job && $0.value == volume }.keys.reduce(Int64(0)) { $0 + $1.reservedBytes }
            if let free = StagingDirectory.freeBytes(at: directory), needed > free - promised {
                throw RuntimeError(
                    .storage,
                    "no space left for \(job.target.path): needs \(needed) more bytes, \(free) free of which \(promised) are promised to other downloads")
            }
            admitted[job] = volume
            planned()
        }
    }

    private func release(_ job: DownloadJob) { _ = admission.withLock { $0.removeValue(forKey: job) } }

    public func job(_ id: String) -> DownloadJob? { jobs.withLock { $0.first { $0.id == id } } }

    public var allJobs: [DownloadJob] { jobs.withLock { $0 } }

    /// Forgets a finished job.
    public func forget(_ id: String) { jobs.withLock { $0.removeAll { $0.id == id && $0.snapshot.state.isFinished } } }

    /// The AIBrix status of `target`, counting this process's running jobs.
    public func status(of target: ArtifactTarget) -> ModelDownloadStatus {
        if jobs.withLock({ $0.contains { $0.target == target && !$0.snapshot.state.isFinished } }) { return .downloading }
        return ArtifactStore.status(of: target)
    }

    /// Artifacts under `localDir` (checked against the roots) with their status.
    public func list(localDir: String) throws(RuntimeError) -> [(target: ArtifactTarget, status: ModelDownloadStatus, kind: String?)] {
        let directory = try roots.check(localDir)
        let jobs = allJobs
        var targets = Set(ArtifactStore.artifacts(in: directory))
        for job in jobs where job.target.localDir == directory { targets.insert(job.target) }
        // A finished job whose target holds nothing (it failed before any byte was kept, or
        // its staged data was removed) is not an artifact.
        return targets.sorted { $0.modelName < $1.modelName }.compactMap { target in
            let status = status(of: target)
            guard status != .notExist else { return nil }
            let kind = ArtifactManifest.load(target)?.kind ?? jobs.last { $0.target == target }?.source.kind
            return (target, status, kind)
        }
    }

    /// Removes the staged data of a target nothing is downloading (a failed or cancelled
    /// download's partial files). Returns whether there was any.
    @discardableResult
    public func discardStaged(_ target: ArtifactTarget) throws(RuntimeError) -> Bool {
        if status(of: target) == .downloading {
            throw RuntimeError(.conflict, "\(target.path) is being downloaded; cancel the download first (DELETE /v1/downloads/{id})")
        }
        guard StagingDirectory.exists(target.stagingDirectory) else { return false }
        StagingDirectory.remove(target.stagingDirectory)
        logger.info("staged download data removed", metadata: ["path": "\(target.path)"])
        return true
    }

    /// Removes staged data nothing has touched for `age` under every root: failed and
    /// abandoned downloads must not fill the volume for ever. Returns how many went.
    @discardableResult
    public func sweepStaging(olderThan age: Duration) -> Int {
        let cutoff = Int(Date().timeIntervalSince1970) - Int(age.components.seconds)
        var removed = 0
        for root in roots.all {
            for target in ArtifactStore.artifacts(in: root) {
                guard StagingDirectory.exists(target.stagingDirectory), status(of: target) != .downloading,
                    let modified = StagingDirectory.newestChange(in: target.stagingDirectory), modified < cutoff
                else { continue }
                StagingDirectory.remove(target.stagingDirectory)
                logger.notice("old staged download data removed", metadata: ["path": "\(target.path)", "age_limit_seconds": "\(age.components.seconds)"])
                removed += 1
            }
        }
        return removed
    }

    /// `sweepStaging` on a planning thread (it walks directories).
    func sweepInBackground(olderThan age: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            planners.submit { [self] _ in
                sweepStaging(olderThan: age)
                continuation.resume()
            }
        }
    }

    /// Deletes a downloaded artifact (one with a manifest, so nothing the runtime did not
    /// write), unless a download for it is running. Returns whether something was removed.
    @discardableResult
    public func remove(_ target: ArtifactTarget) async -> Bool {
        // Most unloads have no downloaded copy, and one access() tells, on the caller's thread.
        guard StagingDirectory.exists(target.path) else { return false }
        return await offEventLoop {
            guard status(of: target) == .downloaded else { return false }
            StagingDirectory.remove(target.path)
            logger.info("artifact removed", metadata: ["path": "\(target.path)"])
            return true
        }
    }
}

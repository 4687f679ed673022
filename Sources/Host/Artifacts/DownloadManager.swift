import Logging
import NIOPosix
import Synchronization

/// Starts downloads, shares one job among every request for the same target, and keeps
/// recent jobs for the progress API. Downloads run on their own threads (at most
/// `maximumConcurrentJobs` at once; the rest wait as `queued`). Thread-safe.
public final class DownloadManager: Sendable {
    public let settings: DownloadSettings
    public let roots: ArtifactRoots
    private let http: CurlHTTPClient
    let logger: Logger
    private let pool: NIOThreadPool
    private let jobs = Mutex<[DownloadJob]>([])
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
        pool = NIOThreadPool(numberOfThreads: maximumConcurrentJobs)
        pool.start()
    }

    /// Lets running downloads finish, then ends the download threads; queued jobs fail as
    /// cancelled. Called by the runtime's service group on shutdown, or by the CLI.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
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
            pool.submit { [http, logger] state in
                guard state == .active else {
                    job.finish(.failure(RuntimeError(.cancelled, "the runtime is shutting down")))
                    return
                }
                job.finish(ArtifactDownloader(job: job, http: http, logger: logger).run())
            }
        } else {
            logger.info("joined running download", metadata: ["id": "\(job.id)", "path": "\(target.path)"])
        }
        return job
    }

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
        return targets.sorted { $0.modelName < $1.modelName }.map { target in
            let kind = ArtifactManifest.load(target)?.kind ?? jobs.last { $0.target == target }?.source.kind
            return (target, status(of: target), kind)
        }
    }

    /// Deletes a downloaded artifact (one with a manifest, so nothing the runtime did not
    /// write), unless a download for it is running. Returns whether something was removed.
    @discardableResult
    public func remove(_ target: ArtifactTarget) -> Bool {
        guard status(of: target) == .downloaded else { return false }
        StagingDirectory.remove(target.path)
        logger.info("artifact removed", metadata: ["path": "\(target.path)"])
        return true
    }
}

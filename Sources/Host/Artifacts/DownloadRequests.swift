/// The download API's policy, on top of the job table: what a caller may download from where,
/// when nothing needs fetching, and how long a request waits before it answers.
extension DownloadManager {
    /// What a download request came to.
    public struct Outcome: Sendable {
        public var target: ArtifactTarget
        /// The source's kind (`huggingface`, `s3`, ...).
        public var sourceKind: String
        public var status: ModelDownloadStatus
        /// The job, when one runs or ran for this request.
        public var jobID: String?
    }

    /// Checks and starts a download for the API. A local source must be inside the download
    /// roots (a caller must not pull arbitrary files of the pod into view); a target already
    /// downloaded is answered at once unless the settings force a new download; otherwise the
    /// job starts and the answer waits until its plan is known, so a missing repository or
    /// bucket is reported now (AIBrix answered 404 at once) while the transfer goes on in the
    /// background.
    public func request(
        _ uri: String, localDir: String?, modelName: String?, extraConfig: [String: JSONValue]
    ) async throws(RuntimeError) -> Outcome {
        let source = try ArtifactSource.parse(uri)
        if case .local(let path) = source, (try? roots.check(path)) == nil {
            throw RuntimeError(.permissionDenied, "a local model_uri must be inside the download roots (\(roots.all.joined(separator: ", ")))")
        }
        let settings = try self.settings.applying(extraConfig: extraConfig, to: source)
        let request = Request(uri: uri, localDir: localDir, modelName: modelName, settings: settings)
        let (_, target) = try self.target(for: request)
        let status = status(of: target)
        // Never answer (or replace) one source's published artifact for another source: the
        // caller would load other weights than the ones it asked for.
        if status == .downloaded, let manifest = ArtifactManifest.load(target),
            let published = try? ArtifactSource.parse(manifest.source), !published.isSameArtifact(as: source)
        {
            throw RuntimeError(
                .conflict,
                "\(target.path) already holds \(manifest.source); download \(CurlHTTPClient.redacted(uri)) under another model_name or local_dir, or remove it first")
        }
        if !settings.forceDownload, status == .downloaded {
            return Outcome(target: target, sourceKind: source.kind, status: .downloaded)
        }
        let job = try start(request, source: source, target: target)
        _ = await withTimeout(Self.planWait) { await job.waitUntilPlanned() }
        let snapshot = job.snapshot
        if snapshot.state == .failed || snapshot.state == .cancelled {
            throw RuntimeError(snapshot.error_kind ?? .upstream, snapshot.error ?? "the download failed")
        }
        return Outcome(
            target: target, sourceKind: source.kind, status: snapshot.state == .completed ? .downloaded : .downloading, jobID: job.id)
    }

    /// How long a download request waits for the job's plan before it answers `downloading`.
    static let planWait = Duration.seconds(10)

    /// `DELETE /v1/downloads/{id}`: a finished job is forgotten; a running one is cancelled
    /// and answered with its settled state (the transfer loop notices within 100 ms; the
    /// answer waits at most five seconds).
    public func cancel(_ id: String) async throws(RuntimeError) -> DownloadJob.Snapshot {
        guard let job = job(id) else { throw RuntimeError.notFound("no download \"\(id.prefix(64))\"") }
        if job.snapshot.state.isFinished {
            forget(job.id)
            return job.snapshot
        }
        job.cancel()
        logger.info("download cancelled", metadata: ["id": "\(job.id)"])
        _ = await withTimeout(.seconds(5)) { _ = await job.wait() }
        return job.snapshot
    }

    /// The job `id`, or a not-found error.
    public func requireJob(_ id: String) throws(RuntimeError) -> DownloadJob {
        guard let job = job(id) else { throw RuntimeError.notFound("no download \"\(id.prefix(64))\"") }
        return job
    }
}

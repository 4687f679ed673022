import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Model downloads: AIBrix's `/v1/model/download` and `/v1/model/list`, and the download
/// jobs API (`/v1/downloads`) for progress and cancellation.
struct ArtifactRoutes {
    let downloads: DownloadManager
    let body: RequestBody

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/model/download") { request, context in try await download(request, context) }
        router.get("/v1/model/list") { request, _ in try await list(request) }
        router.get("/v1/downloads") { _, _ in
            struct Answer: Encodable {
                var object = "list"
                var data: [DownloadJob.Snapshot]
            }
            return try JSONResponse.make(Answer(data: downloads.allJobs.map(\.snapshot)))
        }
        router.get("/v1/downloads/{id}") { _, context in
            try JSONResponse.make(try job(context).snapshot)
        }
        router.delete("/v1/downloads/{id}") { _, context in
            let job = try job(context)
            if job.snapshot.state == .completed || job.snapshot.state == .failed || job.snapshot.state == .cancelled {
                downloads.forget(job.id)
                return try JSONResponse.make(job.snapshot)
            }
            job.cancel()
            context.logger.info("download cancelled", metadata: ["id": "\(job.id)"])
            // The transfer loop notices within 100 ms; answer with the settled state when it does.
            _ = await withTimeout(.seconds(5)) { _ = await job.wait() }
            return try JSONResponse.make(job.snapshot)
        }
    }

    private func job(_ context: BasicRequestContext) throws -> DownloadJob {
        let id = try context.parameters.require("id")
        guard let job = downloads.job(id) else { throw APIError.notFound("no download \"\(id.prefix(64))\"") }
        return job
    }

    /// AIBrix's `ModelStatusCard`, plus the job id when a download runs.
    struct ModelStatusCard: Encodable {
        var model_name: String
        var model_root_path: String
        var source: String
        var model_status: ModelDownloadStatus
        var download_id: String?
    }

    func download(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        struct Download: Decodable {
            var model_uri: String
            var local_dir: String?
            var model_name: String?
            var download_extra_config: [String: JSONValue]?
        }
        let download = try await body.decode(
            Download.self, request, allowed: ["model_uri", "local_dir", "model_name", "download_extra_config"])
        do {
            let source = try ArtifactSource.parse(download.model_uri)
            // Over the API, a local source may only be copied from inside the download roots:
            // the caller must not be able to pull arbitrary files of the pod into view.
            if case .local(let path) = source, (try? downloads.roots.check(path)) == nil {
                throw ArtifactError(.permissionDenied, "a local model_uri must be inside the download roots (\(downloads.roots.all.joined(separator: ", ")))")
            }
            let settings = try downloads.settings.applying(extraConfig: download.download_extra_config ?? [:], to: source)
            let request = DownloadManager.Request(
                uri: download.model_uri, localDir: download.local_dir, modelName: download.model_name, settings: settings)
            let (_, target) = try downloads.target(for: request)
            if !settings.forceDownload, downloads.status(of: target) == .downloaded {
                return try JSONResponse.make(
                    ModelStatusCard(model_name: target.modelName, model_root_path: target.path, source: source.kind, model_status: .downloaded))
            }
            let job = try downloads.start(request)
            // A missing repository or bucket is reported now (AIBrix answered 404 at once);
            // the transfer itself goes on in the background.
            _ = await withTimeout(.seconds(10)) { await job.waitUntilPlanned() }
            let snapshot = job.snapshot
            if snapshot.state == .failed || snapshot.state == .cancelled {
                throw ArtifactError(snapshot.error_kind ?? .upstream, snapshot.error ?? "the download failed")
            }
            return try JSONResponse.make(
                ModelStatusCard(
                    model_name: target.modelName, model_root_path: target.path, source: source.kind,
                    model_status: snapshot.state == .completed ? .downloaded : .downloading, download_id: job.id))
        } catch let error as ArtifactError {
            throw APIError(error)
        }
    }

    /// `local_dir` comes from AIBrix's JSON body on a GET, or from the query string.
    func list(_ request: Request) async throws -> Response {
        struct ListRequest: Decodable { var local_dir: String? }
        let fromBody = try await body.decode(ListRequest.self, request, allowed: ["local_dir"]).local_dir
        let localDir = fromBody ?? request.uri.queryParameters.get("local_dir") ?? downloads.roots.models
        struct Answer: Encodable {
            var object = "list"
            var data: [ModelStatusCard]
        }
        do {
            let cards = try downloads.list(localDir: localDir).map { entry in
                ModelStatusCard(
                    model_name: entry.target.modelName, model_root_path: entry.target.path, source: entry.kind ?? "unknown",
                    model_status: entry.status)
            }
            return try JSONResponse.make(Answer(data: cards))
        } catch let error as ArtifactError {
            throw APIError(error)
        }
    }
}

extension APIError {
    init(_ error: ArtifactError) {
        let (status, type): (HTTPResponse.Status, String) =
            switch error.kind {
            case .invalidArgument: (.badRequest, "invalid_argument")
            case .notFound: (.notFound, "not_found")
            case .permissionDenied: (.forbidden, "permission_denied")
            case .conflict: (.conflict, "conflict")
            case .integrity: (.badGateway, "integrity_error")
            case .storage: (HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "storage_error")
            case .upstream: (.badGateway, "upstream_error")
            case .timeout: (.gatewayTimeout, "timeout")
            case .cancelled: (.conflict, "cancelled")
            }
        self.init(status, type: type, message: error.message)
    }
}

/// Runs `body`, giving up waiting after `timeout`; `body` itself goes on (a task group would
/// wait for it, since waiting on a job does not end on cancellation). Returns whether it
/// finished in time.
func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    final class FirstAnswer: Sendable {
        let continuation: Mutex<CheckedContinuation<Bool, Never>?>
        init(_ continuation: CheckedContinuation<Bool, Never>) { self.continuation = Mutex(continuation) }
        func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
    return await withCheckedContinuation { continuation in
        let answer = FirstAnswer(continuation)
        let timer = Task {
            try? await Task.sleep(for: timeout)
            answer.resume(false)
        }
        Task {
            await body()
            timer.cancel()
            answer.resume(true)
        }
    }
}

import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Model downloads: AIBrix's `/v1/model/download` and `/v1/model/list`, and the download
/// jobs API (`/v1/downloads`) for progress and cancellation.
struct ArtifactRoutes {
    let downloads: DownloadManager
    let body: RequestBody

    func register(on parent: Router<BasicRequestContext>) {
        // Planning, listing and removing wait on the disk: not on the event loop.
        let router = parent.group().add(middleware: OffEventLoopMiddleware())
        router.post("/v1/model/download") { request, _ in try await download(request) }
        router.get("/v1/model/list") { request, _ in try await list(request) }
        router.get("/v1/downloads") { _, _ in
            struct Answer: Encodable {
                var object = "list"
                var data: [DownloadJob.Snapshot]
            }
            return try JSONResponse.make(Answer(data: downloads.allJobs.map(\.snapshot)))
        }
        router.get("/v1/downloads/{id}") { _, context in
            try JSONResponse.make(try downloads.requireJob(try context.parameters.require("id")).snapshot)
        }
        // `?discard=true` also removes what the job staged, so a failed or cancelled download
        // leaves nothing on the volume.
        router.delete("/v1/downloads/{id}") { request, context in
            let id = try context.parameters.require("id")
            let discard = request.uri.queryParameters.get("discard") == "true"
            let target = discard ? try downloads.requireJob(id).target : nil
            let snapshot = try await downloads.cancel(id)
            if let target { try downloads.discardStaged(target) }
            return try JSONResponse.make(snapshot)
        }
        router.delete("/v1/model/staging") { request, _ in try discardStaged(request) }
    }

    /// AIBrix's `ModelStatusCard`, plus the job id when a download runs.
    struct ModelStatusCard: Encodable {
        var model_name: String
        var model_root_path: String
        var source: String
        var model_status: ModelDownloadStatus
        var download_id: String?
    }

    func download(_ request: Request) async throws -> Response {
        struct Download: Decodable {
            var model_uri: String
            var local_dir: String?
            var model_name: String?
            var download_extra_config: [String: JSONValue]?
        }
        let download = try await body.decode(
            Download.self, request, allowed: ["model_uri", "local_dir", "model_name", "download_extra_config"])
        let outcome = try await downloads.request(
            download.model_uri, localDir: download.local_dir, modelName: download.model_name,
            extraConfig: download.download_extra_config ?? [:])
        return try JSONResponse.make(
            ModelStatusCard(
                model_name: outcome.target.modelName, model_root_path: outcome.target.path, source: outcome.sourceKind,
                model_status: outcome.status, download_id: outcome.jobID))
    }

    /// `DELETE /v1/model/staging?model_name=&local_dir=`: the staged data of a download nothing
    /// runs (after a restart there is no job to name).
    func discardStaged(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        guard let name = query.get("model_name") else { throw RuntimeError.invalid("model_name is required (a query parameter)") }
        let localDir = try downloads.roots.check(query.get("local_dir") ?? downloads.roots.models)
        let target = try ArtifactTarget(localDir: localDir, modelName: name)
        guard try downloads.discardStaged(target) else {
            throw RuntimeError.notFound("nothing is staged for \(target.path)")
        }
        struct Answer: Encodable {
            var object = "staging"
            var model_root_path: String
            var removed = true
        }
        return try JSONResponse.make(Answer(model_root_path: target.path))
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
        let cards = try downloads.list(localDir: localDir).map { entry in
            ModelStatusCard(
                model_name: entry.target.modelName, model_root_path: entry.target.path, source: entry.kind ?? "unknown",
                model_status: entry.status)
        }
        return try JSONResponse.make(Answer(data: cards))
    }
}

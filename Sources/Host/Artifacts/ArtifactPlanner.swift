import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Turns an artifact source into the list of files to fetch, asking the source for names,
/// sizes and digests. Blocking: runs on the download's worker thread.
struct ArtifactPlanner: Sendable {
    let settings: DownloadSettings
    let http: CurlHTTPClient
    let credentials: CredentialSources

    func plan(_ source: ArtifactSource, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> DownloadPlan {
        switch source {
        case .huggingFace: try settings.checkHost(of: settings.huggingFace.endpoint)
        case .http(let url): try settings.checkHost(of: url)
        case .objectStore, .local: break  // an object store's host is checked once its client is made
        }
        var plan: DownloadPlan
        switch source {
        case .huggingFace(let repository, let revision):
            plan = try huggingFace(repository, revision: revision ?? settings.huggingFace.revision ?? "main", isCancelled: isCancelled)
        case .objectStore(let location): plan = try objectStore(location, isCancelled: isCancelled)
        case .http(let url): plan = try http(url, isCancelled: isCancelled)
        case .local(let path): plan = try local(path)
        }
        plan.access.allowedHosts = settings.hostAllowList
        for file in plan.files { try SafeRelativePath.check(file.relativePath, source: "\(source.kind) file") }
        plan.files = plan.files.filter { settings.keeps($0.relativePath) }
        guard !plan.files.isEmpty else {
            let filter = settings.allowFileSuffixes.isEmpty ? "" : " (after the suffix filter \(settings.allowFileSuffixes.joined(separator: ",")))"
            throw RuntimeError(.notFound, "the artifact has no files\(filter)")
        }
        return plan
    }

    // MARK: Hugging Face

    private struct RepositoryInfo: Decodable {
        struct Sibling: Decodable {
            struct LFS: Decodable {
                var sha256: String?
                var size: Int64?
            }
            var rfilename: String
            var size: Int64?
            var blobId: String?
            var lfs: LFS?
        }
        var sha: String?
        var siblings: [Sibling]?
    }

    private func huggingFace(_ repository: String, revision: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError)
        -> DownloadPlan
    {
        let endpoint = settings.huggingFace.endpoint
        var access = TransferAccess(followRedirects: true)
        if let token = settings.huggingFace.token { access.headers.append("Authorization: Bearer \(token)") }
        let encodedRevision = CurlURL.percentEncoded(revision, keepSlash: false)
        let apiURL = "\(endpoint)/api/models/\(repository)/revision/\(encodedRevision)?blobs=true"
        let response = try send("GET", apiURL, access: access, what: "Hugging Face repository \(repository)", isCancelled: isCancelled)
        switch response.status {
        case 200: break
        case 401, 403:
            throw RuntimeError(.permissionDenied, "Hugging Face refused access to \(repository) (HTTP \(response.status)); gated or private repositories need HF_TOKEN")
        case 404:
            throw RuntimeError(.notFound, "Hugging Face repository \(repository) at revision \(revision) was not found (private repositories need HF_TOKEN)")
        default:
            throw RuntimeError(.upstream, "Hugging Face answered HTTP \(response.status) for \(repository)")
        }
        guard let info = try? JSONCoding.decode(RepositoryInfo.self, from: response.body), let siblings = info.siblings else {
            throw RuntimeError(.upstream, "Hugging Face's answer for \(repository) is not a repository description")
        }
        // Pin every file to the commit the listing came from, so a push during the download
        // cannot mix two versions.
        let pinned = info.sha ?? revision
        let files = siblings.filter { !$0.rfilename.hasSuffix("/") }.map { sibling in
            let digest: ExpectedDigest? =
                if let sha256 = sibling.lfs?.sha256 { .sha256(sha256.lowercased()) }
                else if let blob = sibling.blobId, blob.utf8.count == 40 { .gitBlobSHA1(blob.lowercased()) }
                else { nil }
            return RemoteFile(
                relativePath: sibling.rfilename,
                url: "\(endpoint)/\(repository)/resolve/\(CurlURL.percentEncoded(pinned, keepSlash: false))/\(CurlURL.percentEncoded(sibling.rfilename, keepSlash: true))",
                size: sibling.lfs?.size ?? sibling.size, digest: digest, etag: sibling.lfs?.sha256 ?? sibling.blobId,
                acceptsRanges: true)
        }
        return DownloadPlan(files: files, access: access, revision: info.sha)
    }

    // MARK: Object stores

    private func objectStore(_ location: ArtifactSource.ObjectStoreLocation, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError)
        -> DownloadPlan
    {
        let client = try ObjectStoreClient(
            flavor: location.flavor, credentials: settings.objectStore(location.flavor), sources: credentials,
            allowedHosts: settings.hostAllowList, http: http)
        try settings.checkHost(of: client.url(bucket: location.bucket, key: ""))
        let uri = "\(location.flavor.rawValue)://\(location.bucket)/\(location.key)"
        func file(_ object: ObjectStoreClient.Object, relativePath: String) -> RemoteFile {
            let etag = object.etag.map { $0.replacing("\"", with: "") }
            // A multipart upload's ETag is "<md5 of part md5s>-<parts>", not the content's MD5.
            let md5 = etag.flatMap { $0.utf8.count == 32 && !$0.contains("-") ? ExpectedDigest.md5($0.lowercased()) : nil }
            return RemoteFile(
                relativePath: relativePath, url: client.url(bucket: location.bucket, key: object.key), size: object.size,
                digest: md5, etag: object.etag, acceptsRanges: true, ifMatch: object.etag)
        }
        // A key without a trailing slash is one object when it exists; otherwise (and for a
        // trailing slash) it is a directory prefix. AIBrix treated "dir" (no slash) as a
        // missing object.
        if !location.key.isEmpty, !location.key.hasSuffix("/"),
            let object = try client.head(bucket: location.bucket, key: location.key, isCancelled: isCancelled)
        {
            let name = String(location.key.split(separator: "/").last ?? "")
            return DownloadPlan(files: [file(object, relativePath: name)], access: client.access)
        }
        let prefix = location.key.isEmpty || location.key.hasSuffix("/") ? location.key : location.key + "/"
        let objects = try client.list(bucket: location.bucket, prefix: prefix, isCancelled: isCancelled)
            .filter { !$0.key.hasSuffix("/") }  // folder placeholder objects
        guard !objects.isEmpty else { throw RuntimeError(.notFound, "\(uri) has no objects") }
        var files: [RemoteFile] = []
        for object in objects {
            let relative = String(object.key.dropFirst(prefix.count))
            try SafeRelativePath.check(relative, source: "object key")
            files.append(file(object, relativePath: relative))
        }
        return DownloadPlan(files: files, access: client.access)
    }

    // MARK: HTTP

    private func http(_ url: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> DownloadPlan {
        let access = TransferAccess(followRedirects: true)
        let name = String(url.split(separator: "?", maxSplits: 1)[0].split(separator: "#")[0].split(separator: "/").last ?? "")
        let fileName = name.isEmpty || name.contains(":") ? "downloaded_file" : CurlURL.percentDecoded(name)
        let head = try send("HEAD", url, access: access, what: url, isCancelled: isCancelled)
        switch head.status {
        case 200:
            let size = head.headers["content-length"].flatMap { Int64($0) }
            let ranges = head.headers["accept-ranges"]?.lowercased().contains("bytes") ?? false
            let etag = head.headers["etag"]
            let strong = etag.flatMap { $0.hasPrefix("W/") ? nil : $0 }
            return DownloadPlan(
                files: [RemoteFile(relativePath: fileName, url: url, size: size, digest: nil, etag: etag, acceptsRanges: ranges && size != nil, ifMatch: strong)],
                access: access)
        case 405, 501:  // no HEAD: fetch it in one piece
            return DownloadPlan(files: [RemoteFile(relativePath: fileName, url: url, size: nil, digest: nil, etag: nil, acceptsRanges: false)], access: access)
        default: throw RuntimeError.httpAnswer(head.status, body: head.body, what: CurlHTTPClient.redacted(url)).error
        }
    }

    // MARK: Local

    private func local(_ path: String) throws(RuntimeError) -> DownloadPlan {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw RuntimeError(errno == EACCES ? .permissionDenied : .notFound, "local artifact \(path): \(String(cString: strerror(errno)))")
        }
        let access = TransferAccess(protocols: "file")
        func file(_ absolute: String, relative: String, size: Int64) -> RemoteFile {
            RemoteFile(relativePath: relative, url: "file://" + CurlURL.percentEncoded(absolute, keepSlash: true), size: size, digest: nil, etag: nil, acceptsRanges: true)
        }
        if (info.st_mode & S_IFMT) == S_IFREG {
            return DownloadPlan(files: [file(path, relative: String(path.split(separator: "/").last ?? "file"), size: Int64(info.st_size))], access: access)
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw RuntimeError(.invalidArgument, "local artifact \(path) is neither a file nor a directory") }
        guard let entries = try? FileManager.default.subpathsOfDirectory(atPath: path) else {
            throw RuntimeError(.permissionDenied, "cannot read the directory \(path)")
        }
        var files: [RemoteFile] = []
        let base = path.hasSuffix("/") ? path : path + "/"
        for relative in entries {
            var entry = stat()
            // lstat: symbolic links are not followed out of the directory.
            guard lstat(base + relative, &entry) == 0, (entry.st_mode & S_IFMT) == S_IFREG else { continue }
            if relative.hasPrefix(".cache/") { continue }
            files.append(file(base + relative, relative: relative, size: Int64(entry.st_size)))
        }
        return DownloadPlan(files: files.sorted { $0.relativePath < $1.relativePath }, access: access)
    }

    // MARK: Requests

    private func send(_ method: String, _ url: String, access: TransferAccess, what: String, isCancelled: @escaping @Sendable () -> Bool)
        throws(RuntimeError) -> HTTPClientResponse
    {
        var access = access
        access.allowedHosts = settings.hostAllowList
        return try http.send(
            method, url, access: access, timeoutSeconds: Int64(max(10, settings.stallTimeoutSeconds)), maxResponseBytes: 64 << 20,
            what: what, isCancelled: isCancelled)
    }
}

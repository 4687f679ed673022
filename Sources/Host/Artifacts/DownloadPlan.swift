/// What a download fetches: every file with what the source says about it, and how to
/// reach the source.
struct DownloadPlan: Sendable {
    var files: [RemoteFile]
    var access: TransferAccess
    /// The commit a Hugging Face download is pinned to.
    var revision: String?

    var totalBytes: Int64 { files.reduce(0) { $0 + ($1.size ?? 0) } }
}

/// One file of an artifact.
struct RemoteFile: Sendable, Codable, Equatable {
    /// Where it lands, relative to the model directory; checked by `SafeRelativePath`.
    var relativePath: String
    var url: String
    /// nil when the source does not say (an HTTP answer without Content-Length).
    var size: Int64?
    var digest: ExpectedDigest?
    /// The source's version tag; a partial file is resumed only while it still matches.
    var etag: String?
    var acceptsRanges: Bool
    /// Sent as If-Match on ranged requests, so parts of two versions are never mixed.
    var ifMatch: String? = nil
}

/// A digest the source publishes for a file.
enum ExpectedDigest: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Hugging Face LFS files.
    case sha256(String)
    /// Hugging Face regular files: the git blob id, sha1 of "blob <size>\0" + content.
    case gitBlobSHA1(String)
    /// Single-part S3 ETags are the MD5 of the content.
    case md5(String)

    var description: String {
        switch self {
        case .sha256(let hex): "sha256 \(hex)"
        case .gitBlobSHA1(let hex): "git blob sha1 \(hex)"
        case .md5(let hex): "md5 \(hex)"
        }
    }
}

/// How requests reach a source: extra headers, signing, redirects and allowed protocols.
struct TransferAccess: Sendable {
    var headers: [String] = []
    /// Asked before each request: credentials that expire are renewed between requests.
    var credentials: (any CredentialSource)? = nil
    var followRedirects = false
    /// libcurl's CURLOPT_PROTOCOLS_STR.
    var protocols = "http,https"
    /// Checked on every connection, so a redirect cannot lead off the operator's list.
    var allowedHosts: HostAllowList? = nil

    /// The headers and signing of the next request, with the credentials as they are now.
    func authorize(isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> (headers: [String], signing: AWSSigning?) {
        guard let credentials else { return (headers, nil) }
        let authorization = try credentials.authorization(isCancelled: isCancelled)
        return (headers + authorization.headers, authorization.signing)
    }
}

extension CurlHTTPClient {
    /// One metadata request to a source (a listing, a HEAD), with `access` applied and a
    /// transport failure turned into an RuntimeError about `what`.
    func send(
        _ method: String, _ url: String, access: TransferAccess, timeoutSeconds: Int64, maxResponseBytes: Int, what: String,
        isCancelled: @escaping @Sendable () -> Bool
    ) throws(RuntimeError) -> HTTPClientResponse {
        let (headers, signing) = try access.authorize(isCancelled: isCancelled)
        let request = HTTPClientRequest(
            method: method, url: url, headers: headers, timeout: .seconds(timeoutSeconds), idempotent: true,
            maxResponseBytes: maxResponseBytes, followRedirects: access.followRedirects, signing: signing,
            allowedHosts: access.allowedHosts)
        return try send(request, what: what, isCancelled: isCancelled)
    }

    /// `request` to a source or to a credential issuer, a transport failure turned into an
    /// RuntimeError about `what`.
    func send(_ request: HTTPClientRequest, what: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> HTTPClientResponse {
        switch perform(request, isCancelled: isCancelled) {
        case .success(let response): return response
        case .failure(let error) where error.kind == .hostRefused:
            throw RuntimeError(.permissionDenied, "\(what): \(error.message)")
        case .failure(let error):
            // Whatever went wrong in reaching a source, it is the source's failure (a source
            // that cannot be reached is an upstream error, not the engine being unavailable).
            let kind: ErrorKind = error.kind == .timeout ? .timeout : error.kind == .cancelled ? .cancelled : .upstream
            throw RuntimeError(kind, "\(what): \(error.message)")
        }
    }
}

/// Relative paths that come from a source (object keys, repository file names): nothing in
/// them may lead outside the directory they are written under.
enum SafeRelativePath {
    static func check(_ path: String, source: String) throws(RuntimeError) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let problem: String? =
            if path.isEmpty { "is empty" }
            else if path.hasPrefix("/") { "is absolute" }
            else if segments.contains(where: { $0 == ".." || $0 == "." }) { "contains '.' or '..'" }
            else if segments.contains(where: \.isEmpty) { "contains an empty path segment" }
            else if path.utf8.contains(0) || path.utf8.count > 4096 || segments.contains(where: { $0.utf8.count > 255 }) {
                "is not a valid file name"
            } else if segments.first == ".cache" { "would overwrite the runtime's .cache directory" }
            else { nil }
        if let problem {
            throw RuntimeError(.invalidArgument, "refusing \(source) \"\(path)\": the name \(problem) and would escape or corrupt the target directory")
        }
    }
}

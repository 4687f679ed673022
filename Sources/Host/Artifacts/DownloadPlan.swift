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
    var signing: AWSSigning? = nil
    var followRedirects = false
    /// libcurl's CURLOPT_PROTOCOLS_STR.
    var protocols = "http,https"
}

extension CurlHTTPClient {
    /// One metadata request to a source (a listing, a HEAD), with `access` applied and a
    /// transport failure turned into an ArtifactError about `what`.
    func send(
        _ method: String, _ url: String, access: TransferAccess, timeoutSeconds: Int64, maxResponseBytes: Int, what: String,
        isCancelled: @escaping @Sendable () -> Bool
    ) throws(ArtifactError) -> HTTPClientResponse {
        let request = HTTPClientRequest(
            method: method, url: url, headers: access.headers, timeout: .seconds(timeoutSeconds), idempotent: true,
            maxResponseBytes: maxResponseBytes, followRedirects: access.followRedirects, signing: access.signing)
        switch perform(request, isCancelled: isCancelled) {
        case .success(let response): return response
        case .failure(let error):
            let kind: ArtifactError.Kind = error.status == .timeout ? .timeout : error.status == .cancelled ? .cancelled : .upstream
            throw ArtifactError(kind, "\(what): \(error.message)")
        }
    }
}

/// Relative paths that come from a source (object keys, repository file names): nothing in
/// them may lead outside the directory they are written under.
enum SafeRelativePath {
    static func check(_ path: String, source: String) throws(ArtifactError) {
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
            throw ArtifactError(.invalidArgument, "refusing \(source) \"\(path)\": the name \(problem) and would escape or corrupt the target directory")
        }
    }
}

/// Percent-encoding as AWS Signature V4 wants it (RFC 3986 unreserved characters kept).
enum URIEncoding {
    static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            let unreserved =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E || (keepSlash && byte == 0x2F)
            if unreserved {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return out
    }

    /// `%XX` sequences decoded; invalid ones and invalid UTF-8 are kept as they are.
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == 0x25, input.count >= 2, let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                input = input.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? text
    }
}

/// Pieces of http(s) URLs.
enum URLParts {
    /// The host of `url` (brackets kept for IPv6), without user info or port.
    static func host(of url: String) -> String {
        let afterScheme = url.split(separator: "://", maxSplits: 1).last ?? ""
        var authority = afterScheme.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        authority = String(authority.split(separator: "?", maxSplits: 1).first ?? "")
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        if authority.hasPrefix("[") { return String(authority.split(separator: "]").first ?? "") + "]" }
        return String(authority.split(separator: ":").first ?? "")
    }
}

/// Where an artifact comes from, parsed from the URI a caller gives.
///
/// Forms: `hf://org/name`, `huggingface://org/name` and bare `org/name` (each optionally
/// `@revision`); `s3://`, `tos://`, `gs://` and `gcs://` followed by `bucket/key-or-prefix`;
/// `http://` and `https://` URLs of one file; absolute local paths and `file://` URLs.
public enum ArtifactSource: Sendable, Equatable {
    case huggingFace(repository: String, revision: String?)
    case objectStore(ObjectStoreLocation)
    case http(url: String)
    case local(path: String)

    /// The flavors of S3-compatible storage.
    public enum ObjectStoreFlavor: String, Sendable, Codable {
        case s3, tos, gcs
    }

    public struct ObjectStoreLocation: Sendable, Equatable {
        public var flavor: ObjectStoreFlavor
        public var bucket: String
        /// The key of one object, or a prefix; empty for the whole bucket.
        public var key: String
    }

    /// The name AIBrix reports as `source` (`huggingface`, `s3`, `tos`, `gcs`, `http`, `local`).
    public var kind: String {
        switch self {
        case .huggingFace: "huggingface"
        case .objectStore(let location): location.flavor.rawValue
        case .http: "http"
        case .local: "local"
        }
    }

    /// Whether `other` names the same artifact: the same repository and revision, object
    /// location, URL (without its query, which carries signatures) or path, whatever the URI's
    /// spelling (`org/name` and `hf://org/name` are one).
    public func isSameArtifact(as other: ArtifactSource) -> Bool {
        switch (self, other) {
        case (.huggingFace(let a, let revisionA), .huggingFace(let b, let revisionB)): a == b && revisionA == revisionB
        case (.objectStore(let a), .objectStore(let b)): a == b
        case (.http(let a), .http(let b)): CurlHTTPClient.redacted(a) == CurlHTTPClient.redacted(b)
        case (.local(let a), .local(let b)): a == b
        default: false
        }
    }

    /// The model name when the caller gives none: `org/name` for Hugging Face (AIBrix's
    /// layout), otherwise the last path segment.
    public var defaultName: String {
        switch self {
        case .huggingFace(let repository, _): repository
        case .objectStore(let location):
            location.key.split(separator: "/").last.map(String.init) ?? location.bucket
        case .http(let url):
            String(url.split(separator: "?", maxSplits: 1)[0].split(separator: "/").last ?? "download")
        case .local(let path): path.split(separator: "/").last.map(String.init) ?? "local"
        }
    }

    public static let supportedForms =
        "hf://org/name, huggingface://org/name, org/name, s3://bucket/key, tos://bucket/key, gs://bucket/key, gcs://bucket/key, http(s)://host/path, an absolute path or file:///path"

    /// Parses `uri`; the error says which forms are accepted.
    public static func parse(_ uri: String) throws(RuntimeError) -> ArtifactSource {
        guard !uri.isEmpty, uri.utf8.count <= 4096 else { throw RuntimeError(.invalidArgument, "the artifact URI must be 1 to 4096 bytes") }
        guard !uri.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw RuntimeError(.invalidArgument, "the artifact URI contains control characters")
        }
        if uri.hasPrefix("/") { return .local(path: try checkedLocalPath(uri)) }
        let schemeAndRest = uri.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard schemeAndRest.count == 2 else {
            if let repository = try? huggingFaceRepository(uri) { return repository }
            throw RuntimeError(.invalidArgument, "\"\(uri)\" is not an artifact URI; use one of: \(supportedForms)")
        }
        let scheme = schemeAndRest[0].lowercased()
        let rest = String(schemeAndRest[1])
        switch scheme {
        case "hf", "huggingface": return try huggingFaceRepository(rest)
        case "s3", "tos", "gs", "gcs":
            let flavor: ObjectStoreFlavor = scheme == "s3" ? .s3 : scheme == "tos" ? .tos : .gcs
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let bucket = String(parts[0])
            guard isValidBucket(bucket) else {
                throw RuntimeError(.invalidArgument, "\"\(bucket)\" is not a valid bucket name in \(scheme):// URI")
            }
            let key = parts.count > 1 ? String(parts[1]) : ""
            return .objectStore(ObjectStoreLocation(flavor: flavor, bucket: bucket, key: key))
        case "http", "https":
            let host = rest.split(separator: "/", maxSplits: 1).first ?? ""
            guard !host.isEmpty, !host.contains("@") else {
                throw RuntimeError(.invalidArgument, "an http(s) artifact URL needs a host and must not carry user:password@")
            }
            return .http(url: scheme + "://" + rest)
        case "file":
            return .local(path: try checkedLocalPath(rest))
        default:
            throw RuntimeError(.invalidArgument, "unsupported artifact URI scheme \"\(scheme)\"; use one of: \(supportedForms)")
        }
    }

    private static func checkedLocalPath(_ path: String) throws(RuntimeError) -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
            throw RuntimeError(.invalidArgument, "a local artifact must be an absolute path without '..'")
        }
        return path
    }

    /// `org/name` or `org/name@revision`: two segments of letters, digits, `-`, `_` and `.`.
    private static func huggingFaceRepository(_ text: String) throws(RuntimeError) -> ArtifactSource {
        var repository = text
        var revision: String? = nil
        if let at = text.firstIndex(of: "@") {
            repository = String(text[..<at])
            revision = String(text[text.index(after: at)...])
            guard let revision, !revision.isEmpty, revision.utf8.count <= 256,
                revision.utf8.allSatisfy({ isNameByte($0) || $0 == 0x2F }), !revision.contains("..")
            else { throw RuntimeError(.invalidArgument, "the Hugging Face revision after '@' is not valid") }
        }
        let segments = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 2, segments.allSatisfy({ segment in
            !segment.isEmpty && segment.utf8.count <= 96 && segment.utf8.allSatisfy(isNameByte) && segment.first != "."
                && !segment.contains("..")
        }) else {
            throw RuntimeError(.invalidArgument, "a Hugging Face repository is written org/name, got \"\(repository)\"")
        }
        return .huggingFace(repository: repository, revision: revision)
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F || byte == 0x2E
    }

    private static func isValidBucket(_ bucket: String) -> Bool {
        (1...255).contains(bucket.utf8.count) && bucket.utf8.allSatisfy(isNameByte) && bucket != "." && bucket != ".."
    }
}

/// Why an artifact could not be listed, fetched, verified or published. The message is one
/// sentence for a person; it never carries credentials.
public struct ArtifactError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// The request itself is wrong (URI form, names, paths, settings).
        case invalidArgument = "invalid_argument"
        case notFound = "not_found"
        case permissionDenied = "permission_denied"
        /// The target is busy with another artifact, or another process holds its lock.
        case conflict
        /// Bytes arrived but do not match the size or digest the source published.
        case integrity
        /// Writing to the local disk failed (no space, quota, I/O error).
        case storage
        /// The source answered with an error or garbage.
        case upstream
        case timeout
        case cancelled
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Errors another attempt may cure.
    var isTransient: Bool { kind == .upstream || kind == .timeout }
}

extension ArtifactError {
    /// What an HTTP error answer from a source means (`what` names the file or listing), and
    /// whether another attempt may cure it. An object store's error `<Code>` in `body` is kept.
    static func httpAnswer(_ status: Int, body: [UInt8], what: String) -> (error: ArtifactError, transient: Bool) {
        let code = XMLText.first("Code", in: body).map { " \($0)" } ?? ""
        let detail = "HTTP \(status)\(code)"
        switch status {
        case 401, 403: return (ArtifactError(.permissionDenied, "\(what): access denied (\(detail)); check the credentials"), false)
        case 404, 410: return (ArtifactError(.notFound, "\(what): not found (\(detail))"), false)
        case 412: return (ArtifactError(.conflict, "\(what) changed at the source during the download (\(detail)); download it again"), false)
        case 416: return (ArtifactError(.integrity, "\(what) is shorter at the source than listed (\(detail))"), false)
        case 408, 429, 500...599: return (ArtifactError(.upstream, "\(what): \(detail)"), true)
        default: return (ArtifactError(.upstream, "\(what): unexpected \(detail)"), false)
        }
    }
}

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

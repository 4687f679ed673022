import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Kubernetes secrets mounted as directories (`<directory>/<secret>/<key>` files), read for
/// a LoRA request's `credentials_secret`.
public struct CredentialsSecrets: Sendable {
    public let directory: String

    public init(directory: String = "/var/run/secrets/aibrix") {
        self.directory = directory
    }

    /// Every key of `name` (file name → content, whitespace trimmed). The name must be a
    /// Kubernetes secret name, so it can never point outside `directory`.
    public func read(_ name: String) throws(RuntimeError) -> [String: String] {
        let bytes = Array(name.utf8)
        guard (1...253).contains(bytes.count),
            bytes.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }),
            bytes.first != 0x2E, bytes.first != 0x2D, !name.contains("..")
        else {
            throw RuntimeError(.invalidArgument, "credentials_secret must be a Kubernetes secret name (lower-case letters, digits, '-' and '.')")
        }
        let path = directory + "/" + name
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            throw RuntimeError(.notFound, "credentials secret \"\(name)\" is not mounted under \(directory)")
        }
        var values: [String: String] = [:]
        // Kubernetes keeps the real files in "..data" and links the keys to them.
        for key in entries.sorted() where !key.hasPrefix(".") {
            var info = stat()
            guard stat(path + "/" + key, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            guard info.st_size <= 64 << 10, values.count < 64 else {
                throw RuntimeError(.invalidArgument, "credentials secret \"\(name)\" is too large (at most 64 keys of 64 KiB)")
            }
            guard let content = try? StagingDirectory.read(path + "/" + key) else {
                throw RuntimeError(.permissionDenied, "cannot read key \"\(key)\" of credentials secret \"\(name)\"")
            }
            values[key] = String(decoding: content, as: UTF8.self).trimmingWhitespace()
        }
        return values
    }
}

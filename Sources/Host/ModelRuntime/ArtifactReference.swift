import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// What an `artifact_url` of an activation may be, and where its engine reads it from.
/// Remote forms go through the download stack (resumable, verified, published atomically);
/// local paths must lie inside the download roots: an activation cannot serve an arbitrary
/// file of the pod (AIBrix passed any path to the engine, its defect 7).
enum ArtifactReference {
    static func check(_ url: String) throws(RuntimeError) {
        guard !url.isEmpty else { throw RuntimeError(.invalidArgument, "artifact_url is empty") }
        guard url.utf8.count <= 4096 else { throw RuntimeError(.invalidArgument, "artifact_url is longer than 4096 bytes") }
        _ = try ArtifactSource.parse(url)
    }

    /// The path the engine is given: a `.gguf` file when the artifact is a directory holding
    /// exactly one (llama.cpp takes a file; an object-store key lands as a directory), else
    /// the directory or file itself.
    static func servedPath(_ path: String) -> String {
        guard StagingDirectory.isDirectory(path), let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return path }
        let visible = entries.filter { !$0.hasPrefix(".") }
        if visible.count == 1, visible[0].hasSuffix(".gguf") { return path + "/" + visible[0] }
        return path
    }
}

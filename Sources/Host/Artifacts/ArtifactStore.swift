import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// The directories the runtime may write artifacts under. Every `local_dir` a caller gives
/// must be one of them or inside one (symbolic links resolved).
public struct ArtifactRoots: Sendable, Equatable {
    /// Base directory of model downloads (`DOWNLOADER_LOCAL_DIR`, AIBrix's default).
    public var models: String
    /// Base directory of LoRA artifacts (AIBrix's fixed `/tmp/aibrix/adapters`).
    public var adapters: String
    /// More allowed directories (`ENGINE_RUNTIME_DOWNLOAD_ROOTS`, colon-separated).
    public var extra: [String]

    public init(models: String = "/tmp/aibrix/models", adapters: String = "/tmp/aibrix/adapters", extra: [String] = []) {
        self.models = Self.normalized(models) ?? models
        self.adapters = Self.normalized(adapters) ?? adapters
        self.extra = extra.compactMap(Self.normalized)
    }

    public static func fromEnvironment(_ environment: [String: String]) throws(RuntimeError) -> ArtifactRoots {
        func directory(_ name: String, default value: String) throws(RuntimeError) -> String {
            let raw = environment[name].map { $0.trimmingWhitespace() } ?? ""
            guard !raw.isEmpty else { return value }
            guard let path = normalized(raw) else { throw RuntimeError(.invalidArgument, "\(name) must be an absolute path without '..', got \"\(raw)\"") }
            return path
        }
        var extra: [String] = []
        for raw in (environment["ENGINE_RUNTIME_DOWNLOAD_ROOTS"] ?? "").split(separator: ":") where !raw.isEmpty {
            guard let path = normalized(String(raw)) else {
                throw RuntimeError(.invalidArgument, "ENGINE_RUNTIME_DOWNLOAD_ROOTS entries must be absolute paths without '..', got \"\(raw)\"")
            }
            extra.append(path)
        }
        return ArtifactRoots(
            models: try directory("DOWNLOADER_LOCAL_DIR", default: "/tmp/aibrix/models"),
            adapters: try directory("ENGINE_RUNTIME_ADAPTER_DIR", default: "/tmp/aibrix/adapters"), extra: extra)
    }

    public var all: [String] { [models, adapters] + extra }

    /// `path` made absolute-and-clean (no `.`, `..` or empty segments), or nil when it is
    /// relative or climbs with `..`.
    static func normalized(_ path: String) -> String? {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { return nil }
        var segments: [Substring] = []
        for segment in path.split(separator: "/") where segment != "." {
            if segment == ".." { return nil }
            segments.append(segment)
        }
        return "/" + segments.joined(separator: "/")
    }

    /// `path` made absolute against `base` and cleaned; nil when it climbs with `..`.
    public static func absolute(_ path: String, base: String) -> String? {
        normalized(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// The clean form of `localDir` once it is known to be inside a root.
    public func check(_ localDir: String) throws(RuntimeError) -> String {
        guard let path = Self.normalized(localDir) else {
            throw RuntimeError(.invalidArgument, "local_dir must be an absolute path without '..', got \"\(localDir)\"")
        }
        for root in all where path == root || path.hasPrefix(root == "/" ? "/" : root + "/") {
            // A symbolic link inside the root must not lead out of it.
            if let real = Self.resolvedExistingPrefix(path), let realRoot = Self.resolvedExistingPrefix(root),
                real != realRoot, !real.hasPrefix(realRoot == "/" ? "/" : realRoot + "/")
            {
                continue
            }
            return path
        }
        throw RuntimeError(
            .permissionDenied,
            "local_dir \(path) is outside the download roots (\(all.joined(separator: ", "))); set DOWNLOADER_LOCAL_DIR or ENGINE_RUNTIME_DOWNLOAD_ROOTS")
    }

    /// realpath of the longest existing prefix of `path`, with the rest appended.
    private static func resolvedExistingPrefix(_ path: String) -> String? {
        var existing = path
        var rest: [Substring] = []
        while !existing.isEmpty, existing != "/", access(existing, F_OK) != 0 {
            let index = existing.lastIndex(of: "/")!
            rest.insert(existing[existing.index(after: index)...], at: 0)
            existing = String(existing[..<index])
        }
        guard let resolved = realpath(existing.isEmpty ? "/" : existing, nil) else { return nil }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return rest.isEmpty ? base : (base == "/" ? "" : base) + "/" + rest.joined(separator: "/")
    }
}

/// One artifact's place on disk: `<local_dir>/<model_name>`, and the runtime's working
/// directories beside it (`<local_dir>/.engine-runtime/{staging,locks,trash}`).
public struct ArtifactTarget: Sendable, Equatable, Hashable {
    public let localDir: String
    public let modelName: String

    /// `modelName` is one name or `org/name`; each part passes `ResourceName`.
    public init(localDir: String, modelName: String) throws(RuntimeError) {
        let segments = modelName.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(segments.count) else {
            throw RuntimeError(.invalidArgument, "model_name must be a name or org/name, got \"\(modelName)\"")
        }
        for segment in segments {
            if let problem = ResourceName.adapterNameProblem(String(segment)) {
                throw RuntimeError(.invalidArgument, "model_name \"\(modelName)\" \(problem)")
            }
        }
        self.localDir = localDir
        self.modelName = modelName
    }

    public var path: String { localDir + "/" + modelName }
    /// One path segment for `modelName` (`+` never appears in names, so the mapping is
    /// unambiguous). A long `org/name` would pass the 255-byte name limit once `.lock` or a
    /// trash suffix is added, so keys over 160 bytes are cut and end in a hash of the whole
    /// (`~` never appears in names either).
    var key: String {
        let joined = modelName.replacing("/", with: "+")
        guard joined.utf8.count > Self.longestKey else { return joined }
        return String(decoding: joined.utf8.prefix(96), as: UTF8.self) + "~" + String(FileDigest.sha256(joined).prefix(40))
    }
    static let longestKey = 160
    var workDirectory: String { localDir + "/.engine-runtime" }
    var stagingDirectory: String { workDirectory + "/staging/" + key }
    var lockPath: String { workDirectory + "/locks/" + key + ".lock" }
    var manifestPath: String { path + "/" + ArtifactManifest.relativePath }
    /// Written into the staging directory when a download failed with data worth keeping.
    var failureMarkerPath: String { stagingDirectory + "/failed.json" }
}

/// Why a download's staged data stopped short (`failed.json` in its staging directory).
struct ArtifactFailure: Codable, Sendable {
    var kind: String
    var error: String
    var failed_at: String
}

/// Written last into a published artifact: the proof that every file arrived and was checked.
public struct ArtifactManifest: Codable, Sendable, Equatable {
    static let relativePath = ".cache/engine-runtime/manifest.json"

    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String?
        public var etag: String?
    }

    public var source: String
    public var kind: String
    public var revision: String?
    public var files: [File]
    public var completed_at: String

    static func load(_ target: ArtifactTarget) -> ArtifactManifest? {
        guard let bytes = try? StagingDirectory.read(target.manifestPath) else { return nil }
        return try? JSONCoding.decode(ArtifactManifest.self, from: bytes)
    }
}

/// The states AIBrix's `/v1/model/list` reports.
public enum ModelDownloadStatus: String, Codable, Sendable {
    case notExist = "not_exist"
    case downloading
    case downloaded
    /// Interrupted: partial data is staged and nothing is downloading it.
    case noOperation = "no_operation"
    /// The directory exists but the runtime did not download it (no manifest).
    case unknown
    /// The last download failed; its resumable data is staged (a new request resumes it;
    /// `DELETE /v1/model/staging` or the staging age removes it). Not one of AIBrix's states:
    /// AIBrix kept such data as `no_operation` forever.
    case failed
}

/// A per-artifact lock shared with other processes (`flock`), held while a download runs.
final class ArtifactLock {
    private var descriptor: Int32

    /// Takes the lock without waiting; nil when someone else holds it.
    init?(_ target: ArtifactTarget) throws(RuntimeError) {
        try StagingDirectory.createParents(of: target.lockPath)
        descriptor = open(target.lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw StagingDirectory.error(errno, "open", target.lockPath) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
    }

    static func isHeld(_ target: ArtifactTarget) -> Bool {
        let descriptor = open(target.lockPath, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return false
        }
        return true
    }

    /// Lets the lock go now (before the job reports its end, so the next request for the
    /// target can take it). Idempotent.
    func unlock() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { unlock() }
}

/// Status and publishing on disk.
enum ArtifactStore {
    static func status(of target: ArtifactTarget) -> ModelDownloadStatus {
        if ArtifactLock.isHeld(target) { return .downloading }
        if ArtifactManifest.load(target) != nil { return .downloaded }
        if StagingDirectory.exists(target.failureMarkerPath) { return .failed }
        if StagingDirectory.exists(target.stagingDirectory) { return .noOperation }
        if StagingDirectory.exists(target.path) { return .unknown }
        return .notExist
    }

    /// True when something the runtime did not publish is at the target: a file, or a
    /// directory with entries but no manifest (an operator's own weights). Downloads never
    /// replace it; an empty directory (a mount point made ahead) is fine.
    static func holdsForeignData(_ target: ArtifactTarget) -> Bool {
        var info = stat()
        guard lstat(target.path, &info) == 0 else { return false }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return true }
        if ArtifactManifest.load(target) != nil { return false }
        return !((try? FileManager.default.contentsOfDirectory(atPath: target.path))?.isEmpty ?? false)
    }

    static func foreignDataError(_ target: ArtifactTarget) -> RuntimeError {
        RuntimeError(
            .conflict,
            "\(target.path) exists and was not downloaded by engine-runtime (it has no manifest); choose another model_name or local_dir, or move it away")
    }

    /// Makes the staged files visible under the target name in one rename. The manifest is
    /// written first and (with `sync`) every file is flushed to disk, so what appears is complete.
    static func publish(_ target: ArtifactTarget, files: [StagedFile], manifest: ArtifactManifest, sync: Bool) throws(RuntimeError) {
        let staged = target.stagingDirectory + "/files"
        for file in files where sync {
            let descriptor = open(file.dataPath, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 {
                fsync(descriptor)
                close(descriptor)
            }
        }
        guard let bytes = try? JSONCoding.encode(manifest) else { throw RuntimeError(.storage, "cannot encode the manifest") }
        let manifestPath = staged + "/" + ArtifactManifest.relativePath
        try StagingDirectory.createParents(of: manifestPath)
        try StagingDirectory.writeAtomically(bytes, to: manifestPath)
        try StagingDirectory.createParents(of: target.path)
        // Checked again here, right before the rename: whatever appeared during the download.
        if holdsForeignData(target) { throw foreignDataError(target) }
        var trash: String? = nil
        if StagingDirectory.exists(target.path) {
            let aside = target.workDirectory + "/trash/" + target.key + ".\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
            try StagingDirectory.createParents(of: aside)
            guard rename(target.path, aside) == 0 else { throw StagingDirectory.error(errno, "move aside", target.path) }
            trash = aside
        }
        guard rename(staged, target.path) == 0 else {
            let code = errno
            if let trash { rename(trash, target.path) }
            throw StagingDirectory.error(code, "publish", target.path)
        }
        let parent = String(target.path[..<target.path.lastIndex(of: "/")!])
        let directory = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        if let trash { StagingDirectory.remove(trash) }
        StagingDirectory.remove(target.stagingDirectory)
    }

    /// Artifacts under `localDir`: directories (one or two levels deep, `org/name`) holding a
    /// manifest or staged data. Bounded: it never walks deeper.
    static func artifacts(in localDir: String) -> [ArtifactTarget] {
        var found: Set<ArtifactTarget> = []
        func children(_ path: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        }
        for first in children(localDir) where StagingDirectory.isDirectory(localDir + "/" + first) {
            if let target = try? ArtifactTarget(localDir: localDir, modelName: first), StagingDirectory.exists(target.manifestPath) {
                found.insert(target)
                continue
            }
            for second in children(localDir + "/" + first) {
                if let target = try? ArtifactTarget(localDir: localDir, modelName: first + "/" + second),
                    StagingDirectory.exists(target.manifestPath)
                {
                    found.insert(target)
                }
            }
        }
        for key in children(localDir + "/.engine-runtime/staging") {
            let name = key.replacing("+", with: "/")
            if let target = try? ArtifactTarget(localDir: localDir, modelName: name) { found.insert(target) }
        }
        return found.sorted { $0.modelName < $1.modelName }
    }
}

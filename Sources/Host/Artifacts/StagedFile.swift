import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// One file being downloaded into the staging directory, and how far each of its parts got.
///
/// Progress is saved beside it (`state/<path>.json`) at least once a second, so a killed
/// download resumes where the saved counts say. The counts never run ahead of the data: a
/// part's count grows only after `pwrite` returned.
final class StagedFile {
    struct Part: Codable, Equatable {
        var start: Int64
        /// nil when the size is unknown (one part that reads to the end).
        var length: Int64?
        var done: Int64
        var isComplete: Bool { length.map { done >= $0 } ?? false }
    }

    /// What the saved state must match to be resumed. Verification is not saved: bytes on
    /// disk are checked again by every run that publishes them.
    private struct SavedState: Codable {
        var url: String
        var size: Int64?
        var etag: String?
        var parts: [Part]
    }

    let remote: RemoteFile
    let dataPath: String
    let statePath: String
    private(set) var parts: [Part]
    var verified = false
    /// True once the whole size is known to be written (or, for unknown sizes, the transfer ended well).
    var finishedUnknownSize = false
    private(set) var descriptor: Int32 = -1
    private var dirty = false
    /// With the final fsync on, writeback of each part is started as it goes (every
    /// `writebackStride` bytes), so the fsync before publishing waits for the tail only.
    private let startsWriteback: Bool
    private var writebackFrom: [Int64] = []
    static let writebackStride: Int64 = 8 << 20
    /// How far the file is written without a gap from byte 0, for the `DigestWorker` that
    /// hashes it on another thread while the rest arrives.
    let frontier = WrittenFrontier()
    /// The part holding the frontier (every part before it is complete).
    private var frontierPart = 0

    /// Opens (creating or resuming) the staged copy of `remote` under `stagingRoot`.
    init(remote: RemoteFile, stagingRoot: String, settings: DownloadSettings) throws(RuntimeError) {
        self.remote = remote
        dataPath = stagingRoot + "/files/" + remote.relativePath
        statePath = stagingRoot + "/state/" + remote.relativePath + ".json"
        parts = Self.split(remote, settings: settings)
        startsWriteback = settings.syncBeforePublish
        try StagingDirectory.createParents(of: dataPath)
        try StagingDirectory.createParents(of: statePath)

        var resumed = false
        if let bytes = try? StagingDirectory.read(statePath),
            let saved = try? JSONCoding.decode(SavedState.self, from: bytes),
            saved.url == remote.url, saved.size == remote.size, saved.etag == remote.etag,
            saved.parts.map({ [$0.start, $0.length ?? -1] }) == parts.map({ [$0.start, $0.length ?? -1] }),
            remote.acceptsRanges || saved.parts.allSatisfy(\.isComplete),
            access(dataPath, F_OK) == 0
        {
            parts = saved.parts
            resumed = true
        }
        descriptor = open(dataPath, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (resumed ? 0 : O_TRUNC), 0o644)
        guard descriptor >= 0 else { throw StagingDirectory.error(errno, "open", dataPath) }
        if !resumed { dirty = true }
        writebackFrom = parts.map { $0.start + $0.done }
        advanceFrontier()
    }

    deinit { closeDescriptor() }

    func closeDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Bytes already on disk (from this run or an earlier one).
    var doneBytes: Int64 { parts.reduce(0) { $0 + $1.done } }
    var isTransferred: Bool { parts.allSatisfy(\.isComplete) || finishedUnknownSize }
    /// Whether the bytes on disk are worth keeping after a failure: complete, or continuable
    /// with ranges of a known size (an endless or range-less source starts over anyway).
    var isResumable: Bool { isTransferred || (remote.acceptsRanges && remote.size != nil) }

    /// Writes `bytes` for part `index` at the part's current position; errno on failure.
    func write(_ bytes: UnsafeRawBufferPointer, part index: Int) -> Int32? {
        var offset = parts[index].start + parts[index].done
        var remaining = bytes
        while !remaining.isEmpty {
            let written = pwrite(descriptor, remaining.baseAddress, remaining.count, off_t(offset))
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += Int64(written)
            parts[index].done += Int64(written)
            remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
        }
        dirty = true
        if index == frontierPart { advanceFrontier() }
        if startsWriteback, offset - writebackFrom[index] >= Self.writebackStride {
            // Starts writeback without waiting for it (SYNC_FILE_RANGE_WRITE); the fsync at
            // publish still makes it durable.
            _ = GNUExtensions.syncFileRange?(descriptor, writebackFrom[index], offset - writebackFrom[index], GNUExtensions.syncFileRangeWrite)
            writebackFrom[index] = offset
        }
        return nil
    }

    /// Moves the frontier over the parts now complete; one step per part over the whole download.
    private func advanceFrontier() {
        while frontierPart < parts.count - 1, parts[frontierPart].isComplete { frontierPart += 1 }
        frontier.advance(to: parts[frontierPart].start + parts[frontierPart].done)
    }

    /// Forgets a part's progress (a server that cannot resume it).
    func restart(part index: Int) {
        parts[index].done = 0
        writebackFrom[index] = parts[index].start
        if index <= frontierPart { rewindFrontier() }
        dirty = true
    }

    private func rewindFrontier() {
        frontierPart = 0
        frontier.rewind()
        advanceFrontier()
    }

    /// Throws the file's bytes away and starts over (a digest that did not match).
    func discard() throws(RuntimeError) {
        for index in parts.indices { parts[index].done = 0 }
        rewindFrontier()
        verified = false
        finishedUnknownSize = false
        guard ftruncate(descriptor, 0) == 0 else { throw StagingDirectory.error(errno, "truncate", dataPath) }
        dirty = true
        try saveIfChanged()
    }

    /// Saves the progress when it changed since the last save (write to a temporary, rename).
    func saveIfChanged() throws(RuntimeError) {
        guard dirty else { return }
        let state = SavedState(url: remote.url, size: remote.size, etag: remote.etag, parts: parts)
        guard let bytes = try? JSONCoding.encode(state) else { return }
        try StagingDirectory.writeAtomically(bytes, to: statePath)
        dirty = false
    }

    func markVerified() { verified = true }

    /// Files at least `partThreshold` long (whose server takes ranges) are cut into
    /// `partChunkSize` parts; everything else is one part.
    private static func split(_ remote: RemoteFile, settings: DownloadSettings) -> [Part] {
        guard let size = remote.size else { return [Part(start: 0, length: nil, done: 0)] }
        guard remote.acceptsRanges, size >= settings.partThreshold, size > settings.partChunkSize else {
            return [Part(start: 0, length: size, done: 0)]
        }
        return stride(from: Int64(0), to: size, by: Int(settings.partChunkSize)).map {
            Part(start: $0, length: min(settings.partChunkSize, size - $0), done: 0)
        }
    }
}

/// File-system steps of staging and publishing, with errors that name the path and cause.
enum StagingDirectory {
    static func error(_ code: Int32, _ operation: String, _ path: String) -> RuntimeError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT: return RuntimeError(.storage, "no space left on the device for \(path) (\(operation): \(reason))")
        case EACCES, EPERM, EROFS: return RuntimeError(.permissionDenied, "cannot \(operation) \(path): \(reason)")
        default: return RuntimeError(.storage, "cannot \(operation) \(path): \(reason)")
        }
    }

    /// `mkdir -p`: the common case (parent exists) costs one system call.
    static func createDirectory(_ path: String) throws(RuntimeError) {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            throw error(errno, "create the directory", path)
        }
        try createDirectory(String(path[..<slash]))
        if mkdir(path, 0o755) != 0, errno != EEXIST { throw error(errno, "create the directory", path) }
    }

    static func createParents(of path: String) throws(RuntimeError) {
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty { try createDirectory(parent) }
    }

    static func read(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Replaces `path` with `bytes` so a reader sees the old file or the new one, never a part.
    /// `durable` also survives a power cut: the file and then its directory are synced.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644, durable: Bool = false) throws(RuntimeError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard descriptor >= 0 else { throw error(errno, "create", temporary) }
        defer { close(descriptor) }
        fchmod(descriptor, mode)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw error(written < 0 ? errno : ENOSPC, "write", temporary) }
        if durable, fsync(descriptor) != 0 { throw error(errno, "sync", temporary) }
        guard rename(temporary, path) == 0 else { throw error(errno, "rename", temporary) }
        if durable {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            let directory = open(parent.isEmpty ? "." : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 {
                fsync(directory)
                close(directory)
            }
        }
    }

    /// Removes `path` and everything under it; missing is fine.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The newest change under a staging directory (its progress files are rewritten every
    /// second while a download runs), in seconds since the epoch.
    static func newestChange(in directory: String) -> Int? {
        let paths = [directory] + ((try? FileManager.default.subpathsOfDirectory(atPath: directory)) ?? []).prefix(10_000).map { directory + "/" + $0 }
        return paths.compactMap(modified).max()
    }

    /// When `path` (not followed if a link) last changed, in seconds since the epoch.
    static func modified(_ path: String) -> Int? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Int(info.st_mtim.tv_sec)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The file system `path` is on, to count reservations per volume.
    static func volume(at path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_dev)
    }

    /// Bytes free for an unprivileged writer on the file system holding `path`.
    static func freeBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

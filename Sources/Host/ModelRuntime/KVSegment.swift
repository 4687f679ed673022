#if canImport(Glibc)
import Glibc
#endif

/// kvcached's shared-memory segment of one engine (`/dev/shm/<ipc_name>`): three int64 in host
/// byte order, `total_size` (the KV limit), `used_size`, `prealloc_size`
/// (kvcached csrc/inc/mem_info_tracker.hpp:22-36). Read under `flock(LOCK_SH)`, written under
/// `LOCK_EX` as kvcached's own writers do, without kvctl: kvctl exits 0 when the segment is
/// missing (kvctl.py:254-267), so a limit sent before the engine set up its cache would be
/// taken as applied and never retried.
struct KVSegment: Sendable {
    let path: String

    init(directory: String, ipcName: String) {
        path = directory + "/" + ipcName
    }

    struct Usage: Sendable, Equatable {
        var total: Int64
        var used: Int64
        var preallocated: Int64
    }

    /// The numbers, nil when the segment is absent or shorter than 24 bytes (kvcached before
    /// c95e1c4 wrote 16).
    func read() -> Usage? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        var fields = [Int64](repeating: 0, count: 3)
        let count = fields.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 24, 0) }
        guard count == 24 else { return nil }
        return Usage(total: fields[0], used: fields[1], preallocated: fields[2])
    }

    enum WriteFailure: Error {
        case missing
        case failed(String)
    }

    /// Sets `total_size`, keeping the other fields.
    func setLimit(_ bytes: Int64) -> Result<Void, WriteFailure> {
        // No O_CREAT: "the engine has no segment yet" must stay distinguishable.
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            return errno == ENOENT ? .failure(.missing) : .failure(.failed("cannot open \(path): \(String(cString: strerror(errno)))"))
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { return .failure(.failed("cannot lock \(path): \(String(cString: strerror(errno)))")) }
        defer { flock(fd, LOCK_UN) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 24 else { return .failure(.failed("\(path) is shorter than kvcached's 24-byte layout")) }
        var value = bytes
        let written = withUnsafeBytes(of: &value) { pwrite(fd, $0.baseAddress, 8, 0) }
        guard written == 8 else { return .failure(.failed("cannot write \(path): \(String(cString: strerror(errno)))")) }
        return .success(())
    }

    /// kvcached's segment-name rule (kvcached/utils.py:31-40): letters and digits (Unicode),
    /// `_` and `-` kept, everything else `-`, at most 64 characters. The runtime names the
    /// segment exactly as the engine will, so both open the same file.
    static func sanitize(_ name: String) -> String {
        String(String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "-" }).prefix(64))
    }
}

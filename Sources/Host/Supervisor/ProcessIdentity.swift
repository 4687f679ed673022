#if canImport(Glibc)
import Glibc
#endif

/// A process as the supervisor knows it: its pid and its start time (field 22 of
/// `/proc/<pid>/stat`, clock ticks since boot). The pair names one process for the life of the
/// machine: a pid the kernel hands to somebody else later has another start time, so it is
/// never signalled by mistake.
public struct ProcessIdentity: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startTime: String

    enum CodingKeys: String, CodingKey {
        case pid
        case startTime = "pid_start_time"
    }

    public init(pid: Int32, startTime: String) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The identity of the live process `pid`, nil when there is none (or it is a zombie).
    public static func of(_ pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let stat = ProcFile.read("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) is in parentheses and may contain spaces or ')': the
        // fields after it start after the last ')'.
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        if fields[0].first == UInt8(ascii: "Z") || fields[0].first == UInt8(ascii: "X") { return nil }
        return ProcessIdentity(pid: pid, startTime: String(decoding: fields[19], as: UTF8.self))
    }

    /// True while this very process runs (not a zombie, not a reused pid).
    public var isAlive: Bool { Self.of(pid) == self }

    /// True while any process of the group this process leads exists (engines fork workers
    /// that may outlive the leader). While one does, the kernel does not reuse the pid.
    /// Zombies do not count: a worker orphaned by the leader's death is reaped by PID 1, which
    /// in a container may take long or never happen. When another process has the pid now,
    /// the group is gone: the kernel reuses a pid only once no group of that id is left.
    public var groupIsAlive: Bool {
        guard let current = Self.of(pid) else { return ProcFile.liveMembers(ofGroup: pid) > 0 }
        return current == self
    }

    /// Sends `signal` to the process group the process leads. Only when the leader is this
    /// process, or the leader is gone and members of its group remain (the kernel keeps a pid
    /// unused while its group exists, so the group is still ours).
    @discardableResult
    public func signalGroup(_ signal: Int32) -> Bool {
        if isAlive || Self.of(pid) == nil {
            return killpg(pid, signal) == 0
        }
        return false
    }
}

/// Small, bounded reads of files whose size `stat` may not tell (`/proc` files are 0 bytes to
/// it), so read until the end or `limit`: `/proc`, and credential files such as projected tokens.
enum ProcFile {
    static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes
    }

    /// How many processes of group `pgid` run (zombies not counted), from `/proc/*/stat`.
    static func liveMembers(ofGroup pgid: Int32) -> Int {
        guard killpg(pgid, 0) == 0 || errno == EPERM else { return 0 }
        var count = 0
        forEachProcess { pid in
            guard let stat = read("/proc/\(pid)/stat", limit: 4096), let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return }
            let fields = stat[stat.index(after: close)...].split(separator: UInt8(ascii: " "))
            // fields[0] is the state (field 3), fields[2] the process group (field 5).
            guard fields.count > 2, Int32(String(decoding: fields[2], as: UTF8.self)) == pgid else { return }
            if fields[0].first != UInt8(ascii: "Z"), fields[0].first != UInt8(ascii: "X") { count += 1 }
        }
        return count
    }

    static func forEachProcess(_ body: (Int32) -> Void) {
        guard let directory = opendir("/proc") else { return }
        defer { closedir(directory) }
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = Int32(name) { body(pid) }
        }
    }

    /// Pids of the processes of this user whose environment holds `entry` exactly ("K=V").
    static func processes(withEnvironmentEntry entry: String) -> [Int32] {
        let wanted = Array(entry.utf8)
        var found: [Int32] = []
        forEachProcess { pid in
            guard pid != getpid() else { return }
            // Unreadable (another user's) environments are skipped: engines run as this user.
            guard let environment = read("/proc/\(pid)/environ", limit: 4 << 20) else { return }
            if environment.split(separator: 0).contains(where: { $0.elementsEqual(wanted) }) { found.append(pid) }
        }
        return found
    }
}

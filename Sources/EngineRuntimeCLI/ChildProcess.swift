#if canImport(Glibc)
import Glibc
#endif

/// Runs a program and collects its output, without Foundation (which would add to the
/// server's memory). Used to run driver conformance checks in a child process, so a driver
/// that crashes takes down the child, not the verdict.
struct ChildProcess {
    struct Outcome {
        var exitCode: Int32?
        var signal: Int32?
        var stdout: [UInt8]
        var stderr: [UInt8]
    }

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Outcome {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var open: [Int32: Bool] = [outPipe[0]: true, errPipe[0]: true]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open.values.contains(true) {
            var fds = open.filter(\.value).map { pollfd(fd: $0.key, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 else {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &chunk, chunk.count)
                if count <= 0 {
                    open[entry.fd] = false
                    close(entry.fd)
                } else if entry.fd == outPipe[0] {
                    stdout.append(contentsOf: chunk[0..<count])
                } else {
                    stderr.append(contentsOf: chunk[0..<count])
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // The W* macros of <sys/wait.h> do not import into Swift.
        let termination = status & 0x7F
        if termination == 0 { return Outcome(exitCode: (status >> 8) & 0xFF, signal: nil, stdout: stdout, stderr: stderr) }
        return Outcome(exitCode: nil, signal: termination, stdout: stdout, stderr: stderr)
    }

    /// "SIGSEGV" for 11, and so on.
    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL"
        case SIGTRAP: "SIGTRAP"
        default: "signal \(signal)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Starts engine processes (and isolated drivers' hosts, `DriverHostProcess`): `posix_spawn` of an absolute program with an explicit argv and
/// environment (never a shell), in a new session and process group (so the engine's workers
/// are signalled together and survive a sidecar restart), with every signal at its default
/// and none blocked (a child inherits the spawning thread's mask, and NIO's pool threads block
/// nearly all signals: an engine spawned from one would never see SIGTERM), stdin from
/// /dev/null and stdout and stderr appended to the engine's log file.
enum EngineSpawner {
    /// glibc's `POSIX_SPAWN_SETSID` (<spawn.h>, a GNU extension Swift does not import).
    private static let setSessionFlag: Int16 = 0x80

    static func spawn(
        program: String, arguments: [String], environment: [String: String], logPath: String, workingDirectory: String
    ) throws(RuntimeError) -> Int32 {
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard log >= 0 else { throw RuntimeError(.storage, "cannot open the engine log \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try spawn(
            program: program, argv: [program] + arguments.dropFirst(), envp: envp, output: log, workingDirectory: workingDirectory,
            passing: nil, newSession: true)
    }

    /// The one `posix_spawn` of the runtime. `output` (nil: the sidecar's own) becomes stdout
    /// and stderr; `passing` becomes descriptor 3 and every other descriptor of the sidecar is
    /// closed; `newSession` puts the child in a session and process group of its own.
    static func spawn(
        program: String, argv: [String], envp: [String], output: Int32?, workingDirectory: String?, passing: Int32?,
        newSession: Bool
    ) throws(RuntimeError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        }
        if let workingDirectory { GNUSpawnActions.addChangeDirectory(&actions, workingDirectory) }
        if let passing { posix_spawn_file_actions_adddup2(&actions, passing, 3) }
        // Nothing else of the sidecar's (sockets, the registry, download files) reaches the child.
        GNUSpawnActions.addCloseFrom(&actions, passing == nil ? 3 : 4)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        // The sidecar ignores SIGPIPE (and SIGXFSZ); ignored dispositions survive exec.
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | (newSession ? setSessionFlag : 0))

        var pid: pid_t = 0
        let status = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in posix_spawn(&pid, program, &actions, &attributes, cArgv, cEnvp) }
        }
        guard status == 0 else {
            throw RuntimeError(.internalError, "cannot start \(program): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// The absolute path of `program`: itself when it has a '/', else the first executable
    /// match in `searchPath` (the engines' PATH, not the sidecar's working directory).
    static func resolve(_ program: String, searchPath: String) -> String? {
        if program.contains("/") { return program.hasPrefix("/") && access(program, X_OK) == 0 ? program : nil }
        for directory in searchPath.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(program)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Collects the exit of a child this process spawned, without blocking: its wait status
    /// once it ended, nil while it runs (or when it is not our child, for example an engine
    /// adopted after a restart of the sidecar).
    static func reap(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid ? status : nil
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29) and `..._addclosefrom_np` (2.34):
/// GNU extensions Swift's Glibc module leaves out, so they are looked up once at run time.
/// Without them the engine starts in the sidecar's directory and relies on close-on-exec.
private enum GNUSpawnActions {
    typealias AddChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static let changeDirectory: AddChangeDirectory? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: AddChangeDirectory.self) }
    static let closeFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    static func addChangeDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) {
        _ = changeDirectory?(actions, path)
    }

    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) {
        _ = closeFrom?(actions, lowest)
    }
}

import Foundation
import TestSupport
import Host
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A server binary of this package running on a free loopback port: `engine-runtime serve` or
/// `engine-simulator`. The port is read from the "listening" log line.
final class ServerProcess: Sendable {
    let port: Int
    private let process: Process
    private let log: LogBuffer

    /// `port` reads the port from the marker line (default: its `port=N` field).
    init(
        executable: String, arguments: [String], environment: [String: String] = [:], marker: String,
        port portOf: (Substring) -> Int? = { line in line.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) } }
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = Self.cleanEnvironment(environment)
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let log = LogBuffer()
        // A child inherits the spawning thread's signal mask, and the test pool's threads (NIO's)
        // block nearly every signal: a C server such as llama-server, which handles SIGTERM with
        // sigaction, would then never see it. Spawn with nothing blocked.
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
        log.drain(errors)
        let deadline = Date().addingTimeInterval(30)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            Thread.sleep(forTimeInterval: 0.01)
            port = log.text.split(separator: "\n").first { $0.contains(marker) }.flatMap(portOf)
        }
        self.process = process
        self.log = log
        guard let port else {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            throw StartError(log: log.text)
        }
        self.port = port
    }

    static let runtimeSettingPrefixes = ["INFERENCE_ENGINE", "ENGINE_RUNTIME_", "DOWNLOADER_", "AWS_", "HF_", "TOS_", "GCS_"]

    /// The tests' environment without the runtime's settings (they must not configure the
    /// binary under test), plus `extra`.
    static func cleanEnvironment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where runtimeSettingPrefixes.contains(where: key.hasPrefix) { environment[key] = nil }
        environment.merge(extra) { $1 }
        return environment
    }

    struct StartError: Error, CustomStringConvertible {
        let log: String
        var description: String { "the server did not start listening:\n\(log)" }
    }

    var output: String { log.text }
    var pid: Int32 { process.processIdentifier }

    /// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
    func memoryKiB(_ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Sends one request; `body` is sent as JSON text.
    func request(
        _ method: String, _ path: String, body: String? = nil, headers: [String] = [], timeout: Int64 = 15
    ) async throws -> HTTPClientResponse {
        try await timedRequest(method, path, body: body, headers: headers, timeout: timeout).response
    }

    /// `request`, with how long the exchange took, measured on the thread that makes it: the
    /// wait for a test-pool thread (long when many tests run at once) is not the server's time.
    func timedRequest(
        _ method: String, _ path: String, body: String? = nil, headers: [String] = [], timeout: Int64 = 15
    ) async throws -> (response: HTTPClientResponse, took: Duration) {
        let client = CurlHTTPClient()
        let request = HTTPClientRequest(
            method: method, url: baseURL + path, headers: headers + (body == nil ? [] : ["Content-Type: application/json"]),
            body: Array((body ?? "").utf8), timeout: .seconds(timeout))
        let (result, took) = try await TestThreadPool.shared.runIfActive {
            let started = ContinuousClock.now
            let result = client.perform(request)
            return (result, ContinuousClock.now - started)
        }
        return (try result.get(), took)
    }

    func get(_ path: String, headers: [String] = []) async throws -> HTTPClientResponse {
        try await request("GET", path, headers: headers)
    }

    func post(_ path: String, _ body: String, headers: [String] = []) async throws -> HTTPClientResponse {
        try await request("POST", path, body: body, headers: headers)
    }

    /// SIGTERM on a test-pool thread, then the exit status and the time from the signal to
    /// the exit (measured there, for the same reason as `timedRequest`).
    func timedTerminate() async throws -> (status: Int32, took: Duration) {
        try await TestThreadPool.shared.runIfActive {
            let started = ContinuousClock.now
            let status = self.terminate()
            return (status, ContinuousClock.now - started)
        }
    }

    /// SIGTERM, then the exit status.
    @discardableResult
    func terminate() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Waits at most `timeout` for the process to end by itself: its status (the signal, for an
    /// exit by a signal) and whether a signal ended it; nil while it still runs.
    func ended(within timeout: Duration) async throws -> (status: Int32, signalled: Bool)? {
        try await TestThreadPool.shared.runIfActive { [process] in
            let deadline = ContinuousClock.now + timeout
            while process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
            guard !process.isRunning else { return nil }
            return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
        }
    }

    /// SIGKILL: for a simulator left hanging on purpose (its graceful shutdown would wait).
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// `engine-runtime serve` on a free loopback port.
typealias RuntimeProcess = ServerProcess

extension ServerProcess {
    /// `engine-runtime serve` with `arguments`. Starting blocks until the port is logged, so it
    /// runs on the test thread pool: the concurrency pool (one thread per core) must not block.
    static func start(arguments: [String], environment: [String: String] = [:]) async throws -> ServerProcess {
        try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: TestPaths.binary, arguments: ["serve", "--host", "127.0.0.1", "--port", "0"] + arguments,
                environment: environment, marker: "engine-runtime listening")
        }
    }

    /// An engine simulator of `flavor`, or of a release's profile as `flavor@version` (extra
    /// `arguments` are its flags).
    static func simulator(_ flavor: String, _ arguments: [String] = [], port: Int = 0) async throws -> ServerProcess {
        let version = flavor.engineVersion.map { ["--engine-version", $0] } ?? []
        return try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: TestPaths.buildDirectory + "/engine-simulator",
                arguments: ["--flavor", flavor.engineKind, "--port", "\(port)", "--log-level", "info"] + version + arguments,
                marker: "engine-simulator listening")
        }
    }

    /// The runtime in front of `engine` (the in-tree drivers from the build directory).
    static func runtime(
        for engine: ServerProcess?, flavor: String, endpoint: String? = nil, arguments: [String] = [], environment: [String: String] = [:]
    ) async throws -> ServerProcess {
        var env = ["INFERENCE_ENGINE": flavor.engineKind, "INFERENCE_ENGINE_ENDPOINT": endpoint ?? engine?.baseURL ?? "http://127.0.0.1:9"]
        env.merge(environment) { $1 }
        let isolation = flavor.isIsolatedProfile ? ["--isolated-drivers", flavor.engineKind] : []
        return try await start(arguments: ["--driver-dir", TestPaths.buildDirectory, "--log-level", "info"] + isolation + arguments, environment: env)
    }

    /// Changes the simulator's fault knobs.
    func configure(_ json: String) async throws {
        let response = try await post("/_sim/config", json)
        guard response.status == 200 else { throw StartError(log: "simulator refused config \(json)") }
    }

    /// How many requests the simulator saw for "METHOD /path".
    func requestCount(_ route: String) async throws -> Int {
        struct Stats: Decodable { var requests: [String: Int] }
        return try JSONCoding.decode(Stats.self, from: try await get("/_sim/stats").body).requests[route] ?? 0
    }
}

/// The engine releases the simulator reproduces: the current ones the drivers follow, and the
/// previous ones they still support (`flavor@version`).
enum EngineProfiles {
    /// `+isolated`: the same engine with its driver in a host process of its own.
    static let all = ["vllm@0.33.0", "vllm@0.11.0", "sglang@0.5.23", "sglang@0.5.4", "vllm@0.33.0+isolated"]
    static let current = ["vllm@0.33.0", "sglang@0.5.23"]
}

extension String {
    /// "vllm@0.33.0" of "vllm@0.33.0+isolated".
    var engineProfile: String { hasSuffix("+isolated") ? String(dropLast(9)) : self }
    /// True for a profile whose driver runs isolated ("vllm@0.33.0+isolated").
    var isIsolatedProfile: Bool { hasSuffix("+isolated") }
    /// "vllm" of "vllm@0.33.0".
    var engineKind: String { String(engineProfile.split(separator: "@", maxSplits: 1).first ?? Substring(engineProfile)) }
    /// "0.33.0" of "vllm@0.33.0"; nil without a version.
    var engineVersion: String? { engineProfile.split(separator: "@", maxSplits: 1).dropFirst().first.map { String($0) } }
    /// True for a current release's profile (or a bare flavor, which defaults to it).
    var isCurrentProfile: Bool { engineVersion == nil || EngineProfiles.current.contains(engineProfile) }
}

extension HTTPClientResponse {
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The error envelope of a failed answer.
    var envelope: ErrorEnvelope? { try? JSONCoding.decode(ErrorEnvelope.self, from: body) }
}

/// Text appended from one thread and read from another.
final class LogBuffer: Sendable {
    private let storage = Mutex("")
    func append(_ text: String) { storage.withLock { $0 += text } }
    var text: String { storage.withLock { $0 } }

    /// Appends what arrives on `pipe` until its end, read by a thread of its own with blocking
    /// reads. Not with a `readabilityHandler`: on Linux, its libdispatch read source torn down
    /// while other tests set up theirs can leave a freed epoll note behind, and the test
    /// process crashed in `_dispatch_event_loop_drain` (swiftlang/swift-corelibs-libdispatch
    /// #949; SourceKit-LSP's launcher moved to blocking reads for the same crash).
    func drain(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    append(String(decoding: buffer[..<count], as: UTF8.self))
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            try? handle.close()
        }
    }
}

import Foundation
import TestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}

/// A loopback port that was free a moment ago (for servers that cannot report the port they
/// bound, like nginx and moto_server).
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts a server that must be told its port: picks a free one, and tries again with another
/// when the server exits at once (another test took the port between the check and the bind;
/// without this, the test would talk to whatever took it).
func startOnFreePort(name: String, log: () -> String, _ launch: (Int) throws -> Process) throws -> (Int, Process) {
    var lastError: any Error = ServerProcess.StartError(log: "\(name) did not start")
    for _ in 0..<5 {
        let port = try freeLoopbackPort()
        let process = try launch(port)
        do {
            try waitForListener(port: port, process: process, name: name, log: log)
            Thread.sleep(forTimeInterval: 0.2)
            if process.isRunning { return (port, process) }
        } catch {
            lastError = error
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
    throw lastError
}

/// Waits until something accepts TCP connections on `port`.
func waitForListener(port: Int, process: Process, name: String, log: () -> String) throws {
    let deadline = Date().addingTimeInterval(30)
    while Date() < deadline {
        guard process.isRunning else { throw ServerProcess.StartError(log: "\(name) exited:\n\(log())") }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        close(descriptor)
        if connected { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw ServerProcess.StartError(log: "\(name) did not listen on \(port):\n\(log())")
}

/// nginx on loopback serving `root`, with an access log that records each request's Range
/// header, status, bytes sent and whether it completed.
final class NginxServer: @unchecked Sendable {
    let directory: TemporaryDirectory
    let port: Int
    private let process: Process

    var root: String { directory.path + "/www" }
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var accessLog: String { directory.path + "/access.log" }

    /// `rate` limits each request ("2m" is 2 MB/s), after its first `rateAfter` bytes when given. Hugging Face mirror paths are served
    /// from `www/repos/<org>/<name>/...`; `.safetensors` files redirect like the Hub's LFS.
    init(rate: String? = nil, rateAfter: String? = nil) throws {
        directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path + "/www", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.path + "/tmp", withIntermediateDirectories: true)
        let directory = self.directory
        (port, process) = try startOnFreePort(name: "nginx", log: { (try? String(contentsOfFile: directory.path + "/error.log", encoding: .utf8)) ?? "" }) { port in
            try Self.configuration(directory: directory, port: port, rate: rate, rateAfter: rateAfter).write(toFile: directory.path + "/nginx.conf", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.executable)
            process.arguments = ["-c", directory.path + "/nginx.conf", "-p", directory.path, "-e", directory.path + "/error.log"]
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            return process
        }
    }

    private static func configuration(directory: TemporaryDirectory, port: Int, rate: String?, rateAfter: String?) -> String {
        """
            daemon off;
            worker_processes 1;
            error_log \(directory.path)/error.log;
            pid \(directory.path)/nginx.pid;
            events { worker_connections 512; }
            http {
              log_format ranges '$request_method $uri $status $body_bytes_sent "$http_range" $request_completion';
              access_log \(directory.path)/access.log ranges;
              client_body_temp_path \(directory.path)/tmp;
              proxy_temp_path \(directory.path)/tmp;
              fastcgi_temp_path \(directory.path)/tmp;
              uwsgi_temp_path \(directory.path)/tmp;
              scgi_temp_path \(directory.path)/tmp;
              server {
                listen 127.0.0.1:\(port);
                root \(directory.path)/www;
                \(rate.map { "limit_rate \($0);" } ?? "")
                \(rateAfter.map { "limit_rate_after \($0);" } ?? "")
                location /forbidden/ { return 403; }
                # A redirect to another host name for the same server (DOWNLOADER_ALLOWED_HOSTS tests).
                location /elsewhere/ { rewrite ^/elsewhere/(.*)$ http://localhost:$server_port/$1 redirect; }
                location /api/ { default_type application/json; }
                location /lfs/ { rewrite ^/lfs/(.*)$ /repos/$1 break; }
                location / {
                  rewrite ^/([^/]+)/([^/]+)/resolve/[^/]+/(.*\\.safetensors)$ /lfs/$1/$2/$3 redirect;
                  rewrite ^/([^/]+)/([^/]+)/resolve/[^/]+/(.*)$ /repos/$1/$2/$3 break;
                }
              }
            }
            """
    }

    /// Starts one on the test thread pool: starting blocks, and the concurrency pool must not.
    static func start(rate: String? = nil, rateAfter: String? = nil) async throws -> NginxServer {
        try await TestThreadPool.shared.runIfActive { try NginxServer(rate: rate, rateAfter: rateAfter) }
    }

    static let executable = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "nginx"

    /// Writes `bytes` at `path` under the web root (directories created).
    func put(_ path: String, _ bytes: [UInt8]) throws {
        let full = root + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
    }

    struct LogLine: Equatable {
        var method: String
        var path: String
        var status: Int
        var bytes: Int
        /// (first, last) byte of the Range header, nil without one.
        var range: (Int, Int?)?
        var completed: Bool
        static func == (a: LogLine, b: LogLine) -> Bool { a.path == b.path && a.status == b.status && a.bytes == b.bytes }
    }

    /// The access log so far. nginx writes a line when the response ends (or the client went away).
    func log() -> [LogLine] {
        let text = (try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let status = Int(fields[2]), let bytes = Int(fields[3]) else { return nil }
            var range: (Int, Int?)? = nil
            let header = fields[4].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if header.hasPrefix("bytes=") {
                let bounds = header.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
                if let first = Int(bounds[0]) { range = (first, bounds.count > 1 ? Int(bounds[1]) : nil) }
            }
            return LogLine(method: String(fields[0]), path: String(fields[1]), status: status, bytes: bytes, range: range, completed: fields[5] == "OK")
        }
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        directory.remove()
    }
}

/// Starts `executable` with its standard error collected in `log` (and its output dropped).
func launchLoggingErrors(_ executable: String, _ arguments: [String], environment: [String: String] = [:], into log: LogBuffer) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    log.drain(errors)
    return process
}

/// moto's S3-compatible server on loopback, and the venv's Python (with boto3) to fill it.
final class MotoServer: @unchecked Sendable {
    let port: Int
    private let process: Process
    private let log = LogBuffer()
    static let venv = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin").path

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// `environment` adds to the test's, e.g. moto's request recorder
    /// (`MOTO_ENABLE_RECORDING`, `MOTO_RECORDER_FILEPATH`).
    init(environment: [String: String] = [:]) throws {
        let log = self.log
        (port, process) = try startOnFreePort(name: "moto_server", log: { log.text }) { port in
            try launchLoggingErrors(Self.venv + "/moto_server", ["-H", "127.0.0.1", "-p", "\(port)"], environment: environment, into: log)
        }
    }

    /// Starts one on the test thread pool: starting blocks, and the concurrency pool must not.
    static func start(environment: [String: String] = [:]) async throws -> MotoServer {
        try await TestThreadPool.shared.runIfActive { try MotoServer(environment: environment) }
    }

    /// `python(script)` on the test thread pool.
    func populate(_ script: String) async throws {
        try await TestThreadPool.shared.runIfActive { try self.python(script) }
    }

    /// Runs a Python script with `s3` bound to a boto3 client of this server.
    func python(_ script: String) throws {
        let prelude = """
            import boto3, os, hashlib
            s3 = boto3.client("s3", endpoint_url="\(endpoint)", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")

            """
        let output = try Program.runBlocking(Self.venv + "/python", ["-c", prelude + script])
        guard output.status == 0 else { throw ServerProcess.StartError(log: "boto3 script failed:\n\(output.stderr)") }
    }

    /// The requests moto served, one line each ("GET /bucket/key?..." and status).
    var requestLog: String { log.text }

    deinit {
        // moto_server (werkzeug) ignores SIGTERM.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Tests/Fixtures/google_fake.py on loopback: a service-account token endpoint that verifies
/// RS256 assertions, a metadata server, and GCS's XML API over `root` that refuses expired
/// tokens. It writes a fresh service-account key to `keyFile` before it listens.
final class GoogleFakeServer: @unchecked Sendable {
    let port: Int
    let root: String
    let keyFile: String
    private let logFile: String
    private let process: Process
    private let log = LogBuffer()

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(directory: TemporaryDirectory, tokenLifetime: Int, storageDelay: Double) throws {
        root = directory.path + "/gcs"
        keyFile = directory.path + "/service-account.json"
        logFile = directory.path + "/google-fake.log"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let (root, keyFile, logFile, log) = (root, keyFile, logFile, self.log)
        (port, process) = try startOnFreePort(name: "google_fake.py", log: { log.text }) { port in
            try launchLoggingErrors(
                MotoServer.venv + "/python",
                [
                    TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/google_fake.py").path, "--port", "\(port)", "--root", root,
                    "--key-file", keyFile, "--log", logFile, "--token-lifetime", "\(tokenLifetime)", "--storage-delay", "\(storageDelay)",
                ], into: log)
        }
    }

    static func start(directory: TemporaryDirectory, tokenLifetime: Int = 3600, storageDelay: Double = 0) async throws -> GoogleFakeServer {
        try await TestThreadPool.shared.runIfActive { try GoogleFakeServer(directory: directory, tokenLifetime: tokenLifetime, storageDelay: storageDelay) }
    }

    /// Puts an object at `bucket/key`.
    func put(bucket: String, key: String, _ bytes: [UInt8]) throws {
        let path = root + "/" + bucket + "/" + key
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// One logged request: `route` is token, metadata or storage.
    struct Entry: Decodable {
        var route: String
        var status: Int
        var issued: String?
        var token: String?
        var method: String?
        var path: String?
        var error: String?
    }

    var entries: [Entry] {
        guard let text = try? String(contentsOfFile: logFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }

    var serverLog: String { log.text }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

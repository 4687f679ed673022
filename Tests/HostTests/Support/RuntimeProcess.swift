import Foundation
import Host
import Synchronization

/// The real `engine-runtime` binary serving on a free loopback port, for integration tests.
final class RuntimeProcess: Sendable {
    let port: Int
    private let process: Process
    private let log: LogBuffer

    /// Starts `engine-runtime serve` with `arguments` and waits until it listens.
    init(arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.binary)
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0"] + arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let log = LogBuffer()
        errors.fileHandleForReading.readabilityHandler = { handle in
            log.append(String(decoding: handle.availableData, as: UTF8.self))
        }
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            Thread.sleep(forTimeInterval: 0.02)
            port = log.text.split(separator: "\n").first { $0.contains("engine-runtime listening") }.flatMap { line in
                    line.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) }
            }
        }
        self.process = process
        self.log = log
        guard let port else {
            process.terminate()
            throw RuntimeStartError(log: log.text)
        }
        self.port = port
    }

    struct RuntimeStartError: Error, CustomStringConvertible {
        let log: String
        var description: String { "engine-runtime did not start listening:\n\(log)" }
    }

    var output: String { log.text }

    /// GETs `path` from the runtime.
    func get(_ path: String) async throws -> HTTPClientResponse {
        let client = CurlHTTPClient()
        let request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)\(path)", timeout: .seconds(10))
        return try await TestThreadPool.shared.runIfActive { client.perform(request) }.get()
    }

    /// Sends SIGTERM and returns the exit status.
    func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Text appended from one thread and read from another.
final class LogBuffer: Sendable {
    private let storage = Mutex("")
    func append(_ text: String) { storage.withLock { $0 += text } }
    var text: String { storage.withLock { $0 } }
}

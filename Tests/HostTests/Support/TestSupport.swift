import Foundation
import Host
import Logging
import NIOPosix

/// Paths of the package, the build products and the C sources the tests compile.
enum TestPaths {
    /// The package root, from this file's location (Tests/HostTests/Support/).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let headerDirectory = packageRoot.appendingPathComponent("Sources/PluginABI/include").path
    static let templateSource = packageRoot.appendingPathComponent("examples/driver-template-c/template_driver.c").path
    static let craftedSource = packageRoot.appendingPathComponent("Tests/Fixtures/crafted_driver.c").path

    /// Where `swift build` put the executable and the driver libraries: the directory of the
    /// running test bundle, or ENGINE_RUNTIME_BUILD_DIR.
    static let buildDirectory: String = {
        if let override = ProcessInfo.processInfo.environment["ENGINE_RUNTIME_BUILD_DIR"] { return override }
        var directory = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ".")
        while directory.path != "/" {
            directory.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("engine-runtime").path) { return directory.path }
        }
        return packageRoot.appendingPathComponent(".build/debug").path
    }()

    static var binary: String { buildDirectory + "/engine-runtime" }
    static var vllmDriver: String { buildDirectory + "/libEngineVLLM.so" }
    static var sglangDriver: String { buildDirectory + "/libEngineSGLang.so" }
}

/// A fresh temporary directory, removed by the caller with `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("engine-runtime-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The result of running a program.
struct ProgramOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Program {
    /// Runs a program to completion and captures its output.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
    ) throws -> ProgramOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProgramOutput(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Compiles C drivers against the public header with the system's `cc`, as a vendor would.
enum CDriverCompiler {
    struct CompileError: Error, CustomStringConvertible {
        let output: String
        var description: String { "cc failed:\n\(output)" }
    }

    static let warnings = ["-Wall", "-Wextra", "-Werror"]

    /// Builds `source` into `directory/name` with extra `-D` flags; returns the .so path.
    static func build(_ source: String, into directory: String, name: String, defines: [String] = []) throws -> String {
        let output = directory + "/" + name
        let arguments =
            ["-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-O1"] + warnings + ["-I", TestPaths.headerDirectory]
            + defines.map { "-D" + $0 } + ["-o", output, source]
        let result = try Program.run("/usr/bin/cc", arguments)
        guard result.status == 0 else { throw CompileError(output: result.stderr) }
        return output
    }
}

extension Logger {
    /// A logger for tests that prints only errors.
    static let quiet: Logger = {
        var logger = Logger(label: "engine-runtime-tests")
        logger.logLevel = .error
        return logger
    }()
}

/// Runs `body` with a started driver-call pool and shuts the pool down afterwards.
func withThreadPool<T>(threads: Int = 2, _ body: (NIOThreadPool) async throws -> T) async throws -> T {
    let pool = NIOThreadPool(numberOfThreads: threads)
    pool.start()
    do {
        let result = try await body(pool)
        try await pool.shutdownGracefully()
        return result
    } catch {
        try? await pool.shutdownGracefully()
        throw error
    }
}

/// Creates an instance of `driver` for `engineKind` at `endpoint`.
func makeInstance(
    _ driver: LoadedDriver, engineKind: String, endpoint: String = "http://127.0.0.1:9", apiKey: String? = nil,
    pool: NIOThreadPool
) async throws -> DriverInstance {
    try await DriverInstance.create(
        driver: driver,
        configuration: InstanceConfiguration(name: "test", engineKind: engineKind, endpoint: endpoint, apiKey: apiKey),
        pool: pool, httpClient: CurlHTTPClient(), logger: .quiet)
}

/// A process-wide pool for blocking calls made directly by tests.
enum TestThreadPool {
    static let shared: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()
}

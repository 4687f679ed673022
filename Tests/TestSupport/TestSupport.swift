import Foundation
import Logging

// What every test target shares: the package's paths, temporary directories, running a
// program, a quiet logger.

/// Paths of the package, the build products and the C sources the tests compile.
package enum TestPaths {
    /// The package root, from this file's location (Tests/TestSupport/).
    package static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    package static let headerDirectory = packageRoot.appendingPathComponent("Sources/PluginABI/include").path
    package static let templateSource = packageRoot.appendingPathComponent("examples/driver-template-c/template_driver.c").path
    package static let craftedSource = packageRoot.appendingPathComponent("Tests/Fixtures/crafted_driver.c").path

    /// Where `swift build` put the executable and the driver libraries: the directory of the
    /// running test bundle, or ENGINE_RUNTIME_BUILD_DIR.
    package static let buildDirectory: String = {
        if let override = ProcessInfo.processInfo.environment["ENGINE_RUNTIME_BUILD_DIR"] { return override }
        var directory = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ".")
        while directory.path != "/" {
            directory.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("engine-runtime").path) { return directory.path }
        }
        return packageRoot.appendingPathComponent(".build/debug").path
    }()

    package static var binary: String { buildDirectory + "/engine-runtime" }
    package static var vllmDriver: String { buildDirectory + "/libEngineVLLM.so" }
    package static var sglangDriver: String { buildDirectory + "/libEngineSGLang.so" }
    package static var llamaCppDriver: String { buildDirectory + "/libEngineLlamaCpp.so" }
    /// The llama-server scripts/setup.sh provides (built once, cached outside the checkout).
    package static var llamaServer: String {
        ProcessInfo.processInfo.environment["ENGINE_RUNTIME_LLAMA_SERVER"] ?? packageRoot.appendingPathComponent(".build/tools/bin/llama-server").path
    }
}

/// A fresh temporary directory, removed by the caller with `remove()`.
package struct TemporaryDirectory {
    package let path: String

    package init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("engine-runtime-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    package func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The result of running a program.
package struct ProgramOutput {
    package var status: Int32
    package var stdout: String
    package var stderr: String
}

package enum Program {
    /// Runs a program to completion and captures its output.
    /// The program runs and is waited for on a thread of its own: Swift Testing runs tests on
    /// the concurrency pool (one thread per core), and a test blocked in a wait there would
    /// stall every in-process server and test on the machine's two cores.
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
    ) async throws -> ProgramOutput {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(executable, arguments, environment: environment, directory: directory) })
            }
        }
    }

    /// `run` on the calling thread, for callers that are on a thread of their own already.
    package static func runBlocking(
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

extension Logger {
    /// A logger for tests that prints only errors.
    package static let quiet: Logger = {
        var logger = Logger(label: "engine-runtime-tests")
        logger.logLevel = .error
        return logger
    }()
}

/// A small deterministic generator for the random tests.
package struct SplitMix64: RandomNumberGenerator {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import Foundation
import TestSupport
import Host
import Logging
import NIOPosix

/// Compiles C drivers against the public header with the system's `cc`, as a vendor would.
enum CDriverCompiler {
    struct CompileError: Error, CustomStringConvertible {
        let output: String
        var description: String { "cc failed:\n\(output)" }
    }

    static let warnings = ["-Wall", "-Wextra", "-Werror"]

    /// Builds `source` into `directory/name` with extra `-D` flags; returns the .so path.
    static func build(_ source: String, into directory: String, name: String, defines: [String] = []) async throws -> String {
        let output = directory + "/" + name
        let arguments =
            ["-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-O1"] + warnings + ["-I", TestPaths.headerDirectory]
            + defines.map { "-D" + $0 } + ["-o", output, source]
        let result = try await Program.run("/usr/bin/cc", arguments)
        guard result.status == 0 else { throw CompileError(output: result.stderr) }
        return output
    }
}

/// Runs `body` with a started driver-call pool and shuts the pool down afterwards.
func withThreadPool<T>(threads: Int = 2, _ body: (WorkerPool) async throws -> T) async throws -> T {
    let pool = WorkerPool(threads: threads)
    do {
        let result = try await body(pool)
        await pool.shutdown()
        return result
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// Creates an instance of `driver` for `engineKind` at `endpoint`.
func makeInstance(
    _ driver: LoadedDriver, engineKind: String, endpoint: String = "http://127.0.0.1:9", apiKey: String? = nil,
    pool: WorkerPool
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

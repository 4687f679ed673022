import Subprocess
#if canImport(Glibc)
import Glibc
#endif
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Runs a program to completion and collects its output (swift-subprocess). Used to run driver
/// conformance checks in a child process, so a driver that crashes takes down the child, not
/// the verdict.
enum ChildProcess {
    struct Outcome {
        var exitCode: Int32?
        var signal: Int32?
        var stdout: [UInt8]
        var stderr: [UInt8]
    }

    /// The most output kept from a child; a conformance report is a few kilobytes.
    static let outputLimit = 16 << 20

    static func run(_ executable: String, _ arguments: [String]) async throws -> Outcome {
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments), output: .bytes(limit: outputLimit),
            error: .bytes(limit: outputLimit))
        switch result.terminationStatus {
        case .exited(let code):
            return Outcome(exitCode: code, signal: nil, stdout: result.standardOutput, stderr: result.standardError)
        case .signaled(let signal):
            return Outcome(exitCode: nil, signal: signal, stdout: result.standardOutput, stderr: result.standardError)
        }
    }
}

import Foundation
import Testing

@testable import Host

#if canImport(Glibc)
import Glibc
#endif

/// Every stop of an engine: SIGTERM to its process group, the grace period, then SIGKILL;
/// on real processes spawned the way engines are.
@Suite struct ProcessStopperTests {
    private func spawn(_ script: String, in directory: String) throws -> ProcessIdentity {
        let pid = try EngineSpawner.spawn(
            program: "/bin/sh", arguments: ["sh", "-c", script], environment: ["PATH": "/usr/bin:/bin"], logPath: directory + "/log",
            workingDirectory: directory)
        // The shell needs a moment to install its trap.
        Thread.sleep(forTimeInterval: 0.2)
        return try #require(ProcessIdentity.of(pid))
    }

    @Test func anEngineThatIgnoresSIGTERMIsKilledAfterTheGracePeriod() async throws {
        let directory = NSTemporaryDirectory() + "stopper-\(getpid())-1"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A leader and a worker in its group, both deaf to SIGTERM.
        let identity = try spawn("trap '' TERM; sleep 60 & wait", in: directory)
        #expect(getpgid(identity.pid) == identity.pid && getsid(identity.pid) == identity.pid, "its own session and group")
        let started = ContinuousClock.now
        await ProcessStopper.stop(identity, grace: .milliseconds(700), logger: .init(label: "test"))
        let took = ContinuousClock.now - started
        #expect(!identity.groupIsAlive)
        #expect(took >= .milliseconds(700), "SIGKILL only after the grace period")
    }

    @Test func anEngineThatStopsOnSIGTERMIsNotKilled() async throws {
        let directory = NSTemporaryDirectory() + "stopper-\(getpid())-2"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let identity = try spawn("trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.05; done", in: directory)
        await ProcessStopper.stop(identity, grace: .seconds(10), logger: .init(label: "test"))
        #expect(!identity.groupIsAlive)
        let log = try String(contentsOfFile: directory + "/log", encoding: .utf8)
        #expect(log.contains("got TERM"), "the engine saw SIGTERM (its mask and handlers were reset at spawn): \(log)")
    }

    @Test func aReusedPidIsNeverSignalled() throws {
        // An identity whose start time is not the process's: as if the pid had been reused.
        let impostor = ProcessIdentity(pid: getpid(), startTime: "1")
        #expect(!impostor.isAlive)
        #expect(!impostor.signalGroup(0))
    }
}

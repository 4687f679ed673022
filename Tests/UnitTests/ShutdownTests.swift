import Foundation
@testable import Host
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// One shutdown path: the service group stops parts in the reverse of their start order, so a
/// part still finds what it uses while it stops.
@Suite struct ShutdownTests {
    final class Answers: Sendable {
        private let list = Mutex<[String]>([])
        func append(_ text: String) { list.withLock { $0.append(text) } }
        var all: [String] { list.withLock { $0 } }
    }

    /// Stands in for the HTTP server: on shutdown it finishes a last piece of work on the pool.
    struct LastRequest: Service {
        let pool: WorkerPool
        let answered: Answers

        func run() async throws {
            try? await gracefulShutdown()
            let result: Result<String, RuntimeError> = await pool.run { usleep(50_000); return .success("answered") }
            answered.append((try? result.get()) ?? "refused: \(result)")
        }
    }

    @Test func theWorkerPoolOutlivesTheServicesStartedAfterIt() async throws {
        let pool = WorkerPool(threads: 1)
        let answered = Answers()
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: pool), .init(service: LastRequest(pool: pool, answered: answered))], logger: .quiet))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(50))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(answered.all == ["answered"])
        let after: Result<Int, RuntimeError> = await pool.run { .success(1) }
        #expect(after.failureKind == .unavailable, "the pool stopped last")
    }

    @Test func downloadsStopWithTheGroupAndRefuseLaterJobs() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let downloads = DownloadManager(
            settings: DownloadSettings(), roots: ArtifactRoots(models: directory.path + "/models", adapters: directory.path + "/adapters"),
            logger: .quiet)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: DownloadsService(downloads: downloads, stagingMaxAge: nil))], logger: .quiet))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(20))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try FileManager.default.createDirectory(atPath: directory.path + "/models/src", withIntermediateDirectories: true)
        let job = try downloads.start(.init(uri: directory.path + "/models/src", modelName: "copy"))
        let result = await job.wait()
        #expect(result.failureKind == .cancelled, "a job after shutdown fails as cancelled")
    }
}

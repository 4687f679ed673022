import Foundation
import Host
import Hummingbird
import HummingbirdTesting
import Logging
import TestSupport

/// The runtime's real router over fake engines and a real download manager in a scratch
/// directory, driven in-process (no socket, no spawned binary).
struct RouterFixture {
    let engines: [FakeEngine]
    let directory: TemporaryDirectory
    let downloads: DownloadManager

    init(engines: [FakeEngine] = [FakeEngine()]) throws {
        self.engines = engines
        directory = try TemporaryDirectory()
        downloads = DownloadManager(
            settings: DownloadSettings(), roots: ArtifactRoots(models: directory.path + "/models", adapters: directory.path + "/adapters"),
            logger: .quiet)
    }

    var engine: FakeEngine { engines[0] }

    func dependencies(authToken: String? = nil) -> RouterDependencies {
        RouterDependencies(
            engines: EngineDirectory(engines: engines, defaultEngine: engines[0]),
            adapters: AdapterService(downloads: downloads, secrets: CredentialsSecrets(directory: directory.path + "/secrets")),
            downloads: downloads, metrics: FixedMetrics(), runtimeMetrics: RuntimeMetrics(drivers: DriverRegistry()),
            drivers: DriverRegistry(), authToken: authToken, maxBodyBytes: 4096)
    }

    /// Runs `body` against the router in-process, then cleans up.
    func test(authToken: String? = nil, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: RuntimeRouter.build(dependencies(authToken: authToken)), logger: .quiet)
        do {
            try await app.test(.router, body)
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    private func cleanUp() async {
        await downloads.shutdown()
        directory.remove()
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The error envelope, when the body is one.
    var envelope: ErrorEnvelope? { try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(text.utf8)) }
}

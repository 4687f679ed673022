import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TestSupport
import Testing

@testable import Host

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12 #10 and #12 against the real binary: downloads that fail or fill the volume leave
/// nothing behind that the API cannot see or remove, planning is never stuck behind transfers,
/// and free space is reserved per job.
struct DownloadDiskTests {
    struct Card: Decodable {
        var model_name: String
        var model_status: String
        var download_id: String?
    }

    struct Cards: Decodable { var data: [Card] }

    static func list(_ runtime: ServerProcess) async throws -> [String: String] {
        let cards = try JSONDecoder().decode(Cards.self, from: Data(try await runtime.get("/v1/model/list").body))
        return Dictionary(uniqueKeysWithValues: cards.data.map { ($0.model_name, $0.model_status) })
    }

    static func waitUntilFinished(_ runtime: ServerProcess, _ id: String) async throws -> DownloadJob.Snapshot {
        try await DownloadAPITests.waitForJob(runtime, id, until: ["completed", "failed", "cancelled"])
    }

    /// A source that breaks after 300 KB of 1 MiB every time (resumable: it has a size and
    /// ranges), one that fails every GET, and one with no size that never ends.
    static func faultyRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let size = 1 << 20
        for path in ["/half.bin", "/never.bin"] {
            router.on(RouterPath(stringLiteral: path), method: .head) { _, _ in
                Response(status: .ok, headers: [.contentLength: "\(size)", .acceptRanges: "bytes"])
            }
        }
        router.get("/half.bin") { _, _ in
            Response(
                status: .ok, headers: [.contentLength: "\(size)"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(repeating: 7, count: 300_000))
                    throw CancellationError()
                })
        }
        router.get("/never.bin") { _, _ in Response(status: .internalServerError) }
        router.on("/endless.bin", method: .head) { _, _ in Response(status: .methodNotAllowed) }
        router.get("/endless.bin") { _, _ in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    let chunk = ByteBuffer(repeating: 1, count: 64 << 10)
                    while true { try await writer.write(chunk) }
                })
        }
        return router
    }

    static func download(_ runtime: ServerProcess, _ url: String, name: String) async throws -> HTTPClientResponse {
        try await timedDownload(runtime, url, name: name).response
    }

    static func timedDownload(_ runtime: ServerProcess, _ url: String, name: String) async throws -> (response: HTTPClientResponse, took: Duration) {
        try await runtime.timedRequest("POST", "/v1/model/download", body: #"{"model_uri":"\#(url)","model_name":"\#(name)"}"#)
    }

    /// A failure with resumable bytes is listed `failed` (not `no_operation` for ever), one
    /// with no bytes leaves nothing, and the API removes staged data, by job or by name.
    @Test func failedStagingIsListedAsFailedAndTheAPIRemovesIt() async throws {
        try await LoopbackServer.with(Self.faultyRouter()) { port in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let engine = try await ServerProcess.simulator("vllm")
            let runtime = try await DownloadAPITests.runtime(directory, engine: engine, environment: ["DOWNLOADER_MAX_ATTEMPTS": "2"])
            let base = "http://127.0.0.1:\(port)"
            let half = try JSONDecoder().decode(Card.self, from: Data(try await Self.download(runtime, base + "/half.bin", name: "half").body))
            #expect(try await Self.waitUntilFinished(runtime, try #require(half.download_id)).state == .failed)
            for index in 0..<5 {
                let card = try JSONDecoder().decode(
                    Card.self, from: Data(try await Self.download(runtime, base + "/never.bin", name: "never\(index)").body))
                if let id = card.download_id { _ = try await Self.waitUntilFinished(runtime, id) }
            }
            let listed = try await Self.list(runtime)
            #expect(listed["half"] == "failed", "\(listed)")
            #expect(listed.keys.filter { $0.hasPrefix("never") }.isEmpty, "failures without data leave nothing: \(listed)")
            let staging = directory.path + "/models/.engine-runtime/staging"
            #expect((try FileManager.default.contentsOfDirectory(atPath: staging)) == ["half"])

            let removed = try await runtime.request("DELETE", "/v1/model/staging?model_name=half")
            #expect(removed.status == 200, "\(removed.text)")
            #expect(try await Self.list(runtime)["half"] == nil)
            #expect(try await runtime.request("DELETE", "/v1/model/staging?model_name=half").status == 404)

            // By job: cancel-and-discard in one call.
            let again = try JSONDecoder().decode(Card.self, from: Data(try await Self.download(runtime, base + "/half.bin", name: "half").body))
            let id = try #require(again.download_id)
            _ = try await Self.waitUntilFinished(runtime, id)
            #expect(try await runtime.request("DELETE", "/v1/downloads/\(id)?discard=true").status == 200)
            #expect(try await Self.list(runtime)["half"] == nil)
        }
    }

    /// Staged data older than ENGINE_RUNTIME_STAGING_MAX_AGE is removed when the runtime starts.
    @Test func oldStagedDataIsSweptAtStart() async throws {
        try await LoopbackServer.with(Self.faultyRouter()) { port in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let engine = try await ServerProcess.simulator("vllm")
            let first = try await DownloadAPITests.runtime(directory, engine: engine, environment: ["DOWNLOADER_MAX_ATTEMPTS": "1"])
            let card = try JSONDecoder().decode(
                Card.self, from: Data(try await Self.download(first, "http://127.0.0.1:\(port)/half.bin", name: "half").body))
            _ = try await Self.waitUntilFinished(first, try #require(card.download_id))
            #expect(try await Self.list(first)["half"] == "failed")
            _ = try await TestThreadPool.shared.runIfActive { first.terminate() }
            try await Task.sleep(for: .seconds(2))
            let second = try await DownloadAPITests.runtime(
                directory, engine: engine, environment: ["ENGINE_RUNTIME_STAGING_MAX_AGE": "1"])
            for _ in 0..<50 where try await Self.list(second)["half"] != nil { try await Task.sleep(for: .milliseconds(100)) }
            #expect(try await Self.list(second)["half"] == nil)
            #expect(second.output.contains("old staged download data removed"))
        }
    }

    /// Issue 12 #12: with every transfer slot busy, a new download is still planned at once:
    /// its answer does not wait for a slot, and a missing file is reported now.
    @Test func planningIsNeverQueuedBehindTransfers() async throws {
        let nginx = try await NginxServer.start(rate: "1k")
        for index in 0..<5 { try nginx.put("files/slow\(index).bin", DownloadCLITests.randomBytes(1 << 20)) }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await DownloadAPITests.runtime(directory, engine: engine)
        for index in 0..<4 {
            #expect(try await Self.download(runtime, nginx.baseURL + "/files/slow\(index).bin", name: "slow\(index)").status == 200)
        }
        let (fifth, took) = try await Self.timedDownload(runtime, nginx.baseURL + "/files/slow4.bin", name: "slow4")
        #expect(fifth.status == 200)
        #expect(took < .seconds(5), "answered after \(took)")
        let snapshot = try JSONDecoder().decode(
            DownloadJob.Snapshot.self,
            from: Data(try await runtime.get("/v1/downloads/\(try #require(try JSONDecoder().decode(Card.self, from: Data(fifth.body)).download_id))").body))
        #expect(snapshot.state == .queued, "planned, waiting for a transfer slot")
        #expect(snapshot.bytes_total == 1 << 20)
        let (missing, missingTook) = try await Self.timedDownload(runtime, nginx.baseURL + "/files/nothing.bin", name: "nothing")
        #expect(missing.status == 404, "\(missing.text)")
        #expect(missingTook < .seconds(5))
    }

    /// Issue 12 #6: a working file planted as a symbolic link (a progress file's temporary
    /// pointing at a file outside the roots) is never written through.
    @Test func aWorkingFilePlantedAsALinkIsNotFollowed() async throws {
        let nginx = try await NginxServer.start()
        try nginx.put("files/one.bin", [UInt8](repeating: 5, count: 4096))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let victim = directory.path + "/outside/victim.txt"
        try FileManager.default.createDirectory(atPath: directory.path + "/outside", withIntermediateDirectories: true)
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        let state = directory.path + "/models/.engine-runtime/staging/one/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: state + "/one.bin.json.tmp", withDestinationPath: victim)
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await DownloadAPITests.runtime(directory, engine: engine)
        let answer = try await Self.download(runtime, nginx.baseURL + "/files/one.bin", name: "one")
        if let id = try? JSONDecoder().decode(Card.self, from: Data(answer.body)).download_id {
            _ = try await Self.waitUntilFinished(runtime, id)
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious", "the link was followed")
    }

    // MARK: A small volume

    /// A 20 MiB tmpfs, when this machine lets the tests mount one (root).
    final class SmallVolume: Sendable {
        let path: String
        private let directory: TemporaryDirectory

        init?() {
            guard let directory = try? TemporaryDirectory() else { return nil }
            self.directory = directory
            path = directory.path + "/volume"
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard Self.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", path]) else {
                directory.remove()
                return nil
            }
        }

        deinit {
            _ = Self.run(["umount", "-l", path])
            directory.remove()
        }

        var free: Int64 { StagingDirectory.freeBytes(at: path) ?? 0 }

        static func run(_ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }

        static let canMount: Bool = SmallVolume() != nil
    }

    /// Two downloads that each fit but not together: the second is refused at once (507),
    /// where both used to pass the free-space check and both fail.
    @Test(.enabled(if: SmallVolume.canMount, "needs root to mount a 20 MiB tmpfs"))
    func freeSpaceIsReservedPerJob() async throws {
        let volume = try #require(SmallVolume())
        let nginx = try await NginxServer.start(rate: "1k", rateAfter: "1m")
        try nginx.put("files/a.bin", [UInt8](repeating: 1, count: 12 << 20))
        try nginx.put("files/b.bin", [UInt8](repeating: 2, count: 12 << 20))
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(
            for: engine, flavor: "vllm", environment: ["DOWNLOADER_LOCAL_DIR": volume.path + "/models"])
        #expect(try await Self.download(runtime, nginx.baseURL + "/files/a.bin", name: "a").status == 200)
        let second = try await Self.download(runtime, nginx.baseURL + "/files/b.bin", name: "b")
        #expect(second.status == 507, "\(second.text)")
        #expect(second.text.contains("promised to other downloads"))
    }

    /// An endless source fills the volume: the download fails (507) and its bytes, which no
    /// resume could use, are removed, so the volume is free again.
    @Test(.enabled(if: SmallVolume.canMount, "needs root to mount a 20 MiB tmpfs"))
    func anEndlessSourceThatFillsTheVolumeLeavesNothingBehind() async throws {
        let volume = try #require(SmallVolume())
        try await LoopbackServer.with(Self.faultyRouter()) { port in
            let engine = try await ServerProcess.simulator("vllm")
            let runtime = try await ServerProcess.runtime(
                for: engine, flavor: "vllm", environment: ["DOWNLOADER_LOCAL_DIR": volume.path + "/models", "DOWNLOADER_MAX_ATTEMPTS": "1"])
            let card = try JSONDecoder().decode(
                Card.self, from: Data(try await Self.download(runtime, "http://127.0.0.1:\(port)/endless.bin", name: "endless").body))
            let done = try await Self.waitUntilFinished(runtime, try #require(card.download_id))
            #expect(done.state == .failed)
            #expect(done.error_kind == .storage, "\(done.error ?? "")")
            #expect(volume.free > 19 << 20, "the volume is free again: \(volume.free) bytes")
            #expect(try await Self.list(runtime)["endless"] == nil)
        }
    }
}

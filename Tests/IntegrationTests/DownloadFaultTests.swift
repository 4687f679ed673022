import Foundation
import Logging
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import Host

/// Transport faults a real server can produce, served by a Hummingbird server on loopback to
/// the download stack: a connection reset in the middle of a body, and a server that stalls.
struct DownloadFaultTests {
    static let content: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    final class Seen: Sendable {
        let ranges = Mutex<[String]>([])
    }

    static func router(seen: Seen) -> Router<BasicRequestContext> {
        let router = Router()
        let length = "\(content.count)"
        for path in ["/reset.bin", "/stall.bin"] {
            router.on(RouterPath(stringLiteral: path), method: .head) { _, _ in
                Response(status: .ok, headers: [.contentLength: length, .acceptRanges: "bytes"])
            }
        }
        // The first answer stops after 300 KB and drops the connection; later ones honour Range.
        router.get("/reset.bin") { request, _ in
            let range = request.headers[.range] ?? ""
            let first = seen.ranges.withLock { ranges in
                ranges.append(range)
                return ranges.count == 1
            }
            if first {
                return Response(
                    status: .ok, headers: [.contentLength: length],
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(bytes: content[..<300_000]))
                        throw CancellationError()
                    })
            }
            let start = Int(range.dropFirst("bytes=".count).split(separator: "-").first ?? "0") ?? 0
            return Response(
                status: .partialContent,
                headers: [.contentLength: "\(content.count - start)", .contentRange: "bytes \(start)-\(content.count - 1)/\(content.count)"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: content[start...])))
        }
        router.get("/stall.bin") { _, _ in
            Response(
                status: .ok, headers: [.contentLength: length],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(bytes: content[..<1000]))
                    try await Task.sleep(for: .seconds(5))
                })
        }
        return router
    }

    static func run(_ url: String, settings: DownloadSettings, into directory: TemporaryDirectory) async -> Result<ArtifactTarget, RuntimeError> {
        let manager = DownloadManager(settings: settings, roots: ArtifactRoots(models: directory.path), logger: .quiet)
        do throws(RuntimeError) {
            return try await manager.start(.init(uri: url, localDir: directory.path, modelName: "m")).wait()
        } catch {
            return .failure(error)
        }
    }

    @Test func aResetConnectionIsRetriedFromWhereItStopped() async throws {
        let seen = Seen()
        try await LoopbackServer.with(Self.router(seen: seen)) { port in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let result = await Self.run("http://127.0.0.1:\(port)/reset.bin", settings: DownloadSettings(), into: directory)
            let target = try result.get()
            #expect(DownloadCLITests.holds(target.path + "/reset.bin", Self.content))
            let ranges = seen.ranges.withLock { $0 }
            #expect(ranges.count == 2)
            let resumedFrom = Int(ranges.last?.dropFirst("bytes=".count).split(separator: "-").first ?? "") ?? 0
            #expect(resumedFrom > 0 && resumedFrom <= 300_000, "the retry asked for the rest only: \(ranges)")
        }
    }

    /// The stalling route also ignores Range, so each attempt starts the file over.
    @Test func aServerThatStallsPastTheTimeoutFailsTheDownload() async throws {
        try await LoopbackServer.with(Self.router(seen: Seen())) { port in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            var settings = DownloadSettings()
            settings.stallTimeoutSeconds = 1
            settings.maxAttempts = 2
            let result = await Self.run("http://127.0.0.1:\(port)/stall.bin", settings: settings, into: directory)
            guard case .failure(let error) = result else {
                Issue.record("a stalled download succeeded")
                return
            }
            #expect(error.kind == .timeout)
            #expect(error.message.contains("no data for 1 s"), "\(error.message)")
            #expect(error.message.contains("after 2 attempts"))
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/m"))
        }
    }
}

import Crypto
import Foundation
@testable import Host
import TestSupport
import Testing

/// Staged files are hashed on the `DigestWorker`'s thread as they are written, in whatever order
/// the parts arrive; verification reads back only what that did not cover.
@Suite struct RunningDigestTests {
    let hashers = ElasticThreadPool(maximum: 2, name: "test-digest")
    static let partSize = 100 << 10
    static let content: [UInt8] = (0..<(3 * partSize)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    func staged(_ directory: TemporaryDirectory, digest: ExpectedDigest, parts: Bool = true) throws -> StagedFile {
        var settings = DownloadSettings()
        settings.partThreshold = Int64(Self.partSize)
        settings.partChunkSize = Int64(Self.partSize)
        let remote = RemoteFile(
            relativePath: "weights.bin", url: "http://127.0.0.1:1/weights.bin", size: Int64(Self.content.count), digest: digest,
            etag: nil, acceptsRanges: parts)
        return try StagedFile(remote: remote, stagingRoot: directory.path, settings: settings)
    }

    /// Writes part `index` (from where it is) in 16 KiB pieces, as libcurl hands them over.
    func write(_ file: StagedFile, part index: Int, upTo limit: Int? = nil) {
        let start = Int(file.parts[index].start + file.parts[index].done)
        let end = limit ?? Int(file.parts[index].start + (file.parts[index].length ?? 0))
        Self.content[start..<end].withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(offset + 16_384, bytes.count)])
                #expect(file.write(piece, part: index) == nil)
                offset += piece.count
            }
        }
    }

    /// Waits (at most 10 s) until the worker has hashed `bytes` of the file.
    func waitUntil(_ worker: DigestWorker, hashed bytes: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while worker.hashedBytes(0) < Int64(bytes), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(worker.hashedBytes(0) == Int64(bytes))
    }

    func verify(_ file: StagedFile, _ running: RunningDigest?) throws -> String? {
        try FileDigest.mismatch(path: file.dataPath, size: file.remote.size, expected: file.remote.digest, name: "weights.bin", running: running)
    }

    @Test func theFrontierMovesOnlyOverBytesWrittenWithoutAGap() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try staged(directory, digest: .sha256(FileDigest.hex(SHA256.hash(data: Self.content))))
        #expect(file.parts.count == 3)
        write(file, part: 1)
        #expect(file.frontier.end == 0)
        write(file, part: 0, upTo: 50_000)
        #expect(file.frontier.end == 50_000)
        write(file, part: 0)
        // Part 0 done: the frontier runs on over part 1, which finished first.
        #expect(file.frontier.end == Int64(2 * Self.partSize))
        write(file, part: 2)
        #expect(file.frontier.end == Int64(Self.content.count))
    }

    @Test func partsAreHashedWhileTheyArriveWithNothingLeftToRead() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try staged(directory, digest: .md5(FileDigest.hex(Insecure.MD5.hash(data: Self.content))))
        let worker = DigestWorker([file], threads: hashers)
        worker.start()
        write(file, part: 1)
        write(file, part: 0)
        try await waitUntil(worker, hashed: 2 * Self.partSize)
        write(file, part: 2)
        try await waitUntil(worker, hashed: Self.content.count)
        let hashed = worker.finish()
        #expect(hashed.first??.bytes == Int64(Self.content.count))
        #expect(try verify(file, hashed[0]) == nil)
    }

    @Test func aDigestThatDoesNotMatchIsReportedWhateverWasHashedOnTheWay() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var other = Self.content
        other[150_000] ^= 1
        let file = try staged(directory, digest: .sha256(FileDigest.hex(SHA256.hash(data: other))))
        let worker = DigestWorker([file], threads: hashers)
        worker.start()
        for index in [2, 0, 1] { write(file, part: index) }
        try await waitUntil(worker, hashed: Self.content.count)
        let problem = try verify(file, worker.finish()[0])
        #expect(problem?.contains("does not match its sha256") == true)
    }

    @Test func aRestartedOnePartFileIsHashedFromItsFirstByteAgain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let blob = Array("blob \(Self.content.count)\u{0}".utf8) + Self.content
        let file = try staged(directory, digest: .gitBlobSHA1(FileDigest.hex(Insecure.SHA1.hash(data: blob))), parts: false)
        #expect(file.parts.count == 1)
        let worker = DigestWorker([file], threads: hashers)
        worker.start()
        write(file, part: 0, upTo: 50_000)
        try await waitUntil(worker, hashed: 50_000)
        // A server that answered a Range request with the whole file: byte 0 comes again, and
        // what was hashed of the first answer must not count.
        let epoch = file.frontier.epoch
        file.restart(part: 0)
        #expect(file.frontier.epoch == epoch + 1)
        #expect(file.frontier.end == 0)
        write(file, part: 0)
        try await waitUntil(worker, hashed: Self.content.count)
        #expect(try verify(file, worker.finish()[0]) == nil)
    }

    @Test func aResumedFilesEarlierBytesAreHashedFromDisk() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let expected = ExpectedDigest.sha256(FileDigest.hex(SHA256.hash(data: Self.content)))
        let first = try staged(directory, digest: expected)
        write(first, part: 0)
        try first.saveIfChanged()
        first.closeDescriptor()
        let resumed = try staged(directory, digest: expected)
        #expect(resumed.parts[0].isComplete)
        #expect(resumed.frontier.end == Int64(Self.partSize))
        let worker = DigestWorker([resumed], threads: hashers)
        worker.start()
        write(resumed, part: 1)
        write(resumed, part: 2)
        try await waitUntil(worker, hashed: Self.content.count)
        #expect(try verify(resumed, worker.finish()[0]) == nil)
    }

    @Test func verificationReadsWhatTheWorkerHadNotReached() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try staged(directory, digest: .sha256(FileDigest.hex(SHA256.hash(data: Self.content))))
        for index in 0..<3 { write(file, part: index) }
        // Never started: nothing hashed, so everything is read back.
        let hashed = DigestWorker([file], threads: hashers).finish()
        #expect(hashed.first??.bytes == 0)
        #expect(try verify(file, hashed[0]) == nil)
        #expect(try verify(file, nil) == nil)
    }
}

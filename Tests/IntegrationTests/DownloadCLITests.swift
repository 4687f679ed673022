import Crypto
import Foundation
import TestSupport
import Testing

@testable import Host

/// The download stack through the real `engine-runtime download` binary, against real
/// servers on loopback: nginx (plain files with Range and ETag, and a Hugging Face-style
/// mirror) and moto_server (S3, and the TOS and GCS forms through S3 interoperability).
struct DownloadCLITests {
    // MARK: Helpers

    static func download(_ arguments: [String], environment: [String: String] = [:], fileSizeLimitKiB: Int? = nil) async throws -> ProgramOutput {
        let argv = ["download"] + arguments + ["--log-level", "warning"]
        return try await TestThreadPool.shared.runIfActive {
            if let limit = fileSizeLimitKiB {
                let quoted = ([TestPaths.binary] + argv).map { "'\($0)'" }.joined(separator: " ")
                return try Program.runBlocking("/bin/bash", ["-c", "ulimit -f \(limit); exec \(quoted)"], environment: ServerProcess.cleanEnvironment(environment))
            }
            return try Program.runBlocking(TestPaths.binary, argv, environment: ServerProcess.cleanEnvironment(environment))
        }
    }

    static func start(_ arguments: [String], environment: [String: String] = [:], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.binary)
        process.arguments = ["download"] + arguments + ["--log-level", "warning"]
        process.environment = ServerProcess.cleanEnvironment(environment)
        process.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        return process
    }

    struct SavedPart: Decodable {
        var start: Int64
        var length: Int64?
        var done: Int64
    }

    static func savedParts(_ statePath: String) -> [SavedPart] {
        struct State: Decodable { var parts: [SavedPart] }
        guard let data = FileManager.default.contents(atPath: statePath) else { return [] }
        return (try? JSONDecoder().decode(State.self, from: data))?.parts ?? []
    }

    /// Starts a download, and kills it (SIGKILL) once `statePath` records `bytes` done.
    static func killMidway(_ arguments: [String], statePath: String, bytes: Int64, environment: [String: String] = [:]) async throws -> [SavedPart] {
        let log = NSTemporaryDirectory() + "/download-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try start(arguments, environment: environment, log: log)
        // Watched from a thread of its own, so a busy concurrency pool cannot make it late.
        try await TestThreadPool.shared.runIfActive {
            var done: Int64 = 0
            for _ in 0..<800 where done < bytes && process.isRunning {
                usleep(25_000)
                done = savedParts(statePath).reduce(0) { $0 + $1.done }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(process.terminationReason == .uncaughtSignal, "the download ended before it could be killed: \(output)")
        return savedParts(statePath)
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

    /// Whether the file at `path` holds exactly `bytes` (a Bool, so a failure does not print megabytes).
    static func holds(_ path: String, _ bytes: [UInt8]) -> Bool { contents(path) == bytes }

    static func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    // MARK: HTTP

    @Test func killedDownloadResumesWithoutFetchingFinishedRangesAgain() async throws {
        // 4 connections at 256 KB/s: the download takes 8 s, so the kill lands mid-way even
        // on a loaded machine.
        let nginx = try await NginxServer.start(rate: "256k")
        let content = Self.randomBytes(8 << 20)
        try nginx.put("files/model.bin", content)
        let local = try TemporaryDirectory()
        defer { local.remove() }
        let arguments = [
            "--model-uri", nginx.baseURL + "/files/model.bin", "--local-dir", local.path, "--model-name", "m",
            "--part-threshold", "524288", "--part-chunksize", "524288", "--num-threads", "4",
        ]
        let statePath = local.path + "/.engine-runtime/staging/m/state/model.bin.json"
        let saved = try await Self.killMidway(arguments, statePath: statePath, bytes: 1 << 20)
        let savedBytes = saved.reduce(0) { $0 + $1.done }
        #expect(savedBytes >= 1 << 20)
        #expect(!FileManager.default.fileExists(atPath: local.path + "/m"), "a half download must not be visible under its name")

        try await Task.sleep(for: .seconds(1))  // nginx logs the killed connections when it notices them
        let before = nginx.log().count
        let second = try await Self.download(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(Self.holds(local.path + "/m/model.bin", content))

        let resumed = nginx.log().dropFirst(before).filter { $0.method == "GET" && $0.path == "/files/model.bin" }
        #expect(!resumed.isEmpty)
        for line in resumed {
            let (first, last) = try #require(line.range, "every resumed request is ranged")
            let end = Int64(last ?? content.count - 1)
            for part in saved where part.done > 0 {
                let finishedEnd = part.start + part.done - 1
                #expect(Int64(first) > finishedEnd || end < part.start, "bytes \(first)-\(end) were fetched again; \(part.start)-\(finishedEnd) were on disk")
            }
        }
        let refetched = resumed.reduce(0) { $0 + $1.bytes }
        #expect(refetched <= content.count - Int(savedBytes))
        #expect(!FileManager.default.fileExists(atPath: local.path + "/.engine-runtime/staging/m"))
    }

    @Test func httpErrorsEndWithOneClearLine() async throws {
        let nginx = try await NginxServer.start()
        let local = try TemporaryDirectory()
        defer { local.remove() }
        let forbidden = try await Self.download(["--model-uri", nginx.baseURL + "/forbidden/x.bin", "--local-dir", local.path])
        #expect(forbidden.status == 1)
        #expect(forbidden.stderr.split(separator: "\n").last?.hasPrefix("error: ") == true)
        #expect(forbidden.stderr.contains("403"), "\(forbidden.stderr)")
        let missing = try await Self.download(["--model-uri", nginx.baseURL + "/nothing/here.bin", "--local-dir", local.path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("not found"), "\(missing.stderr)")
        let bad = try await Self.download(["--model-uri", "ftp://example/x", "--local-dir", local.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("unsupported artifact URI scheme"))
        let badName = try await Self.download(["--model-uri", nginx.baseURL + "/x", "--local-dir", local.path, "--model-name", "../up"])
        #expect(badName.status == 1)
        #expect(badName.stderr.contains("model_name"))
    }

    @Test func aWriteFailureIsReportedAndTheDownloadResumesLater() async throws {
        let nginx = try await NginxServer.start()
        let content = Self.randomBytes(3 << 20)
        try nginx.put("files/w.bin", content)
        let local = try TemporaryDirectory()
        defer { local.remove() }
        let arguments = ["--model-uri", nginx.baseURL + "/files/w.bin", "--local-dir", local.path, "--num-threads", "1"]
        let limited = try await Self.download(arguments, fileSizeLimitKiB: 1024)
        #expect(limited.status == 1)
        #expect(limited.stderr.split(separator: "\n").last?.contains("File too large") == true, "\(limited.stderr)")
        let saved = Self.savedParts(local.path + "/.engine-runtime/staging/w.bin/state/w.bin.json").reduce(0) { $0 + $1.done }
        #expect(saved > 0, "the bytes written before the failure are kept")

        let before = nginx.log().count
        let retried = try await Self.download(arguments)
        #expect(retried.status == 0, "\(retried.stderr)")
        #expect(Self.holds(local.path + "/w.bin/w.bin", content))
        let refetched = nginx.log().dropFirst(before).filter { $0.method == "GET" }.reduce(0) { $0 + $1.bytes }
        #expect(refetched == content.count - Int(saved))
    }

    // MARK: Hugging Face

    @Test func huggingFaceMirrorWithVerificationAndACorruptedByteRefetched() async throws {
        let nginx = try await NginxServer.start(rate: "256k")
        let weights = Self.randomBytes(6 << 20)
        let config = Array(#"{"architectures":["LlamaForCausalLM"]}"#.utf8)
        let vocab = Array("hello\nworld\n".utf8)
        try nginx.put("repos/org/tiny/model.safetensors", weights)
        try nginx.put("repos/org/tiny/config.json", config)
        try nginx.put("repos/org/tiny/tokenizer/vocab.txt", vocab)
        func blob(_ bytes: [UInt8]) -> String { Self.hex(Insecure.SHA1.hash(data: Array("blob \(bytes.count)\u{0}".utf8) + bytes)) }
        let info = """
            {"id":"org/tiny","sha":"0123456789abcdef0123456789abcdef01234567","siblings":[
              {"rfilename":"config.json","size":\(config.count),"blobId":"\(blob(config))"},
              {"rfilename":"tokenizer/vocab.txt","size":\(vocab.count),"blobId":"\(blob(vocab))"},
              {"rfilename":"model.safetensors","size":\(weights.count),"blobId":"\(blob(weights))",
               "lfs":{"sha256":"\(Self.hex(SHA256.hash(data: weights)))","size":\(weights.count),"pointerSize":134}}]}
            """
        try nginx.put("api/models/org/tiny/revision/main", Array(info.utf8))
        let local = try TemporaryDirectory()
        defer { local.remove() }
        let environment = ["HF_ENDPOINT": nginx.baseURL]
        let arguments = [
            "--model-uri", "hf://org/tiny", "--local-dir", local.path, "--part-threshold", "524288", "--part-chunksize", "524288",
            "--num-threads", "4",
        ]
        let staged = local.path + "/.engine-runtime/staging/org+tiny"
        let saved = try await Self.killMidway(
            arguments, statePath: staged + "/state/model.safetensors.json", bytes: 1 << 20, environment: environment)
        let finished = try #require(saved.first { $0.done > 0 })
        #expect(saved.reduce(0) { $0 + $1.done } < Int64(weights.count), "killed during the transfer")
        // Flip one byte the saved state says is finished: only the sha256 can notice.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: staged + "/files/model.safetensors"))
        try handle.seek(toOffset: UInt64(finished.start))
        let original = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(finished.start))
        try handle.write(contentsOf: [original ^ 0xFF])
        try handle.close()

        let result = try await Self.download(arguments + ["--log-level", "warning"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("verification failed"), "the damage must be noticed: \(result.stderr)")
        #expect(Self.holds(local.path + "/org/tiny/model.safetensors", weights))
        #expect(Self.holds(local.path + "/org/tiny/config.json", config))
        #expect(Self.holds(local.path + "/org/tiny/tokenizer/vocab.txt", vocab))
        #expect(nginx.log().contains { $0.status == 302 && $0.path.hasSuffix("model.safetensors") }, "the LFS redirect was followed")
        let manifest = try #require(Self.contents(local.path + "/org/tiny/.cache/engine-runtime/manifest.json"))
        #expect(String(decoding: manifest, as: UTF8.self).contains("0123456789abcdef0123456789abcdef01234567"))

        // A second run with the directory complete fetches nothing.
        let before = nginx.log().count
        let again = try await Self.download(arguments, environment: environment)
        #expect(again.status == 0)
        #expect(nginx.log().count == before)
    }

    // MARK: Object stores

    @Test func objectStoresListPagesNestedKeysBigFilesAndEveryForm() async throws {
        let moto = try await MotoServer.start()
        try await moto.populate(
            """
            s3.create_bucket(Bucket="models")
            for i in range(1050):
                s3.put_object(Bucket="models", Key=f"many/d{i % 5}/sub/f{i}.txt", Body=f"object {i}".encode())
            s3.put_object(Bucket="models", Key="llama/config.json", Body=b'{"a": 1}')
            s3.put_object(Bucket="models", Key="llama/weights/model.bin", Body=bytes(range(256)) * 12288)
            s3.put_object(Bucket="models", Key="evil/ok.txt", Body=b"ok")
            s3.put_object(Bucket="models", Key="evil/../../escape.txt", Body=b"escaped")
            """)
        let local = try TemporaryDirectory()
        defer { local.remove() }
        let s3 = ["AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"]

        let many = try await Self.download(["--model-uri", "s3://models/many", "--local-dir", local.path], environment: s3)
        #expect(many.status == 0, "\(many.stderr)")
        let files = try FileManager.default.subpathsOfDirectory(atPath: local.path + "/many").filter { $0.hasSuffix(".txt") }
        #expect(files.count == 1050, "every page of the listing (1,000 keys each) was followed")
        #expect(Self.holds(local.path + "/many/d3/sub/f1048.txt", Array("object 1048".utf8)))

        let big = Array((0..<12288).flatMap { _ in (0...255).map { UInt8($0) } })
        let ranged = try await Self.download(
            ["--model-uri", "s3://models/llama/", "--local-dir", local.path, "--part-threshold", "1048576", "--part-chunksize", "1048576"],
            environment: s3)
        #expect(ranged.status == 0, "\(ranged.stderr)")
        #expect(Self.holds(local.path + "/llama/weights/model.bin", big))
        #expect(moto.requestLog.contains("model.bin"))

        let tos = try await Self.download(
            ["--model-uri", "tos://models/llama", "--local-dir", local.path, "--model-name", "llama-tos", "--allow-file-suffix", ".json"],
            environment: ["TOS_ENDPOINT": moto.endpoint, "TOS_ACCESS_KEY": "test", "TOS_SECRET_KEY": "test", "TOS_REGION": "us-east-1"])
        #expect(tos.status == 0, "\(tos.stderr)")
        #expect(Self.holds(local.path + "/llama-tos/config.json", Array(#"{"a": 1}"#.utf8)))
        #expect(!FileManager.default.fileExists(atPath: local.path + "/llama-tos/weights"), "the suffix filter kept only .json")

        let gcs = try await Self.download(
            ["--model-uri", "gs://models/llama/config.json", "--local-dir", local.path, "--model-name", "llama-gcs"],
            environment: ["GCS_ENDPOINT": moto.endpoint, "GCS_ACCESS_KEY_ID": "test", "GCS_SECRET_ACCESS_KEY": "test"])
        #expect(gcs.status == 0, "\(gcs.stderr)")
        #expect(Self.holds(local.path + "/llama-gcs/config.json", Array(#"{"a": 1}"#.utf8)))

        // Virtual-host addressing: bucket.localhost resolves to loopback in libcurl.
        let virtual = try await Self.download(
            ["--model-uri", "s3://models/llama/config.json", "--local-dir", local.path, "--model-name", "llama-virtual"],
            environment: s3.merging(["AWS_ENDPOINT_URL": "http://localhost:\(moto.port)", "DOWNLOADER_S3_ADDRESSING_STYLE": "virtual"]) { $1 })
        #expect(virtual.status == 0, "\(virtual.stderr)")
        #expect(Self.holds(local.path + "/llama-virtual/config.json", Array(#"{"a": 1}"#.utf8)))

        let escape = try await Self.download(["--model-uri", "s3://models/evil/", "--local-dir", local.path + "/inner"], environment: s3)
        #expect(escape.status == 1)
        #expect(escape.stderr.contains("refusing object key"), "\(escape.stderr)")
        #expect(!FileManager.default.fileExists(atPath: local.path + "/escape.txt"))
        #expect(!FileManager.default.fileExists(atPath: local.path + "/inner/evil"))

        let denied = try await Self.download(
            ["--model-uri", "s3://models/llama/", "--local-dir", local.path, "--model-name", "x"], environment: s3.merging(["AWS_SECRET_ACCESS_KEY": ""]) { $1 })
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("both an access key and a secret key"), "\(denied.stderr)")
    }
}

import Foundation
import TestSupport
import Testing

@testable import Host

/// The download routes of the real binary: AIBrix's /v1/model/download and /v1/model/list,
/// the jobs API, and LoRA artifacts (download, load, unload with cleanup), against moto and
/// nginx on loopback.
struct DownloadAPITests {
    struct Card: Decodable {
        var model_name: String
        var model_root_path: String
        var source: String
        var model_status: String
        var download_id: String?
    }

    struct Cards: Decodable { var data: [Card] }

    /// A runtime whose download roots, secrets and S3 endpoint live in `directory`.
    static func runtime(_ directory: TemporaryDirectory, engine: ServerProcess, environment: [String: String] = [:]) async throws -> ServerProcess {
        var env = [
            "DOWNLOADER_LOCAL_DIR": directory.path + "/models", "ENGINE_RUNTIME_ADAPTER_DIR": directory.path + "/adapters",
            "ENGINE_RUNTIME_SECRETS_DIR": directory.path + "/secrets",
        ]
        env.merge(environment) { $1 }
        return try await ServerProcess.runtime(for: engine, flavor: "vllm", environment: env)
    }

    static func waitForJob(_ runtime: ServerProcess, _ id: String, until states: Set<String>) async throws -> DownloadJob.Snapshot {
        for _ in 0..<300 {
            let snapshot = try JSONDecoder().decode(DownloadJob.Snapshot.self, from: Data(try await runtime.get("/v1/downloads/\(id)").body))
            if states.contains(snapshot.state.rawValue) { return snapshot }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServerProcess.StartError(log: "download \(id) never reached \(states)")
    }

    /// Waits (up to ten seconds) until job `id` has `bytes` on disk.
    static func waitForBytes(_ runtime: ServerProcess, _ id: String, atLeast bytes: Int64) async throws {
        for _ in 0..<100 {
            let snapshot = try JSONDecoder().decode(DownloadJob.Snapshot.self, from: Data(try await runtime.get("/v1/downloads/\(id)").body))
            if snapshot.bytes_done >= bytes { return }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func modelDownloadListJobsAndErrors() async throws {
        let moto = try await MotoServer.start()
        try await moto.populate(
            """
            s3.create_bucket(Bucket="models")
            s3.put_object(Bucket="models", Key="qwen/config.json", Body=b'{"model_type": "qwen2"}')
            s3.put_object(Bucket="models", Key="qwen/model.bin", Body=os.urandom(2 * 1024 * 1024))
            """)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await Self.runtime(
            directory, engine: engine,
            environment: ["AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"])

        let started = try await runtime.post("/v1/model/download", #"{"model_uri":"s3://models/qwen/"}"#)
        #expect(started.status == 200, "\(started.text)")
        let card = try JSONDecoder().decode(Card.self, from: Data(started.body))
        #expect(card.model_name == "qwen")
        #expect(card.model_root_path == directory.path + "/models/qwen")
        #expect(card.source == "s3")
        #expect(["downloading", "downloaded"].contains(card.model_status))
        let id = try #require(card.download_id)
        let done = try await Self.waitForJob(runtime, id, until: ["completed", "failed"])
        #expect(done.state == .completed, "\(done.error ?? "")")
        #expect(done.files_total == 2 && done.files_done == 2)
        #expect(done.bytes_total == 2 * 1024 * 1024 + 23 && done.bytes_done == done.bytes_total)
        #expect(FileManager.default.fileExists(atPath: directory.path + "/models/qwen/model.bin"))

        // An empty directory under the root is not a downloaded model.
        try FileManager.default.createDirectory(atPath: directory.path + "/models/empty", withIntermediateDirectories: true)
        let list = try JSONDecoder().decode(Cards.self, from: Data(try await runtime.get("/v1/model/list").body))
        #expect(list.data.contains { $0.model_name == "qwen" && $0.model_status == "downloaded" && $0.source == "s3" })
        #expect(!list.data.contains { $0.model_name == "empty" && $0.model_status == "downloaded" })

        let again = try JSONDecoder().decode(Card.self, from: Data(try await runtime.post("/v1/model/download", #"{"model_uri":"s3://models/qwen/"}"#).body))
        #expect(again.model_status == "downloaded")
        #expect(again.download_id == nil, "a complete model starts no download")

        let jobs = try await runtime.get("/v1/downloads")
        #expect(jobs.status == 200)
        #expect(jobs.text.contains(id))

        for (body, status) in [
            (#"{"model_uri":"s3://models/nothing/"}"#, 404),
            (#"{"model_uri":"s3://models/qwen/","local_dir":"/etc"}"#, 403),
            (#"{"model_uri":"s3://models/qwen/","model_name":"../x"}"#, 400),
            (#"{"model_uri":"s3://models/qwen/","download_extra_config":{"bogus":1}}"#, 400),
            (#"{"model_uri":"ftp://example/x"}"#, 400),
            (#"{"model_uri":"s3://models/qwen/","surprise":true}"#, 400),
        ] {
            let answer = try await runtime.post("/v1/model/download", body)
            #expect(answer.status == status, "\(body): \(answer.text)")
            #expect(answer.envelope != nil)
        }
        #expect(try await runtime.get("/v1/downloads/dl-nope").status == 404)
        #expect(try await runtime.get("/v1/model/list?local_dir=/").status == 403)
        #expect(!runtime.output.contains("AWS_SECRET"), "no secrets in the log")
    }

    /// A 2 MiB file whose every request gets its first MiB at full speed, then crawls: a first
    /// download is stuck half-way for as long as a test needs, and a resumed one (from 1 MiB
    /// on) finishes at once.
    struct HalfStuckSource {
        let nginx: NginxServer
        let content = DownloadCLITests.randomBytes(2 << 20)
        var body: String { #"{"model_uri":"\#(nginx.baseURL)/files/slow.bin","model_name":"slow"}"# }

        init() async throws {
            nginx = try await NginxServer.start(rate: "1k", rateAfter: "1m")
            try nginx.put("files/slow.bin", content)
        }

        /// Starts the download on `runtime` and waits until its first MiB is on disk.
        func startStuck(on runtime: ServerProcess) async throws -> String {
            let card = try JSONDecoder().decode(Card.self, from: Data(try await runtime.post("/v1/model/download", body).body))
            let id = try #require(card.download_id)
            try await DownloadAPITests.waitForBytes(runtime, id, atLeast: 1 << 20)
            return id
        }

        /// Asks `runtime` for the download again and checks that it completed from where the
        /// first one stopped, not from the start.
        func expectResumed(on runtime: ServerProcess, into directory: TemporaryDirectory) async throws {
            let resumed = try JSONDecoder().decode(Card.self, from: Data(try await runtime.post("/v1/model/download", body).body))
            let done = try await DownloadAPITests.waitForJob(runtime, try #require(resumed.download_id), until: ["completed", "failed"])
            #expect(done.state == .completed, "\(done.error ?? "")")
            #expect(DownloadCLITests.holds(directory.path + "/models/slow/slow.bin", content))
            let fetched = nginx.log().filter { $0.method == "GET" }.reduce(0) { $0 + $1.bytes }
            #expect(fetched < content.count + content.count / 2, "resumed, not started over (\(fetched) bytes fetched)")
        }
    }

    @Test func cancelKeepsPartialDataAndASecondRequestResumes() async throws {
        let source = try await HalfStuckSource()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await Self.runtime(directory, engine: engine)
        let id = try await source.startStuck(on: runtime)
        let cancelled = try await runtime.request("DELETE", "/v1/downloads/\(id)")
        #expect(cancelled.status == 200)
        let snapshot = try JSONDecoder().decode(DownloadJob.Snapshot.self, from: Data(cancelled.body))
        #expect(snapshot.state == .cancelled)
        #expect(snapshot.bytes_done > 0 && snapshot.bytes_done < Int64(source.content.count))
        let list = try JSONDecoder().decode(Cards.self, from: Data(try await runtime.get("/v1/model/list").body))
        #expect(list.data.contains { $0.model_name == "slow" && $0.model_status == "no_operation" }, "interrupted, resumable")
        try await source.expectResumed(on: runtime, into: directory)
    }

    /// Issue 12 #3: SIGTERM stops a running download at once (it used to wait for it to
    /// publish), keeps its bytes, and the next runtime resumes from them.
    @Test func sigtermStopsADownloadAndTheNextRuntimeResumesIt() async throws {
        let source = try await HalfStuckSource()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try await ServerProcess.simulator("vllm")
        let first = try await Self.runtime(directory, engine: engine)
        _ = try await source.startStuck(on: first)
        let (status, took) = try await first.timedTerminate()
        #expect(status == 0)
        #expect(took < .seconds(6), "exited \(took) after SIGTERM")
        #expect(first.output.contains("download stopped"), "\(first.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/models/slow/slow.bin"), "nothing half-done is published")
        try await source.expectResumed(on: try await Self.runtime(directory, engine: engine), into: directory)
    }

    @Test func loraArtifactWithASecretThenUnloadCleansUp() async throws {
        let moto = try await MotoServer.start()
        try await moto.populate(
            """
            s3.create_bucket(Bucket="models")
            s3.put_object(Bucket="models", Key="adapters/sql/adapter_config.json", Body=b'{"r": 8}')
            s3.put_object(Bucket="models", Key="adapters/sql/adapter_model.safetensors", Body=os.urandom(100000))
            """)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let secret = directory.path + "/secrets/s3-creds"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        try "test\n".write(toFile: secret + "/aws_access_key_id", atomically: true, encoding: .utf8)
        try "test\n".write(toFile: secret + "/aws_secret_access_key", atomically: true, encoding: .utf8)
        let engine = try await ServerProcess.simulator("vllm")
        // No keys in the environment: an unsigned request is refused (403), so success proves
        // the secret's keys were used.
        let runtime = try await Self.runtime(directory, engine: engine, environment: ["AWS_ENDPOINT_URL": moto.endpoint])

        let load = try await runtime.post(
            "/v1/lora_adapter/load",
            #"{"lora_name":"sql-lora.v1","artifact_url":"s3://models/adapters/sql","credentials_secret":"s3-creds"}"#)
        #expect(load.status == 200, "\(load.text)")
        struct Loaded: Decodable {
            var status: String
            var local_path: String
        }
        let loaded = try JSONDecoder().decode(Loaded.self, from: Data(load.body))
        #expect(loaded.local_path == directory.path + "/adapters/sql-lora.v1")
        #expect(FileManager.default.fileExists(atPath: loaded.local_path + "/adapter_config.json"))
        struct Stats: Decodable { var adapters: [String: String] }
        let stats = try JSONDecoder().decode(Stats.self, from: Data(try await engine.get("/_sim/stats").body))
        #expect(stats.adapters["sql-lora.v1"] == loaded.local_path)

        let badSecret = try await runtime.post(
            "/v1/lora_adapter/load", #"{"lora_name":"x","artifact_url":"s3://models/adapters/sql/","credentials_secret":"../../etc"}"#)
        #expect(badSecret.status == 400)
        let outside = try await runtime.post(
            "/v1/lora_adapter/load", #"{"lora_name":"x","artifact_url":"s3://models/adapters/sql/","local_dir":"/var/tmp"}"#)
        #expect(outside.status == 403)

        let unload = try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"sql-lora.v1"}"#)
        #expect(unload.status == 200, "\(unload.text)")
        #expect(!FileManager.default.fileExists(atPath: loaded.local_path), "cleanup_local defaults to on for {lora_name}")
    }

    @Test func concurrentLoadsOfOneArtifactShareOneDownload() async throws {
        let nginx = try await NginxServer.start(rate: "1m")
        try nginx.put("adapters/a1/adapter.bin", DownloadCLITests.randomBytes(1 << 20))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await Self.runtime(directory, engine: engine)
        let body = #"{"lora_name":"a1","artifact_url":"\#(nginx.baseURL)/adapters/a1/adapter.bin"}"#
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 { group.addTask { try await runtime.post("/v1/lora_adapter/load", body).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [200, 200, 200, 200])
        let gets = nginx.log().filter { $0.method == "GET" && $0.path == "/adapters/a1/adapter.bin" }
        #expect(gets.count == 1, "one download for four requests: \(gets.count) GETs")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/adapters/a1/adapter.bin"))
    }

    /// DOWNLOADER_ALLOWED_HOSTS holds for every hop: a redirect to a host off the list fails
    /// with 403 before anything is fetched from it; on the list, the redirect is followed.
    @Test func aRedirectToAHostOffTheListIsRefused() async throws {
        let nginx = try await NginxServer.start()
        try nginx.put("files/model.bin", Array(repeating: 7, count: 4096))
        let engine = try await ServerProcess.simulator("vllm")
        for (allowed, expectRefused) in [("127.0.0.1", true), ("127.0.0.1,localhost", false)] {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let runtime = try await Self.runtime(directory, engine: engine, environment: ["DOWNLOADER_ALLOWED_HOSTS": allowed])
            let before = nginx.log().filter { $0.path == "/files/model.bin" }.count
            let started = try await runtime.post(
                "/v1/model/download", #"{"model_uri":"\#(nginx.baseURL)/elsewhere/files/model.bin","model_name":"redirected"}"#)
            if expectRefused {
                #expect(started.status == 403, "\(started.text)")
                #expect(started.text.contains("redirected to host \\\"localhost\\\"") && started.text.contains("DOWNLOADER_ALLOWED_HOSTS"), "\(started.text)")
                #expect(nginx.log().filter { $0.path == "/files/model.bin" }.count == before, "nothing was fetched from the refused host")
                #expect(!FileManager.default.fileExists(atPath: directory.path + "/models/redirected"))
            } else {
                #expect(started.status == 200, "\(started.text)")
                let card = try JSONDecoder().decode(Card.self, from: Data(started.body))
                if let id = card.download_id {
                    let done = try await Self.waitForJob(runtime, id, until: ["completed", "failed"])
                    #expect(done.state == .completed, "\(done.error ?? "")")
                }
                #expect(FileManager.default.fileExists(atPath: directory.path + "/models/redirected/model.bin"))
            }
        }
    }
}

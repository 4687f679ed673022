import Crypto
import Foundation
import TestSupport
import Testing

@testable import Host

/// The cloud credentials operators use, through the real binary: IRSA against moto's STS and
/// S3 (no keys in the environment, a session that expires during the download, a rotated
/// token file), and GCS with a service-account key or the metadata server against a local
/// token endpoint that verifies the RS256 assertion and a storage endpoint that refuses
/// expired tokens.
struct CloudCredentialTests {
    /// 16 MiB that a test can check byte for byte.
    static let pattern: [UInt8] = (0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 16)) }

    static func sha256(_ bytes: some DataProtocol) -> String { FileDigest.hex(SHA256.hash(data: bytes)) }

    /// Small parts, two at a time: a download makes a few hundred requests, each asking for
    /// credentials.
    static let pacedDownload = [
        "DOWNLOADER_NUM_THREADS": "2", "DOWNLOADER_PART_THRESHOLD": "1048576", "DOWNLOADER_PART_CHUNKSIZE": "65536",
    ]

    static func download(_ runtime: ServerProcess, _ uri: String) async throws -> DownloadJob.Snapshot {
        let started = try await runtime.post("/v1/model/download", #"{"model_uri":"\#(uri)"}"#)
        #expect(started.status == 200, "\(started.text)")
        let card = try JSONDecoder().decode(DownloadAPITests.Card.self, from: Data(started.body))
        let id = try #require(card.download_id, "\(started.text)")
        return try await DownloadAPITests.waitForJob(runtime, id, until: ["completed", "failed"])
    }

    /// One request moto recorded.
    struct Recorded: Decodable {
        var headers: [String: String]
        var method: String
        var url: String
        var body: String?
        var body_encoded: Bool?

        var bodyText: String {
            guard let body else { return "" }
            if body_encoded == true, let data = Data(base64Encoded: body) { return String(decoding: data, as: UTF8.self) }
            return body
        }

        func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }

        /// The form fields of an STS call.
        var form: [String: String] {
            var fields: [String: String] = [:]
            for pair in bodyText.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
            return fields
        }
    }

    @Test func s3WithIRSAOnlyRenewsTheSessionDuringTheDownload() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let recording = directory.path + "/moto-recording.jsonl"
        let moto = try await MotoServer.start(environment: ["MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": recording])
        try Data(Self.pattern).write(to: URL(fileURLWithPath: directory.path + "/weights.bin"))
        try await moto.populate(
            """
            s3.create_bucket(Bucket="models")
            s3.put_object(Bucket="models", Key="irsa/config.json", Body=b'{"model_type": "qwen2"}')
            s3.upload_file("\(directory.path)/weights.bin", "models", "irsa/model.bin")
            """)
        try? FileManager.default.removeItem(atPath: recording)  // the set-up's own requests
        let tokenFile = directory.path + "/token"
        try "first-projected-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let engine = try await ServerProcess.simulator("vllm")
        var environment = Self.pacedDownload
        environment.merge([
            "AWS_ENDPOINT_URL": moto.endpoint, "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/model-reader", "AWS_ROLE_SESSION_NAME": "engine-runtime-test",
            // Sessions of two seconds (moto takes any length; real STS's least is 900): the
            // download, a few seconds long, outlives several of them.
            "DOWNLOADER_STS_DURATION_SECONDS": "2",
            // No keys: empty values are unset to the runtime.
            "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
        ]) { $1 }
        let runtime = try await DownloadAPITests.runtime(directory, engine: engine, environment: environment)

        let started = try await runtime.post("/v1/model/download", #"{"model_uri":"s3://models/irsa/"}"#)
        #expect(started.status == 200, "\(started.text)")
        let id = try #require(try JSONDecoder().decode(DownloadAPITests.Card.self, from: Data(started.body)).download_id)
        // The kubelet rotates the projected token; a renewal must read the new one. Rotated as
        // soon as the first exchange is on record, so the seconds of download left hold several
        // renewals however loaded the machine is.
        for _ in 0..<300 {
            let text = (try? String(contentsOfFile: recording, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").contains(where: { line in
                (try? JSONDecoder().decode(Recorded.self, from: Data(line.utf8)))?.form["Action"] == "AssumeRoleWithWebIdentity"
            }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try "second-projected-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let done = try await DownloadAPITests.waitForJob(runtime, id, until: ["completed", "failed"])
        #expect(done.state == .completed, "\(done.error ?? "")\n\(runtime.output)")
        let landed = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/models/irsa/model.bin"))
        #expect(Self.sha256(landed) == Self.sha256(Self.pattern))

        let recorded = try String(contentsOfFile: recording, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Recorded.self, from: Data($0.utf8)) }
        let exchanges = recorded.filter { $0.form["Action"] == "AssumeRoleWithWebIdentity" }.map(\.form)
        #expect(exchanges.count >= 2, "the session was renewed: \(exchanges.count) STS calls")
        #expect(exchanges.allSatisfy { $0["RoleArn"] == "arn:aws:iam::123456789012:role/model-reader" })
        #expect(exchanges.allSatisfy { $0["RoleSessionName"] == "engine-runtime-test" && $0["DurationSeconds"] == "2" })
        #expect(exchanges.first?["WebIdentityToken"] == "first-projected-token")
        #expect(exchanges.last?["WebIdentityToken"] == "second-projected-token", "a renewal reads the rotated token file")

        let objectRequests = recorded.filter { $0.url.contains("/models/irsa/") }
        let parts = objectRequests.filter { $0.method == "GET" && $0.header("Range") != nil }
        #expect(parts.count >= 250, "\(parts.count) ranged parts")
        #expect(objectRequests.allSatisfy { $0.header("X-Amz-Security-Token") != nil }, "every object request carries the session token")
        let sessions = Set(objectRequests.compactMap { $0.header("X-Amz-Security-Token") })
        let keyIDs = Set(objectRequests.compactMap { $0.header("Authorization")?.split(separator: "Credential=").last?.split(separator: "/").first })
        #expect(sessions.count >= 2 && keyIDs.count >= 2, "parts were signed with renewed sessions: \(sessions.count) tokens, \(keyIDs.count) key ids")
        #expect(runtime.output.contains("credentials renewed"), "the renewal is logged")
        for secret in sessions.prefix(3) { #expect(!runtime.output.contains(secret), "no session token in the log") }
        #expect(!runtime.output.contains("projected-token"), "no web identity token in the log")
    }

    @Test func s3WithAnUnreadableTokenFileFailsWithAMessage() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let moto = try await MotoServer.start()
        try await moto.populate(#"s3.create_bucket(Bucket="models"); s3.put_object(Bucket="models", Key="x/config.json", Body=b'{}')"#)
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await DownloadAPITests.runtime(
            directory, engine: engine,
            environment: [
                "AWS_ENDPOINT_URL": moto.endpoint, "AWS_WEB_IDENTITY_TOKEN_FILE": directory.path + "/missing-token",
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/model-reader",
            ])
        // Listing needs the credentials, so the request itself fails, saying what to fix.
        let answer = try await runtime.post("/v1/model/download", #"{"model_uri":"s3://models/x/"}"#)
        #expect(answer.status == 403, "\(answer.text)")
        #expect(answer.envelope?.message.contains("AWS_WEB_IDENTITY_TOKEN_FILE") == true, "\(answer.text)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/models/x"), "nothing is left behind")
    }

    @Test func gcsServiceAccountKeyRenewsShortTokens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Tokens of two seconds, reads paced so the download takes longer than one: the
        // storage endpoint refuses an expired token, so only renewals get it through.
        let google = try await GoogleFakeServer.start(directory: directory, tokenLifetime: 2, storageDelay: 0.02)
        let weights = Array(Self.pattern.prefix(12 << 20))
        try google.put(bucket: "weights", key: "qwen/model.bin", weights)
        try google.put(bucket: "weights", key: "qwen/config.json", Array(#"{"model_type": "qwen2"}"#.utf8))
        let engine = try await ServerProcess.simulator("vllm")
        var environment = Self.pacedDownload
        environment.merge(["GCS_ENDPOINT": google.endpoint, "GOOGLE_APPLICATION_CREDENTIALS": google.keyFile]) { $1 }
        let runtime = try await DownloadAPITests.runtime(directory, engine: engine, environment: environment)

        let done = try await Self.download(runtime, "gcs://weights/qwen/")
        #expect(done.state == .completed, "\(done.error ?? "")\n\(google.serverLog)")
        let landed = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/models/qwen/model.bin"))
        #expect(Self.sha256(landed) == Self.sha256(weights))

        let entries = google.entries
        let grants = entries.filter { $0.route == "token" }
        #expect(grants.count >= 2 && grants.allSatisfy { $0.status == 200 }, "assertions verified and renewed: \(grants.map { $0.error ?? "ok" })")
        let storage = entries.filter { $0.route == "storage" }
        #expect(storage.allSatisfy { $0.status != 401 }, "no request went out with an expired token")
        #expect(Set(storage.compactMap(\.token)).count >= 2, "parts used renewed tokens")
        #expect(!runtime.output.contains("PRIVATE KEY") && !runtime.output.contains("ya29."), "no key or token in the log")
    }

    @Test func gcsWorkloadIdentityUsesTheMetadataServer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let google = try await GoogleFakeServer.start(directory: directory)
        try google.put(bucket: "weights", key: "tiny/config.json", Array(#"{"model_type": "qwen2"}"#.utf8))
        try google.put(bucket: "weights", key: "tiny/model.bin", Array(Self.pattern.prefix(100_000)))
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await DownloadAPITests.runtime(
            directory, engine: engine, environment: ["GCS_ENDPOINT": google.endpoint, "GCE_METADATA_HOST": "127.0.0.1:\(google.port)"])

        let done = try await Self.download(runtime, "gcs://weights/tiny/")
        #expect(done.state == .completed, "\(done.error ?? "")")
        let entries = google.entries
        #expect(entries.filter { $0.route == "metadata" }.map(\.status) == [200], "one token from the metadata server, asked with Metadata-Flavor")
        #expect(entries.filter { $0.route == "storage" }.allSatisfy { $0.token?.hasPrefix("ya29.md-") == true && $0.status != 401 })
    }

    @Test func gcsKeyInALoRARequestsCredentials() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let google = try await GoogleFakeServer.start(directory: directory)
        try google.put(bucket: "adapters", key: "sql/adapter_config.json", Array(#"{"r": 8}"#.utf8))
        try google.put(bucket: "adapters", key: "sql/adapter_model.safetensors", Array(Self.pattern.prefix(50_000)))
        let key = try String(contentsOfFile: google.keyFile, encoding: .utf8)
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await DownloadAPITests.runtime(directory, engine: engine, environment: ["GCS_ENDPOINT": google.endpoint])

        struct Load: Encodable {
            var lora_name: String
            var artifact_url: String
            var credentials: [String: String]
        }
        let body = try String(decoding: JSONEncoder().encode(
            Load(lora_name: "sql", artifact_url: "gcs://adapters/sql", credentials: ["gcp_service_account_json": key])), as: UTF8.self)
        let load = try await runtime.post("/v1/lora_adapter/load", body)
        #expect(load.status == 200, "\(load.text)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/adapters/sql/adapter_model.safetensors"))
        #expect(google.entries.contains { $0.route == "token" && $0.status == 200 })

        let broken = try String(decoding: JSONEncoder().encode(
            Load(lora_name: "other", artifact_url: "gcs://adapters/sql", credentials: ["gcp_service_account_json": #"{"client_email":"x"}"#])), as: UTF8.self)
        let refused = try await runtime.post("/v1/lora_adapter/load", broken)
        #expect(refused.status == 400, "\(refused.text)")
        #expect(refused.text.contains("private_key"))
    }
}

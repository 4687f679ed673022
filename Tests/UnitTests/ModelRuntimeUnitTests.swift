import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import Host

/// The model runtime's parts that need no process: request reading, names, flags, settings,
/// the engines' environment, the kvcached segment, and the routes in-process.
@Suite struct ModelRuntimeUnitTests {
    @Test func segmentNamesFollowKvcachedsRule() {
        #expect(KVSegment.sanitize("kvc_claim.a/b c") == "kvc_claim-a-b-c")
        #expect(KVSegment.sanitize("kvc_模型-1") == "kvc_模型-1", "Unicode letters are kept, as str.isalnum keeps them")
        #expect(KVSegment.sanitize(String(repeating: "x", count: 70)).count == 64)
    }

    @Test func theSegmentIsReadAndLimitedInPlace() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let segment = KVSegment(directory: directory.path, ipcName: "kvc_test")
        #expect(segment.read() == nil)
        guard case .failure(.missing) = segment.setLimit(1) else {
            Issue.record("a missing segment must be reported as missing, not created")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: segment.path))
        var fields: [Int64] = [1 << 30, 4096, 8192]
        try Data(bytes: &fields, count: 24).write(to: URL(fileURLWithPath: segment.path))
        #expect(segment.read() == KVSegment.Usage(total: 1 << 30, used: 4096, preallocated: 8192))
        guard case .success = segment.setLimit(123) else {
            Issue.record("the limit was not written")
            return
        }
        #expect(segment.read() == KVSegment.Usage(total: 123, used: 4096, preallocated: 8192), "only total_size changes")
        try Data(repeating: 0, count: 16).write(to: URL(fileURLWithPath: segment.path))
        #expect(segment.read() == nil, "kvcached before c95e1c4 wrote 16 bytes")
    }

    @Test func requestFieldsAreReadLikePydanticsLaxMode() throws {
        let fields = RuntimeFields([
            "limit_bytes": .string("20500"), "level": .bool(true), "port": .number(1.0), "model_name": .integer(3),
        ])
        #expect(try fields.integer("limit_bytes", range: 0...Int.max) == 20500)
        #expect(try fields.integer("level", range: 1...2) == 1)
        #expect(try fields.integer("port", range: 0...65535) == 1)
        #expect(throws: RuntimeError.self) { try fields.string("model_name") }
        #expect(throws: RuntimeError.self) { try fields.integer("missing", range: 0...1) }
        #expect(try fields.integer("missing", range: 0...1, default: 0) == 0)
    }

    @Test func activationFlagsComeFromTheConfigThenTheLegacyKeys() throws {
        let fields = RuntimeFields([
            "model_name": .string("m"), "artifact_url": .string("/models/m"),
            "engine_config": .object(["args": .object(["--max-model-len": .string("2048"), "--dtype": .string("half")])]),
            "additional_config": .object(["engine-arg:--dtype": .string("bfloat16"), "other": .string("ignored")]),
            "claim_ref": .object(["namespace": .string("ns"), "name": .string("c"), "uid": .string("u")]),
        ])
        let activation = try fields.activation()
        #expect(activation.engineArgs.map { "\($0.0)=\($0.1)" } == ["--max-model-len=2048", "--dtype=bfloat16"])
        #expect(activation.claimRef == ClaimReference(namespace: "ns", name: "c", uid: "u"))
        #expect(activation.engine == "vllm" && activation.port == 0)
        let extra = RuntimeFields(["model_name": .string("m"), "artifact_url": .string("x"), "engine_config": .object(["argz": .null])])
        #expect(throws: RuntimeError.self) { try extra.activation() }
    }

    @Test func parallelismIsReadAsTheControllerReadsIt() throws {
        func spec(_ value: String) -> LaunchSpec {
            LaunchSpec(engineKind: "vllm", modelName: "m", modelPath: "/m", host: "h", port: 1, args: [["--tensor-parallel-size", value]])
        }
        #expect(try spec(" 2 ").parallelism(["--tensor-parallel-size"]) == 2)
        #expect(try spec("").parallelism(["--tensor-parallel-size"]) == 1, "Go treats an empty value as 1")
        for bad in ["+2", "0", "1_0", "two"] {
            #expect(throws: DriverFailureStub.self, "\(bad)") {
                do { _ = try spec(bad).parallelism(["--tensor-parallel-size"]) } catch { throw DriverFailureStub() }
            }
        }
    }

    @Test func settingsComeFromTheEnvironmentAndBadOnesAreOneLine() throws {
        let settings = try ModelRuntimeSettings.fromEnvironment(
            [
                "ENGINE_RUNTIME_MODEL_RUNTIME": "1", "ENGINE_RUNTIME_MODEL_PORTS": "21000-21010",
                "ENGINE_RUNTIME_MODEL_SGLANG_ARGS": "--tp-size, --context-length", "ENGINE_RUNTIME_MODEL_VLLM_COMMAND": "/opt/venv/bin/vllm",
                "HOME": "/home/u",
            ], enabled: nil)
        #expect(settings.enabled && settings.ports == 21000...21010)
        #expect(settings.allowedArgs["sglang"] == ["--tp-size", "--context-length"])
        #expect(settings.commands["vllm"] == ["/opt/venv/bin/vllm"])
        #expect(settings.markerRoot == "/home/u/.cache/huggingface" && settings.registryPath == "/var/run/engine-runtime/engines.json")
        #expect(settings.allowedArgs["vllm"]?.contains("--trust-remote-code") == false)
        for (name, value) in [("ENGINE_RUNTIME_MODEL_PORTS", "80-90"), ("ENGINE_RUNTIME_MODEL_STOP_GRACE", "soon"), ("ENGINE_RUNTIME_MODEL_RUNTIME", "yes"),
            ("ENGINE_RUNTIME_MODEL_VLLM_COMMAND", "bin/vllm"),
        ] {
            #expect(throws: RuntimeError.self, "\(name)=\(value)") { try ModelRuntimeSettings.fromEnvironment([name: value], enabled: nil) }
        }
    }

    @Test func enginesGetACleanEnvironment() {
        let sidecar = [
            "PATH": "/usr/bin", "HOME": "/root", "CUDA_VISIBLE_DEVICES": "0", "HF_TOKEN": "secret", "AWS_SECRET_ACCESS_KEY": "secret",
            "ENGINE_RUNTIME_AUTH_TOKEN": "secret", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m", "MY_SETTING": "on", "OTHER": "x",
        ]
        let environment = EngineEnvironment.build(
            sidecar: sidecar, passthrough: ["MY_SETTING", "HF_TOKEN"], plan: ["VLLM_SERVER_DEV_MODE": "1", "HF_TOKEN": "from-plan"],
            runtime: ["KVCACHED_IPC_NAME": "kvc_m"], path: "/engines/bin")
        #expect(
            environment == [
                "PATH": "/engines/bin", "HOME": "/root", "CUDA_VISIBLE_DEVICES": "0", "MY_SETTING": "on", "VLLM_SERVER_DEV_MODE": "1",
                "KVCACHED_IPC_NAME": "kvc_m",
            ])
    }

    @Test func theOperationHistoryKeepsTheLast128PerAction() {
        var record = ModelRecord(
            modelName: "m", artifactURL: "/m", engine: "vllm", port: 1, ipcName: "kvc_m", args: [], claimRef: nil, phase: .active,
            process: nil, launchID: "l", lastTransition: 0)
        record.remember(OperationRecord(id: "wake-0", action: "wake", parameters: ""))
        for index in 0..<200 { record.remember(OperationRecord(id: "kv-\(index)", action: "kv-limit", parameters: "\(index)")) }
        #expect(record.operation("kv-0", action: "kv-limit") == nil)
        #expect(record.operation("kv-199", action: "kv-limit") != nil)
        #expect(record.operation("wake-0", action: "wake") != nil, "another action's ids are not pushed out")
        #expect(record.operations.count == 129)
    }

    // MARK: routes, in-process

    private func withRouter(runtimeOn: Bool, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let fixture = try RouterFixture()
        let pool = WorkerPool(threads: 2)
        var dependencies = fixture.dependencies()
        if runtimeOn {
            var settings = try ModelRuntimeSettings.fromEnvironment(
                ["ENGINE_RUNTIME_MODEL_STATE_DIR": fixture.directory.path + "/state", "HOME": fixture.directory.path], enabled: true)
            settings.segmentDirectory = fixture.directory.path
            let runtime = ModelRuntime(
                settings: settings, drivers: DriverRegistry(), pool: pool, httpClient: CurlHTTPClient(), downloads: fixture.downloads,
                deadlines: Deadlines(), environment: [:], logger: .quiet)
            await runtime.start()
            dependencies.modelRuntime = runtime
            dependencies.snapshots = RuntimeSnapshotService(
                runtime: runtime,
                metrics: MetricsService(
                    engines: try await EngineRegistry.start(
                        configuration: RuntimeConfiguration(engines: [], defaultEngine: "default"), drivers: DriverRegistry(), pool: pool,
                        httpClient: CurlHTTPClient(), logger: .quiet),
                    mode: .both, runtimeMetrics: RuntimeMetrics(drivers: DriverRegistry()), pool: pool, httpClient: CurlHTTPClient(),
                    logger: .quiet))
        }
        let app = Application(router: RuntimeRouter.build(dependencies), logger: .quiet)
        try await app.test(.router, body)
        await pool.shutdown()
        await fixture.downloads.shutdown()
        fixture.directory.remove()
    }

    @Test func theRoutesAnswerInAIBrixsShapes() async throws {
        try await withRouter(runtimeOn: true) { client in
            let activate = try await client.execute(
                uri: "/v1/runtime/models/activate", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"model_name":"m","artifact_url":"/models/m","engine":"vllm"}"#))
            #expect(activate.status == .badRequest)
            let answer = try JSONDecoder().decode(ActivateAnswer.self, from: Data(activate.text.utf8))
            #expect(answer.status == "error" && answer.port == 0 && answer.message?.contains("no driver that can launch it") == true)
            let extra = try await client.execute(
                uri: "/v1/runtime/models/sleep", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"model_name":"m","level":3,"operation_id":"x"}"#))
            #expect(extra.status.code == 422 && extra.text.contains(#""detail":[{"#) && extra.text.contains("level must be in 1...2"), "\(extra.text)")
            let unknown = try await client.execute(
                uri: "/v1/runtime/models/kv-limit", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"model_name":"m","limit_bytes":1,"operation_id":"x"}"#))
            #expect(unknown.status == .notFound && unknown.text.contains(#""detail":"model 'm' is not active""#), "\(unknown.text)")
            let deactivate = try await client.execute(
                uri: "/v1/runtime/models/deactivate", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"model_name":"m"}"#))
            #expect(deactivate.status == .ok && deactivate.text == #"{"status":"success"}"#)
            let list = try await client.execute(uri: "/v1/runtime/models", method: .get)
            #expect(list.text == #"{"models":[]}"#)
            let snapshot = try await client.execute(uri: "/v1/runtime/snapshot", method: .get)
            #expect(snapshot.text.contains(#""accelerators":[]"#) && snapshot.text.contains(#""models":[]"#), "\(snapshot.text)")
        }
    }

    @Test func theRoutesSayTheRuntimeIsOff() async throws {
        try await withRouter(runtimeOn: false) { client in
            let activate = try await client.execute(
                uri: "/v1/runtime/models/activate", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            #expect(activate.status == .notFound && activate.text.contains("ENGINE_RUNTIME_MODEL_RUNTIME=1"))
            #expect(try await client.execute(uri: "/v1/runtime/snapshot", method: .get).status == .notFound)
        }
    }
}

private struct DriverFailureStub: Error {}

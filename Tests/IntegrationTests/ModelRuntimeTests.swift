import Foundation
import Host
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The model runtime (AIBrix's ModelClaim routes) on the real binary: engines launched through
/// their real command lines (the simulator behind `vllm serve` and `python3 -m
/// sglang.launch_server`, a real llama-server), supervised, killed and re-adopted for real.
@Suite struct ModelRuntimeTests {
    /// The controller's and the gateway's calls in their order (aibrix-modelclaim.md §7):
    /// activate, poll the snapshot until ready, the pool policy's sleep, the gateway's wake,
    /// deactivate; with the fields the Go code reads.
    @Test func theControllersCallSequenceOnAVLLMEngine() async throws {
        let harness = try ModelRuntimeHarness(
            ports: 23100...23119, environment: ["HF_TOKEN": "hf-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret", "INFERENCE_ENGINE_API_KEY": "engine-secret"])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("qwen")
        try await harness.start()
        // A warm pool's sidecar has no engine of its own: ready at once, and the routes of a
        // configured engine say why they have nothing to talk to.
        #expect(try await harness.runtime!.get("/ready").status == 200)
        let noEngine = try await harness.runtime!.get("/v1/models")
        #expect(noEngine.status == 404 && noEngine.text.contains("launches its engines itself"), "\(noEngine.text)")
        let activate = """
            {"model_name":"qwen-a","artifact_url":"\(path)","engine":"vllm","ipc_name":"kvc_claim-a",
             "engine_config":{"args":{"--max-model-len":"2048","--enforce-eager":""}},
             "claim_ref":{"namespace":"team","name":"claim-a","uid":"uid-1"}}
            """
        let first = try await harness.post("/v1/runtime/models/activate", activate)
        #expect(first.status == 200, "\(first.text)")
        let answer = try JSONCoding.decode(ActivateAnswer.self, from: first.body)
        #expect(answer.status == "success" && answer.ipc_name == "kvc_claim-a" && harness.ports.contains(answer.port))

        // The controller polls until ready with a port; it matches by claim uid.
        let ready = try await harness.waitFor("qwen-a") { $0.ready && $0.port > 0 }
        #expect(ready.phase == "active" && ready.alive && ready.claim_ref?.uid == "uid-1" && ready.port == answer.port)
        #expect(ready.request_metrics_observed && ready.request_success_total != nil, "the pool policy needs observed activity")
        #expect(ready.kv_capacity_bytes == 1 << 30, "read from the segment the engine created")

        // The engine answers on its port, started as `vllm serve` with the runtime's flags.
        let engine = try #require(try await harness.pid("qwen-a"))
        let models = try await ServerProcess.get("http://127.0.0.1:\(answer.port)/v1/models")
        #expect(models.status == 200 && models.text.contains(#""id":"qwen-a""#), "\(models.text)")
        let argv = ProcInfo.commandLine(engine)
        #expect(argv.first?.hasSuffix("/vllm") == true)
        #expect(
            Array(argv.dropFirst()) == [
                "serve", path, "--host", "127.0.0.1", "--port", "\(answer.port)", "--served-model-name", "qwen-a", "--enable-sleep-mode",
                "--enforce-eager", "--max-model-len", "2048",
            ], "\(argv)")
        // A clean environment: the kvcached and dev-mode variables, none of the sidecar's secrets.
        let environment = ProcInfo.environment(engine)
        #expect(environment["KVCACHED_IPC_NAME"] == "kvc_claim-a" && environment["ENABLE_KVCACHED"] == "true")
        #expect(environment["VLLM_SERVER_DEV_MODE"] == "1")
        for secret in ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "INFERENCE_ENGINE_API_KEY", "DOWNLOADER_LOCAL_DIR", "ENGINE_RUNTIME_MODEL_PORTS"] {
            #expect(environment[secret] == nil, "\(secret) reached the engine")
        }

        // A repeat activate (the controller retries after any failure) is the same engine.
        let again = try await harness.post("/v1/runtime/models/activate", activate)
        #expect(again.status == 200)
        #expect(try JSONCoding.decode(ActivateAnswer.self, from: again.body).port == answer.port)
        #expect(try await harness.pid("qwen-a") == engine)
        let other = activate.replacingOccurrences(of: "\"2048\"", with: "\"4096\"")
        let conflict = try await harness.post("/v1/runtime/models/activate", other)
        #expect(conflict.status == 409 && conflict.text.contains(#""status":"error""#), "\(conflict.text)")

        // The pool policy puts it to sleep; a replayed id is not applied twice.
        let sleep = #"{"model_name":"qwen-a","level":1,"operation_id":"pool-policy-sleep/team/pool/pod/kvc_claim-a/1"}"#
        let slept = try await harness.post("/v1/runtime/models/sleep", sleep)
        #expect(slept.status == 200, "\(slept.text)")
        #expect(try JSONCoding.decode(OperationAnswer.self, from: slept.body) == OperationAnswer(model_name: "qwen-a", operation_id: "pool-policy-sleep/team/pool/pod/kvc_claim-a/1", applied: true, phase: .sleeping))
        let replay = try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/sleep", sleep).body)
        #expect(!replay.applied && replay.phase == .sleeping)
        let asleep = try await harness.waitFor("qwen-a") { $0.phase == "sleeping" }
        #expect(!asleep.ready)
        let engineSleeps = try await ServerProcess.get("http://127.0.0.1:\(answer.port)/is_sleeping")
        #expect(engineSleeps.text.contains("true"), "\(engineSleeps.text)")

        // The gateway wakes it for a request; the controller routes again once it is ready.
        let wake = #"{"model_name":"qwen-a","operation_id":"gateway-wake/pod/qwen-a/5c1d"}"#
        let woken = try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/wake", wake).body)
        #expect(woken.applied && woken.phase == .booting)
        #expect(!(try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/wake", wake).body)).applied)
        try await harness.waitFor("qwen-a") { $0.ready && $0.phase == "active" }

        // kv-limit on the segment file; the snapshot's capacity follows (the policy relies on it).
        let limit = #"{"model_name":"qwen-a","limit_bytes":268435456,"operation_id":"pool-policy-kv/team/pool/pod/kvc_claim-a/268435456/1"}"#
        let limited = try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/kv-limit", limit).body)
        #expect(limited.applied)
        let segment = try #require(FileManager.default.contents(atPath: "/dev/shm/kvc_claim-a"))
        #expect(segment.count == 24 && segment.withUnsafeBytes { $0.load(as: Int64.self) } == 268_435_456)
        #expect(try await harness.snapshot().models[0].kv_capacity_bytes == 268_435_456)
        #expect(!(try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/kv-limit", limit).body)).applied)
        let reused = try await harness.post(
            "/v1/runtime/models/kv-limit", limit.replacingOccurrences(of: "\"limit_bytes\":268435456", with: "\"limit_bytes\":1"))
        #expect(reused.status == 409, "an id reused with another limit: \(reused.text)")

        // Metrics: the runtime's own series and the engine's standard ones, labelled by model.
        let metrics = try await harness.runtime!.get("/metrics").text
        #expect(metrics.contains(#"engine_runtime_model_phase{model="qwen-a",phase="active"} 1"#), "\(metrics.prefix(3000))")
        #expect(metrics.contains(#"llm_engine_up{engine="vllm",model="qwen-a"} 1"#))
        #expect(!metrics.contains(#"llm_engine_up{engine="vllm"} "#), "no scrapes of an engine that is not there")
        #expect(metrics.contains(#"engine_runtime_model_kv_limit_bytes{model="qwen-a"} 268435456"#))
        #expect(metrics.contains(#"engine_runtime_model_operations_total{model="qwen-a",action="sleep",result="skipped"} 1"#))

        // Deactivate on the claim's deletion: no process is left, the model is gone.
        let stopped = try await harness.post("/v1/runtime/models/deactivate", #"{"model_name":"qwen-a","mode":"stop"}"#)
        #expect(stopped.status == 200 && stopped.text.contains("success"))
        #expect(!ProcInfo.isRunning(engine))
        #expect(try await harness.snapshot().models.isEmpty)
        #expect(try await harness.snapshot().cached_artifacts == [path], "the artifact was served here")
        #expect(try await harness.post("/v1/runtime/models/deactivate", #"{"model_name":"qwen-a"}"#).status == 200, "unknown: a no-op")
    }

    /// SGLang through `python3 -m sglang.launch_server`: observed through the standard metrics
    /// (AIBrix saw SGLang engines as never observed), sleep and wake through its memory routes.
    @Test func anSGLangEngineThroughItsLaunchServerCommand() async throws {
        let harness = try ModelRuntimeHarness(ports: 23120...23139, environment: ["ENGINE_RUNTIME_METRICS_MODE": "aibrix"])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("llama")
        try await harness.start()
        let first = try await harness.post(
            "/v1/runtime/models/activate",
            #"{"model_name":"llama-s","artifact_url":"\#(path)","engine":"sglang","engine_config":{"args":{"--context-length":"4096"}}}"#)
        #expect(first.status == 200, "\(first.text)")
        let ready = try await harness.waitFor("llama-s") { $0.ready }
        #expect(ready.request_metrics_observed && ready.ipc_name == "kvc_llama-s")
        let engine = try #require(try await harness.pid("llama-s"))
        let argv = ProcInfo.commandLine(engine)
        #expect(Array(argv.dropFirst().prefix(4)) == ["-m", "sglang.launch_server", "--model-path", path], "\(argv)")
        #expect(argv.contains("--enable-memory-saver") && argv.contains("--enable-metrics") && argv.suffix(2) == ["--context-length", "4096"])
        let slept = try await harness.post("/v1/runtime/models/sleep", #"{"model_name":"llama-s","level":1,"operation_id":"s1"}"#)
        #expect(slept.status == 200, "\(slept.text)")
        try await harness.waitFor("llama-s") { $0.phase == "sleeping" }
        let woken = try await harness.post("/v1/runtime/models/wake", #"{"model_name":"llama-s","operation_id":"w1"}"#)
        #expect(woken.status == 200, "\(woken.text)")
        try await harness.waitFor("llama-s") { $0.ready }
        // The aibrix metrics mode has AIBrix's ModelClaim names (its Grafana dashboard's).
        let metrics = try await harness.runtime!.get("/metrics").text
        for line in [
            "aibrix:modelclaim_models_resident 1", #"aibrix:modelclaim_engine_state{phase="active"} 1"#,
            #"aibrix:modelclaim_lifecycle_operations_total{model="llama-s",action="sleep",result="applied"} 1"#,
            #"aibrix:modelclaim_lifecycle_operation_duration_seconds_count{model="llama-s",action="wake",result="applied"} 1"#,
            #"aibrix:modelclaim_engine_re_adoptions_total{result="success"} 0"#,
        ] {
            #expect(metrics.contains(line + "\n"), "\(line)")
        }
        #expect(try await harness.post("/v1/runtime/models/deactivate", #"{"model_name":"llama-s"}"#).status == 200)
        #expect(!ProcInfo.isRunning(engine))
    }

    /// An engine killed with SIGKILL is started again (same port, segment, flags; the KV limit
    /// re-applied); the next crash past the budget fails the model, with no process left.
    @Test func aCrashedEngineIsRestartedUntilItsBudgetIsSpent() async throws {
        let harness = try ModelRuntimeHarness(ports: 23140...23159, environment: ["ENGINE_RUNTIME_MODEL_RESTART_BUDGET": "1"])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("crashy")
        try await harness.start()
        let activate = #"{"model_name":"crashy","artifact_url":"\#(path)","ipc_name":"kvc_crashy_\#(getpid())"}"#
        #expect(try await harness.post("/v1/runtime/models/activate", activate).status == 200)
        let before = try await harness.waitFor("crashy") { $0.ready }
        let limit = #"{"model_name":"crashy","limit_bytes":123456789,"operation_id":"k1"}"#
        #expect(try await harness.post("/v1/runtime/models/kv-limit", limit).status == 200)
        let first = try #require(try await harness.pid("crashy"))
        kill(first, SIGKILL)

        let after = try await harness.waitFor("crashy") { $0.ready && $0.restart_count == 1 }
        let second = try #require(try await harness.pid("crashy"))
        #expect(second != first && after.port == before.port)
        #expect(after.last_error == nil, "cleared once ready again")
        // The new engine wrote a fresh segment (its full size); the runtime put the limit back.
        try await harness.waitFor("crashy") { $0.kv_capacity_bytes == 123_456_789 }

        kill(second, SIGKILL)
        let failed = try await harness.waitFor("crashy") { $0.phase == "failed" }
        #expect(failed.last_error?.contains("restart budget exhausted") == true, "\(failed.last_error ?? "")")
        #expect(!failed.alive && !failed.ready)
        #expect(ProcInfo.engines(ipcName: "kvc_crashy_\(getpid())").isEmpty)
        let again = try await harness.post("/v1/runtime/models/activate", activate)
        #expect(again.status == 500 && again.text.contains("deactivate it before activating again"), "\(again.text)")
        #expect(try await harness.post("/v1/runtime/models/deactivate", #"{"model_name":"crashy"}"#).status == 200)
        #expect(try await harness.list().isEmpty)
    }

    /// The sidecar killed with SIGKILL leaves its engine running; the next sidecar takes it
    /// back (pid and start time match) without starting a second one. Its SIGTERM then stops
    /// the engine within the grace period.
    @Test func aRestartedSidecarAdoptsItsEngineAndStopsItOnSIGTERM() async throws {
        let harness = try ModelRuntimeHarness(ports: 23160...23179)
        defer { harness.cleanUp() }
        let path = try harness.makeModel("kept")
        let first = try await harness.start()
        let ipc = "kvc_kept_\(getpid())"
        #expect(try await harness.post("/v1/runtime/models/activate", #"{"model_name":"kept","artifact_url":"\#(path)","ipc_name":"\#(ipc)"}"#).status == 200)
        let ready = try await harness.waitFor("kept") { $0.ready }
        let engine = try #require(try await harness.pid("kept"))
        let limit = #"{"model_name":"kept","limit_bytes":4096,"operation_id":"kv-before-restart"}"#
        #expect(try await harness.post("/v1/runtime/models/kv-limit", limit).status == 200)
        first.kill()
        #expect(ProcInfo.isRunning(engine), "the engine is in its own session and survives the sidecar")

        let second = try await harness.start()
        let adopted = try await harness.waitFor("kept") { $0.ready }
        #expect(try await harness.pid("kept") == engine && adopted.port == ready.port)
        #expect(ProcInfo.engines(ipcName: ipc) == [engine], "one engine, not two")
        // Operation ids are kept in the registry: a replay after the restart is not re-applied.
        let replay = try JSONCoding.decode(OperationAnswer.self, from: try await harness.post("/v1/runtime/models/kv-limit", limit).body)
        #expect(!replay.applied)
        #expect(try await second.get("/metrics").text.contains(#"engine_runtime_model_readoptions_total{result="success"} 1"#))

        let (status, took) = try await second.timedTerminate()
        #expect(status == 0)
        #expect(took < .seconds(5 + 10), "the grace period (5 s) plus the API's drain")
        #expect(!ProcInfo.isRunning(engine), "SIGTERM of the sidecar stops its engines")
        // The registry keeps the model, to be started again by the next sidecar.
        let third = try await harness.start()
        let restarted = try await harness.waitFor("kept") { $0.ready }
        let relaunched = try await harness.pid("kept")
        #expect(restarted.port == ready.port && relaunched != engine)
        _ = third
    }

    /// What the routes refuse, each with a clear 4xx: a flag outside the operator's allow-list
    /// (and one the runtime owns), a port outside the range, a name that could traverse, a
    /// missing token when auth is on; and all of them while the runtime is off.
    @Test func refusals() async throws {
        let harness = try ModelRuntimeHarness(ports: 23180...23189, environment: ["ENGINE_RUNTIME_AUTH_TOKEN": "sidecar-token"])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("m")
        try await harness.start()
        let token = ["Authorization: Bearer sidecar-token"]
        func activate(_ body: String) async throws -> HTTPClientResponse { try await harness.post("/v1/runtime/models/activate", body, headers: token) }

        let remoteCode = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","engine_config":{"args":{"--trust-remote-code":""}}}"#)
        #expect(remoteCode.status == 400 && remoteCode.text.contains("--trust-remote-code is not allowed"), "\(remoteCode.text)")
        let port = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","engine_config":{"args":{"--port":"1"}}}"#)
        #expect(port.status == 400, "\(port.text)")
        let legacy = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","additional_config":{"engine-arg:--host":"0.0.0.0"}}"#)
        #expect(legacy.status == 400, "\(legacy.text)")
        let outside = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","port":80}"#)
        #expect(outside.status == 400 && outside.text.contains("outside the runtime's range"), "\(outside.text)")
        let traversal = try await activate(#"{"model_name":"../etc","artifact_url":"\#(path)"}"#)
        #expect(traversal.status == 400 && traversal.text.contains("model_name"), "\(traversal.text)")
        let gpu = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","engine_config":{"args":{"--data-parallel-size":"2"}}}"#)
        #expect(gpu.status == 400 || gpu.status == 400, "\(gpu.text)")
        let engine = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","engine":"foo"}"#)
        #expect(engine.status == 400 && engine.text.contains("no driver that can launch it"), "\(engine.text)")
        let extra = try await activate(#"{"model_name":"m","artifact_url":"\#(path)","colour":"red"}"#)
        #expect(extra.status == 422 && extra.text.contains(#""detail":["#), "\(extra.text)")
        let outsideRoots = try await activate(#"{"model_name":"m","artifact_url":"/etc"}"#)
        #expect(outsideRoots.status == 200, "accepted; the launch fails")
        let failed = try await harness.waitFor("m") { $0.phase == "failed" }
        #expect(failed.last_error?.contains("outside") == true || failed.last_error?.contains("roots") == true, "\(failed.last_error ?? "")")
        #expect(failed.alive == false)

        let anonymous = try await harness.post("/v1/runtime/models/activate", #"{"model_name":"n","artifact_url":"\#(path)"}"#)
        #expect(anonymous.status == 401)
        #expect(try await harness.runtime!.get("/v1/runtime/snapshot").status == 401)
        #expect(try await harness.runtime!.get("/v1/runtime/snapshot", headers: token).status == 200)

        let off = try ModelRuntimeHarness(ports: 23190...23199)
        defer { off.cleanUp() }
        try await off.start([])
        let refused = try await off.post("/v1/runtime/models/activate", #"{"model_name":"m","artifact_url":"\#(path)"}"#)
        #expect(refused.status == 404 && refused.text.contains("--model-runtime"), "\(refused.text)")
        #expect(try await off.runtime!.get("/v1/runtime/snapshot").status == 404)
    }
}

extension ServerProcess {
    /// One GET to any loopback URL.
    static func get(_ url: String) async throws -> HTTPClientResponse {
        let client = CurlHTTPClient()
        let request = HTTPClientRequest(method: "GET", url: url, headers: [], body: [], timeout: .seconds(10))
        return try await TestThreadPool.shared.runIfActive { try client.perform(request).get() }
    }
}

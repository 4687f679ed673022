import Foundation
import TestSupport
import Testing

@testable import Host

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's harder cases on real processes: engines that never get ready, stop
/// answering, will not stop, were spawned just before the sidecar died, or whose recorded pid
/// now belongs to somebody else.
@Suite struct ModelRuntimeSupervisionTests {
    @Test func anEngineThatNeverGetsReadyIsRestartedThenFailed() async throws {
        let harness = try ModelRuntimeHarness(
            ports: 23300...23309,
            environment: [
                "ENGINE_RUNTIME_MODEL_BOOT_TIMEOUT": "1", "ENGINE_RUNTIME_MODEL_RESTART_BUDGET": "1",
                // The simulator's start-up delay reaches the engine only because the operator lists it.
                "ENGINE_RUNTIME_MODEL_ENV": "ENGINE_SIMULATOR_STARTUP_DELAY", "ENGINE_SIMULATOR_STARTUP_DELAY": "3600",
            ])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("slow")
        try await harness.start()
        #expect(try await harness.post("/v1/runtime/models/activate", #"{"model_name":"slow","artifact_url":"\#(path)","engine":"sglang"}"#).status == 200)
        let first = try await harness.waitFor("slow") { $0.alive && $0.phase == "booting" }
        #expect(!first.ready)
        let failed = try await harness.waitFor("slow") { $0.phase == "failed" }
        #expect(failed.restart_count == 1)
        #expect(failed.last_error?.contains("did not become ready within 1 s") == true, "\(failed.last_error ?? "")")
        #expect(ProcInfo.engines(ipcName: "kvc_slow").isEmpty, "the last engine was stopped")
    }

    @Test func anActiveEngineThatStopsAnsweringIsRestarted() async throws {
        let harness = try ModelRuntimeHarness(ports: 23310...23319, environment: ["ENGINE_RUNTIME_MODEL_UNHEALTHY_AFTER": "1"])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("flaky")
        try await harness.start()
        let ipc = "kvc_flaky_\(getpid())"
        #expect(try await harness.post("/v1/runtime/models/activate", #"{"model_name":"flaky","artifact_url":"\#(path)","ipc_name":"\#(ipc)"}"#).status == 200)
        let ready = try await harness.waitFor("flaky") { $0.ready }
        let first = try #require(try await harness.pid("flaky"))
        // The engine process lives on, but /health answers 503.
        let client = CurlHTTPClient()
        let dead = HTTPClientRequest(
            method: "POST", url: "http://127.0.0.1:\(ready.port)/_sim/config", headers: ["Content-Type: application/json"],
            body: Array(#"{"dead":true}"#.utf8), timeout: .seconds(5))
        _ = try await TestThreadPool.shared.runIfActive { try client.perform(dead).get() }
        let unready = try await harness.waitFor("flaky") { !$0.ready }
        #expect(unready.phase == "active" && unready.alive, "de-routed, not yet restarted")
        let restarted = try await harness.waitFor("flaky") { $0.ready && $0.restart_count == 1 }
        #expect(try await harness.pid("flaky") != first && restarted.port == ready.port)
        #expect(!ProcInfo.isRunning(first))
    }

    /// Engines that ignore SIGTERM for a minute: the sidecar's SIGTERM gives all of them the
    /// grace period at once, then SIGKILL, so the whole stop fits the pod's grace period.
    @Test func stubbornEnginesAreStoppedTogetherWithinTheGracePeriod() async throws {
        let harness = try ModelRuntimeHarness(
            ports: 23320...23329,
            environment: [
                "ENGINE_RUNTIME_MODEL_STOP_GRACE": "3", "ENGINE_RUNTIME_MODEL_ENV": "ENGINE_SIMULATOR_SHUTDOWN_DELAY",
                "ENGINE_SIMULATOR_SHUTDOWN_DELAY": "60",
            ])
        defer { harness.cleanUp() }
        let path = try harness.makeModel("shared")
        let runtime = try await harness.start()
        for name in ["one", "two", "three"] {
            #expect(try await harness.post("/v1/runtime/models/activate", #"{"model_name":"\#(name)","artifact_url":"\#(path)","ipc_name":"kvc_\#(name)_\#(getpid())"}"#).status == 200)
        }
        var engines: [Int32] = []
        for name in ["one", "two", "three"] {
            try await harness.waitFor(name) { $0.ready }
            engines.append(try #require(try await harness.pid(name)))
        }
        let (status, took) = try await runtime.timedTerminate()
        #expect(status == 0)
        #expect(engines.allSatisfy { !ProcInfo.isRunning($0) }, "SIGKILL after the grace period")
        #expect(took >= .seconds(3), "each engine had its grace period")
        #expect(took < .seconds(8), "in parallel, not one after another (3 × 3 s): \(took)")
        #expect(runtime.output.contains("did not stop within the grace period; sending SIGKILL"))
    }

    /// The sidecar died after spawning an engine and before recording its pid: the engine is
    /// found by the launch id in its environment, not started a second time.
    @Test func anEngineKnownOnlyByItsLaunchIDIsAdopted() async throws {
        let harness = try ModelRuntimeHarness(ports: 23330...23339)
        defer { harness.cleanUp() }
        let path = try harness.makeModel("orphan")
        let port = 23331
        let ipc = "kvc_orphan_\(getpid())"
        let launchID = "launch-\(getpid())-orphan"
        // Spawned the way the runtime spawns engines (own session, the launch id in its
        // environment), by a runtime that then died before writing the pid down.
        let orphan = try EngineSpawner.spawn(
            program: harness.bin + "/vllm",
            arguments: ["vllm", "serve", path, "--host", "127.0.0.1", "--port", "\(port)", "--served-model-name", "orphan"],
            environment: ["ENGINE_RUNTIME_LAUNCH_ID": launchID, "ENABLE_KVCACHED": "true", "KVCACHED_IPC_NAME": ipc, "PATH": "/usr/bin:/bin"],
            logPath: harness.directory.path + "/orphan.log", workingDirectory: harness.directory.path)
        defer {
            killpg(orphan, SIGKILL)
            _ = EngineSpawner.reap(orphan)
        }
        var up = false
        for _ in 0..<100 where !up {
            up = (try? await ServerProcess.get("http://127.0.0.1:\(port)/health"))?.status == 200
            if !up { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(up)
        let record = """
            {"version":1,"engines":[{"model_name":"orphan","artifact_url":"\(path)","engine":"vllm","port":\(port),
             "ipc_name":"\(ipc)","args":[],"phase":"booting","launch_id":"\(launchID)","restart_count":0,"restart_times":[],
             "last_transition":1,"model_path":"\(path)","kv_limit_pending":false,"operations":[]}]}
            """
        try Data(record.utf8).write(to: URL(fileURLWithPath: harness.state + "/engines.json"))
        try await harness.start()
        try await harness.waitFor("orphan") { $0.ready }
        #expect(try await harness.pid("orphan") == orphan)
        #expect(ProcInfo.engines(ipcName: ipc) == [orphan], "adopted, not started twice")
    }

    /// A record whose pid now names another process (same pid, other start time): that
    /// process is left alone and the model gets a new engine.
    @Test func aRecordWhosePidWasReusedIsNeitherAdoptedNorSignalled() async throws {
        let harness = try ModelRuntimeHarness(ports: 23340...23349)
        defer { harness.cleanUp() }
        let path = try harness.makeModel("reused")
        let stranger = try EngineSpawner.spawn(
            program: "/bin/sleep", arguments: ["sleep", "300"], environment: ["PATH": "/usr/bin:/bin"],
            logPath: harness.directory.path + "/sleep.log", workingDirectory: harness.directory.path)
        defer {
            killpg(stranger, SIGKILL)
            _ = EngineSpawner.reap(stranger)
        }
        let record = """
            {"version":1,"engines":[{"model_name":"reused","artifact_url":"\(path)","engine":"vllm","port":23341,
             "ipc_name":"kvc_reused_\(getpid())","args":[],"phase":"active","process":{"pid":\(stranger),"pid_start_time":"1"},
             "launch_id":"launch-\(getpid())-reused","restart_count":0,"restart_times":[],"last_transition":1,
             "model_path":"\(path)","kv_limit_pending":false,"operations":[]}]}
            """
        try Data(record.utf8).write(to: URL(fileURLWithPath: harness.state + "/engines.json"))
        try await harness.start()
        let ready = try await harness.waitFor("reused") { $0.ready }
        #expect(ready.port == 23341)
        #expect(try await harness.pid("reused") != stranger)
        #expect(ProcInfo.isRunning(stranger), "the process that has the old pid now was not signalled")
    }
}

import Foundation
@testable import Host
import TestSupport
import Testing

/// The real engine-runtime binary in front of the engine simulator (both flavors), on loopback.
@Suite struct ManagementAPITests {
    static let flavors = ["vllm", "sglang", "vllm+isolated"]

    /// A directory that exists, to serve as an adapter path (both engines check the path).
    private func adapterDirectory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        try "{}".write(toFile: directory.path + "/adapter_config.json", atomically: true, encoding: .utf8)
        return directory
    }

    private func modelIDs(_ response: HTTPClientResponse) throws -> [String] {
        struct Models: Decodable {
            struct Card: Decodable { var id: String }
            var data: [Card]
        }
        return try JSONCoding.decode(Models.self, from: response.body).data.map(\.id)
    }

    /// The AIBrix ModelAdapter controller's sequence (contract 6.1): list models, load with
    /// artifact_url, credentials and additional_config, then unload with cleanup_local.
    @Test(arguments: EngineProfiles.all)
    func aibrixControllerSequence(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let driver = try JSONCoding.decode(DriverDescription.self, from: try await runtime.get("/v1/drivers/\(flavor.engineKind)").body)
        #expect((driver.isolation?.pid != nil) == flavor.isIsolatedProfile, "\(driver.isolation.map { "\($0)" } ?? "in process")")

        let before = try await runtime.get("/v1/models")
        #expect(before.status == 200)
        #expect(try modelIDs(before) == ["sim-model"])
        let load = try await runtime.post(
            "/v1/lora_adapter/load",
            #"{"lora_name":"sql-lora.v1","artifact_url":"\#(adapter.path)","credentials":{"token":"s3cret"},"additional_config":{"api-key":"k"}}"#)
        #expect(load.status == 200, "\(load.text)")
        struct Loaded: Decodable {
            var status: String
            var message: String
            var local_path: String
        }
        let loaded = try JSONCoding.decode(Loaded.self, from: load.body)
        #expect(loaded.status == "success")
        #expect(loaded.local_path == adapter.path)
        #expect(try modelIDs(try await runtime.get("/v1/models")) == ["sim-model", "sql-lora.v1"])
        #expect(!runtime.output.contains("s3cret"), "credentials are never logged")

        let unload = try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"sql-lora.v1","cleanup_local":true}"#)
        #expect(unload.status == 200, "\(unload.text)")
        #expect(unload.text == #"{"message":"Successfully unloaded adapter sql-lora.v1","status":"success"}"#)
        #expect(try modelIDs(try await runtime.get("/v1/models")) == ["sim-model"])
    }

    @Test(arguments: EngineProfiles.all)
    func directModeLoadAndUnload(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let body = #"{"lora_name":"alpha","lora_path":"\#(adapter.path)"}"#
        let load = try await runtime.post("/v1/lora_adapter/load", body)
        #expect(load.status == 200)
        #expect(load.text == "Success: LoRA adapter 'alpha' loaded successfully from '\(adapter.path)'.")
        // A repeat of the same load is success (idempotent), not the engine's "already loaded".
        #expect(try await runtime.post("/v1/lora_adapter/load", body).status == 200)
        // The same name from another path is a conflict, with the engine's message kept.
        let other = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"alpha","lora_path":"/tmp"}"#)
        #expect(other.status == 409)
        #expect(other.envelope?.message.contains("already") == true)
        // A path the engine cannot find.
        let missing = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"beta","lora_path":"/nonexistent/beta"}"#)
        #expect(missing.status == 404, "\(missing.text)")
        #expect(missing.envelope?.message.contains("/nonexistent/beta") == true)
        // Unload reports the engine's error instead of swallowing it.
        #expect(try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"alpha"}"#).status == 200)
        let again = try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"alpha"}"#)
        #expect(again.status == 404)
        #expect(again.envelope?.type == "not_found")
        #expect(again.envelope?.message.contains("alpha") == true)
    }

    /// Two concurrent loads of one adapter make one engine call; both callers succeed.
    @Test(arguments: flavors)
    func concurrentLoadsOfOneAdapterMakeOneEngineCall(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor, ["--latency-ms", "300"])
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let body = #"{"lora_name":"twin","lora_path":"\#(adapter.path)"}"#
        async let first = runtime.post("/v1/lora_adapter/load", body)
        async let second = runtime.post("/v1/lora_adapter/load", body)
        let (a, b) = try await (first, second)
        #expect(a.status == 200 && b.status == 200, "\(a.text) / \(b.text)")
        let route = flavor.engineKind == "vllm" ? "POST /v1/load_lora_adapter" : "POST /load_lora_adapter"
        #expect(try await engine.requestCount(route) == 1)
    }

    /// The simulator's `dead`: health 503, every other engine route 500 EngineDeadError (what a
    /// driver sees of a dead vLLM engine core), /metrics still served; and a simulator hung on a
    /// request still ends on SIGTERM.
    @Test(arguments: ["vllm", "sglang"])
    func simulatorDeadFailsEveryRouteAndSIGTERMEndsAHang(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        try await engine.configure(#"{"dead":true}"#)
        #expect(try await engine.get("/health").status == 503)
        let models = try await engine.get("/v1/models")
        #expect(models.status == 500 && models.text.contains("EngineDeadError"), "\(models.text)")
        let load = try await engine.post(flavor == "vllm" ? "/v1/load_lora_adapter" : "/load_lora_adapter", #"{"lora_name":"a","lora_path":"/a"}"#)
        #expect(load.status == 500, "\(load.text)")
        #expect(try await engine.get("/metrics").status == 200)
        try await engine.configure(#"{"dead":false,"hang":true}"#)
        async let hung = try? engine.request("GET", "/v1/models", timeout: 30)
        try await Task.sleep(for: .milliseconds(300))
        let (status, took) = try await engine.timedTerminate()
        #expect(status == 0)
        #expect(took < .seconds(10), "SIGTERM took \(took) with a request hung")
        _ = await hung
    }

    @Test(arguments: EngineProfiles.all)
    func readinessFollowsTheEngine(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        #expect(try await runtime.get("/ready").text == #"{"status":"ready"}"#)
        try await engine.configure(#"{"dead":true}"#)
        let dead = try await runtime.get("/ready")
        #expect(dead.status == 503)
        #expect(dead.text.contains("\"status\":\"not ready\""))
        #expect(dead.text.contains("HTTP 503"))
        // Liveness never depends on the engine.
        #expect(try await runtime.get("/healthz").status == 200)
    }

    /// Engine down, then restarting on the same port: not ready, then ready again.
    @Test(arguments: flavors)
    func engineDownAndRestarting(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let port = engine.port
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        #expect(try await runtime.get("/ready").status == 200)
        engine.terminate()
        let down = try await runtime.get("/ready")
        #expect(down.status == 503)
        #expect(down.text.contains("not accepting connections"))
        let models = try await runtime.get("/v1/models")
        #expect(models.status == 503)
        #expect(models.envelope?.type == "unavailable")
        // SGLang answers 503 while it starts (until the test ends the start-up: a clock would
        // race a busy machine); vLLM does not listen until loaded (four seconds here).
        let restarted = try await ServerProcess.simulator(flavor, ["--startup-delay", flavor.engineKind == "sglang" ? "3600" : "4"], port: port)
        defer { restarted.terminate() }
        if flavor.engineKind == "sglang" {
            let starting = try await runtime.get("/ready")
            #expect(starting.status == 503, "\(starting.text)")
            try await restarted.configure(#"{"started":true}"#)
        }
        var ready = false
        for _ in 0..<200 where !ready {
            ready = try await runtime.get("/ready").status == 200
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(ready)
    }

    @Test(arguments: flavors)
    func engineSlowerThanTheDeadlineIsATimeout(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor, arguments: ["--probe-timeout", "1"])
        try await engine.configure(#"{"latency_ms":20000}"#)
        // The client gives up long before the engine answers: a 504 can only come from the
        // runtime's own deadline, whatever the load on the machine.
        let models = try await runtime.request("GET", "/v1/models", timeout: 10)
        #expect(models.status == 504, "\(models.text)")
        #expect(models.envelope?.type == "timeout")
        #expect(try await runtime.get("/ready").status == 503)
    }

    @Test(arguments: flavors)
    func engineErrorsAndGarbage(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor)
        try await engine.configure(#"{"error_rate":1}"#)
        let failing = try await runtime.get("/v1/models")
        #expect(failing.status == 502, "\(failing.text)")
        #expect(failing.envelope?.message.contains("simulated engine failure") == true)
        try await engine.configure(#"{"error_rate":0,"malformed":true}"#)
        let garbage = try await runtime.get("/v1/models")
        #expect(garbage.status == 502)
        #expect(garbage.envelope?.message.contains("not JSON") == true)
    }

    /// The Date header is made per response (no timer keeps it ready): present on every
    /// answer, in RFC 9110's format, and the current second.
    @Test func everyAnswerCarriesTheCurrentDate() async throws {
        #expect(HTTPDateHeader.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDateHeader.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        for path in ["/healthz", "/no-such-route", "/metrics"] {
            let before = time(nil)
            let answer = try await runtime.get(path)
            let after = time(nil)
            let date = try #require(answer.headers["date"], "\(path) has no Date header")
            #expect((before...after).map { HTTPDateHeader.format($0) }.contains(date), "\(path): \(date)")
        }
    }

    @Test func flatVLLMErrorBodiesAreReadToo() async throws {
        let engine = try await ServerProcess.simulator("vllm", ["--flat-errors"])
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let unload = try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"ghost"}"#)
        #expect(unload.status == 404)
        #expect(unload.envelope?.message == "The lora adapter 'ghost' cannot be found.")
    }

    @Test func vllmWithoutRuntimeLoRAOrDevModeSaysWhichSettingToTurnOn() async throws {
        let engine = try await ServerProcess.simulator("vllm", ["--no-lora-updating", "--no-dev-mode"])
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let load = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/tmp"}"#)
        #expect(load.status == 501)
        #expect(load.envelope?.message.contains("VLLM_ALLOW_RUNTIME_LORA_UPDATING=1") == true)
        let sleep = try await runtime.post("/v1/sleep", #"{"level":1}"#)
        #expect(sleep.status == 501)
        #expect(sleep.envelope?.message.contains("VLLM_SERVER_DEV_MODE=1") == true)
    }

    @Test func apiKeyIsForwardedToTheEngine() async throws {
        let engine = try await ServerProcess.simulator("vllm", ["--api-key", "engine-key"])
        let keyed = try await ServerProcess.runtime(for: engine, flavor: "vllm", environment: ["INFERENCE_ENGINE_API_KEY": "engine-key"])
        #expect(try await keyed.get("/v1/models").status == 200)
        #expect(!keyed.output.contains("engine-key"), "the key is never logged")
        let anonymous = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let refused = try await anonymous.get("/v1/models")
        #expect(refused.status == 502)
        #expect(refused.envelope?.message.contains("refused the credentials") == true)
    }

    @Test func authenticationOnAndOff() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let open = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        #expect(try await open.get("/v1/models").status == 200)
        let guarded = try await ServerProcess.runtime(for: engine, flavor: "vllm", environment: ["ENGINE_RUNTIME_AUTH_TOKEN": "t0ken"])
        #expect(try await guarded.get("/healthz").status == 200)
        #expect(try await guarded.get("/ready").status == 200)
        let missing = try await guarded.get("/v1/models")
        #expect(missing.status == 401)
        #expect(missing.envelope?.type == "unauthorized")
        #expect(try await guarded.get("/v1/models", headers: ["Authorization: Bearer wrong"]).status == 401)
        #expect(try await guarded.get("/v1/models", headers: ["Authorization: Bearer t0ken"]).status == 200)
        #expect(try await guarded.get("/v1/drivers", headers: ["Authorization: Bearer t0ke"]).status == 401)
    }

    @Test func badRequestsAreRefusedWithTheEnvelope() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm", arguments: ["--max-body-bytes", "4096"])
        let cases: [(String, Int, String)] = [
            (#"{"lora_name":"#, 400, "not valid JSON"),
            (#"["a"]"#, 400, "must be a JSON object"),
            (#"{"lora_name":"a","lora_path":"/tmp","extra":1}"#, 400, "unknown field \"extra\""),
            (#"{"lora_name":"a"}"#, 400, "missing field \"lora_path\""),
            (#"{"lora_name":5,"lora_path":"/tmp"}"#, 400, "\"lora_name\" must be a string"),
            (#"{"lora_name":"a","lora_path":"/tmp","artifact_url":"/tmp"}"#, 400, "not both"),
            (#"{"lora_name":"a","artifact_url":"ftp://host/a"}"#, 400, "unsupported artifact URI scheme \"ftp\""),
            (#"{"lora_name":"a","artifact_url":"s3://bucket/a","credentials_secret":"../etc"}"#, 400, "Kubernetes secret name"),
            ("{\"lora_name\":\"a\",\"lora_path\":\"" + String(repeating: "x", count: 5000) + "\"}", 413, "larger than 4096 bytes"),
        ]
        for (body, status, message) in cases {
            let response = try await runtime.post("/v1/lora_adapter/load", body)
            #expect(response.status == status, "\(body.prefix(60)) -> \(response.text)")
            #expect(response.envelope?.message.contains(message) == true, "\(response.text)")
            #expect(response.envelope?.code == status)
        }
        #expect(try await engine.requestCount("POST /v1/load_lora_adapter") == 0, "nothing reached the engine")
        let unknownRoute = try await runtime.get("/v1/nothing-here")
        #expect(unknownRoute.status == 404)
        #expect(unknownRoute.envelope?.object == "error")
    }

    @Test func adapterNames() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let valid = ["a", "sql-lora.v1", "my_adapter-2", "Llama3-Chat", "a.b.c", String(repeating: "a", count: 253)]
        for name in valid {
            let response = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"\#(name)","lora_path":"\#(adapter.path)"}"#)
            #expect(response.status == 200, "\(name): \(response.text)")
        }
        let invalid = ["../x", "a/b", ".hidden", "x..y", "", "a b", "-a", "a-", "a\\\\b", String(repeating: "a", count: 254), "%2e%2e"]
        for name in invalid {
            let response = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"\#(name)","lora_path":"\#(adapter.path)"}"#)
            #expect(response.status == 400, "\(name): \(response.text)")
            #expect(response.envelope?.message.hasPrefix("invalid lora_name") == true)
            let unload = try await runtime.post("/v1/lora_adapter/unload", #"{"lora_name":"\#(name)"}"#)
            #expect(unload.status == 400)
        }
    }

    @Test(arguments: EngineProfiles.all)
    func nativeRoutes(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor, environment: ["INFERENCE_ENGINE_VERSION": "nightly-2026"])
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let info = try await runtime.get("/v1/info")
        #expect(info.status == 200)
        #expect(info.text.contains("\"engine\":\"\(flavor.engineKind)\""))
        #expect(info.text.contains("\"engine_version\":\"nightly-2026\""))
        let load = try await runtime.post("/v1/lora_adapters", #"{"lora_name":"n1","lora_path":"\#(adapter.path)"}"#)
        #expect(load.status == 200, "\(load.text)")
        let list = try await runtime.get("/v1/lora_adapters")
        #expect(list.text == #"{"data":[{"base_model":"sim-model","name":"n1","path":"\#(adapter.path)"}],"object":"list"}"#)
        #expect(try await runtime.request("DELETE", "/v1/lora_adapters/n1").status == 200)
        #expect(try await runtime.request("DELETE", "/v1/lora_adapters/n1").status == 404)

        #expect(try await runtime.post("/v1/sleep", #"{"level":1}"#).status == 200)
        struct Stats: Decodable { var sleep_level: Int; var cache_resets: Int }
        #expect(try JSONCoding.decode(Stats.self, from: try await engine.get("/_sim/stats").body).sleep_level == 1)
        #expect(try await runtime.post("/v1/wake", "{}").status == 200)
        #expect(try JSONCoding.decode(Stats.self, from: try await engine.get("/_sim/stats").body).sleep_level == 0)
        #expect(try await runtime.post("/v1/sleep", #"{"level":7}"#).status == 400)

        #expect(try await runtime.post("/v1/reset_cache", "{}").status == 200)
        try await engine.configure(#"{"running_requests":2}"#)
        let busy = try await runtime.post("/v1/reset_cache", "{}")
        #expect(busy.status == 409, "\(busy.text)")
        #expect(busy.envelope?.message.contains("retry") == true)
        #expect(try JSONCoding.decode(Stats.self, from: try await engine.get("/_sim/stats").body).cache_resets == 1)

        // Pause, resume and a reload from disk: what each release has (501 with the reason
        // for what it lacks).
        try await engine.configure(#"{"running_requests":0}"#)
        let hasPause = flavor.engineKind == "sglang" || flavor.isCurrentProfile
        let pause = try await runtime.post("/v1/pause", "{}")
        #expect(pause.status == (hasPause ? 200 : 501), "\(pause.text)")
        #expect(try await runtime.post("/v1/resume", "{}").status == (hasPause ? 200 : 501))
        let reload = try await runtime.post("/v1/reload_weights", #"{"model_path":"\#(adapter.path)"}"#)
        #expect(reload.status == (flavor.engineKind == "sglang" ? 200 : 501), "\(reload.text)")
        #expect(reload.envelope.map { !$0.message.isEmpty } ?? true)

        // The same routes under the engine's name.
        #expect(try await runtime.post("/v1/engines/default/reset_cache", #"{"cache":"prefix"}"#).status == 200)
        #expect(try await runtime.get("/v1/engines/default/info").status == 200)
        #expect(try await runtime.get("/v1/engines/default/models").status == 200)
        #expect(try await runtime.get("/v1/engines/default/ready").status == 200)
        #expect(try await runtime.get("/v1/engines/nope/info").status == 404)
    }

    /// Several engines from a config file, a C driver's extension operation over HTTP.
    @Test func severalEnginesFromAConfigFileAndExtensions() async throws {
        let vllm = try await ServerProcess.simulator("vllm")
        let sglang = try await ServerProcess.simulator("sglang")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for driver in [TestPaths.vllmDriver, TestPaths.sglangDriver] {
            try FileManager.default.copyItem(atPath: driver, toPath: directory.path + "/" + URL(fileURLWithPath: driver).lastPathComponent)
        }
        _ = try await CDriverCompiler.build(TestPaths.templateSource, into: directory.path, name: "libtemplate.so")
        let config = directory.path + "/engines.json"
        try """
        {"default_engine": "chat",
         "engines": [
           {"name": "chat", "engine": "vllm", "endpoint": "\(vllm.baseURL)"},
           {"name": "embed", "engine": "sglang", "endpoint": "\(sglang.baseURL)"},
           {"name": "vendor", "engine": "template-engine", "endpoint": "\(vllm.baseURL)"}
         ]}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let runtime = try await ServerProcess.start(arguments: ["--driver-dir", directory.path, "--config", config])
        struct Engines: Decodable {
            struct Engine: Decodable {
                var name: String
                var engine: String
                var `default`: Bool
            }
            var data: [Engine]
        }
        let engines = try JSONCoding.decode(Engines.self, from: try await runtime.get("/v1/engines").body).data
        #expect(engines.map(\.name) == ["chat", "embed", "vendor"])
        #expect(engines.map(\.default) == [true, false, false])
        #expect(try await runtime.get("/ready").status == 200)
        #expect(try await runtime.get("/v1/engines/embed/info").text.contains("\"engine\":\"sglang\""))
        #expect(try await runtime.get("/v1/models").status == 200)

        let echo = try await runtime.post("/v1/engines/vendor/extensions/template.echo", #"{"text":"hi","times":2}"#)
        #expect(echo.text == #"{"result":"hihi"}"#)
        let bad = try await runtime.post("/v1/engines/vendor/extensions/template.echo", #"{"text":"hi","times":"2"}"#)
        #expect(bad.status == 400)
        #expect(bad.envelope?.message == "argument \"times\" must be int64, not string")
        let extra = try await runtime.post("/v1/engines/vendor/extensions/template.echo", #"{"text":"hi","times":2,"x":1}"#)
        #expect(extra.status == 400)
        #expect(try await runtime.post("/v1/engines/vendor/extensions/template.nope", "{}").status == 404)
        #expect(try await runtime.post("/v1/extensions/template.echo", "{}").status == 404, "the default engine (vLLM) has no such extension")
        // The C driver's metric rules standardize its engine's series, labelled by engine name.
        let metrics = try await runtime.get("/metrics").text
        #expect(metrics.contains("llm_engine_requests_running{engine=\"template-engine\",engine_name=\"vendor\",model_name=\"sim-model\"} 0\n"))
        #expect(metrics.contains("llm_engine_requests_running{engine=\"vllm\",engine_name=\"chat\",model_name=\"sim-model\"} 0\n"))
        #expect(metrics.contains("llm_engine_requests_running{engine=\"sglang\",engine_name=\"embed\",model_name=\"sim-model\"} 0\n"))
        #expect(metrics.contains("engine_name=\"chat\"}") || metrics.contains("engine_name=\"chat\","), "originals carry engine_name")
        // An engine that stops answering makes the whole sidecar not ready, naming it.
        sglang.terminate()
        let ready = try await runtime.get("/ready")
        #expect(ready.status == 503)
        #expect(ready.text.contains("engine embed:"))
    }

    /// A load the engine takes 31 s for succeeds under --mutation-timeout 45: the drivers take
    /// the host's deadline, not a 30 s cap of their own.
    @Test func aMutationMayTakeLongerThanThirtySeconds() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm", arguments: ["--mutation-timeout", "45"])
        try await engine.configure(#"{"latency_ms":31000,"latency_path":"/v1/load_lora_adapter"}"#)
        let adapter = try adapterDirectory()
        defer { adapter.remove() }
        let load = try await runtime.request(
            "POST", "/v1/lora_adapter/load", body: #"{"lora_name":"slow","lora_path":"\#(adapter.path)"}"#, timeout: 60)
        #expect(load.status == 200, "\(load.text)")
    }

    /// An empty token (a secret that did not resolve) stops the server instead of turning
    /// authentication off.
    @Test func anEmptyAuthTokenIsAStartUpError() async throws {
        var env = ProcessInfo.processInfo.environment
        env["ENGINE_RUNTIME_AUTH_TOKEN"] = ""
        // Checked after the token: a runtime that ignored the empty token stops here instead
        // of serving forever.
        env["ENGINE_RUNTIME_PROBE_TIMEOUT"] = "0"
        let result = try await Program.run(TestPaths.binary, ["serve", "--port", "0", "--driver-dir", TestPaths.buildDirectory], environment: env)
        #expect(result.status != 0)
        #expect(result.stderr.contains("ENGINE_RUNTIME_AUTH_TOKEN is set but empty"))
    }

    @Test func badEngineConfigurationFailsFast() async throws {
        var env = ProcessInfo.processInfo.environment
        env["INFERENCE_ENGINE"] = "tgi"
        let result = try await Program.run(TestPaths.binary, ["serve", "--port", "0", "--driver-dir", TestPaths.buildDirectory], environment: env)
        #expect(result.status != 0)
        #expect(result.stderr.contains("engine \"default\": no loaded driver drives engine kind \"tgi\""))
        env["INFERENCE_ENGINE"] = "vllm"
        env["INFERENCE_ENGINE_ENDPOINT"] = "localhost:8000"
        let endpoint = try await Program.run(TestPaths.binary, ["serve", "--port", "0", "--driver-dir", TestPaths.buildDirectory], environment: env)
        #expect(endpoint.status != 0)
        #expect(endpoint.stderr.contains("must start with http:// or https://"))
    }
}

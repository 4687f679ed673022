import Foundation
import Host
import TestSupport
import Testing

/// The real binary: serve, drivers list, drivers check, version and help.
@Suite struct CLITests {
    private func runtime(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProgramOutput {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        return try await Program.run(TestPaths.binary, arguments, environment: env)
    }

    /// A driver directory holding the Swift vLLM and SGLang drivers and the C template.
    private func driverDirectory() async throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for driver in [TestPaths.vllmDriver, TestPaths.sglangDriver, TestPaths.llamaCppDriver] {
            try FileManager.default.copyItem(atPath: driver, toPath: directory.path + "/" + URL(fileURLWithPath: driver).lastPathComponent)
        }
        _ = try await CDriverCompiler.build(TestPaths.templateSource, into: directory.path, name: "libtemplate.so")
        return directory
    }

    /// `log` with a NULL host context (the header allows it, e.g. from the entry function) is
    /// logged untagged, in process and from an isolated driver's host.
    @Test(arguments: [false, true])
    func aLogLineWithoutAContextIsKept(isolated: Bool) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "logs.so", defines: ["LOG_IN_ENTRY"])
        let server = try await RuntimeProcess.start(
            arguments: ["--driver-dir", directory.path] + (isolated ? ["--isolated-drivers", "all"] : []),
            environment: ["INFERENCE_ENGINE": "crafted-engine", "INFERENCE_ENGINE_ENDPOINT": "http://127.0.0.1:9"])
        #expect(server.output.contains("crafted entry logs without a context"), "\(server.output)")
    }

    /// The binary and the in-tree drivers link FoundationEssentials only: Foundation proper
    /// brought libFoundation, libFoundationInternationalization and ICU's 30 MB (8 MiB more
    /// resident at idle and ~9 ms more start-up, measured with scripts/bench_startup.py).
    @Test func theBinaryDoesNotLoadFoundationOrICU() async throws {
        for file in [TestPaths.binary, TestPaths.vllmDriver, TestPaths.sglangDriver, TestPaths.llamaCppDriver] {
            let libraries = try await Program.run("/usr/bin/ldd", [file])
            #expect(libraries.status == 0, "\(libraries.stderr)")
            #expect(libraries.stdout.contains("libFoundationEssentials") || file != TestPaths.binary, "ldd works: \(libraries.stdout)")
            for unwanted in ["libFoundation.so", "libFoundationInternationalization", "_FoundationICU"] {
                #expect(!libraries.stdout.contains(unwanted), "\(file) loads \(unwanted); import FoundationEssentials instead of Foundation")
            }
        }
    }

    @Test func versionAndHelp() async throws {
        let version = try await runtime(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == EngineRuntimeVersion.current)
        let help = try await runtime(["serve", "--help"])
        #expect(help.status == 0)
        for text in ["--host", "--port", "--driver-dir", "--log-level", "ENGINE_RUNTIME_HOST", "ENGINE_RUNTIME_PORT", "ENGINE_RUNTIME_DRIVER_DIR", "ENGINE_RUNTIME_LOG_LEVEL"] {
            #expect(help.stdout.contains(text), "serve --help mentions \(text)")
        }
        let check = try await runtime(["drivers", "check", "--help"])
        #expect(check.stdout.contains("--json"))
    }

    /// A C driver, the Swift vLLM driver and the Swift SGLang driver in one process, listed by
    /// GET /v1/drivers of the real server.
    @Test func serveListsCAndSwiftDriversTogether() async throws {
        let directory = try await driverDirectory()
        defer { directory.remove() }
        let server = try await RuntimeProcess.start(arguments: ["--driver-dir", directory.path])
        let health = try await server.get("/healthz")
        #expect(health.status == 200)
        #expect(String(decoding: health.body, as: UTF8.self) == #"{"status":"ok"}"#)
        let list = try JSONCoding.decode(DriverList.self, from: try await server.get("/v1/drivers").body)
        #expect(list.data.map(\.name) == ["llamacpp", "sglang", "vllm", "template"])
        let llama = try #require(list.data.first { $0.name == "llamacpp" })
        #expect(llama.extension_operations.map(\.name) == ["llamacpp.lora_scale", "llamacpp.set_lora_scale"])
        #expect(list.failures.isEmpty)
        let template = try #require(list.data.first { $0.name == "template" })
        #expect(template.extension_operations.map(\.name) == ["template.echo", "template.scale", "template.set_debug", "template.echo_calls"])
        #expect(template.operations.contains("load_lora_adapter"))
        // Types as words, not the header's numbers.
        let raw = try await server.get("/v1/drivers/llamacpp").text
        #expect(raw.contains(#""result_type":"double""#) && raw.contains(#""type":"string""#), "\(raw)")
        let vllm = try JSONCoding.decode(DriverDescription.self, from: try await server.get("/v1/drivers/vllm").body)
        #expect(vllm.engine_kinds == ["vllm"])
        #expect(vllm.abi_version == "1.4")
        #expect(vllm.can_launch == true && template.can_launch == false, "ABI 1.3 plan_launch: the in-tree drivers have it, the template not")
        let missing = try await server.get("/v1/drivers/nope")
        #expect(missing.status == 404)
        #expect(try JSONCoding.decode(ErrorEnvelope.self, from: missing.body) == ErrorEnvelope(message: "no driver named \"nope\"", type: "not_found", code: 404))
        #expect(server.terminate() == 0, "SIGTERM is a clean shutdown")
    }

    @Test func aBrokenDriverIsLoggedAndTheServerKeepsRunning() async throws {
        let directory = try await driverDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "zz-bad.so", defines: ["ABI_MAJOR=3"])
        // --port 0 (given by RuntimeProcess) wins over a bad ENGINE_RUNTIME_PORT.
        let server = try await RuntimeProcess.start(arguments: ["--driver-dir", directory.path], environment: ["ENGINE_RUNTIME_PORT": "eighty"])
        let list = try JSONCoding.decode(DriverList.self, from: try await server.get("/v1/drivers").body)
        #expect(list.data.count == 4)
        #expect(list.failures == [DriverList.Failure(path: directory.path + "/zz-bad.so", error: "driver ABI major 3 does not match the host's major 1")])
        #expect(server.output.contains("driver not loaded: \(directory.path)/zz-bad.so: driver ABI major 3 does not match the host's major 1"))
        #expect(server.terminate() == 0)
    }

    @Test func badSettingsFailFastWithOneLine() async throws {
        let badEnv = try await runtime(["serve", "--driver-dir", "/tmp"], environment: ["ENGINE_RUNTIME_PORT": "eighty"])
        #expect(badEnv.status != 0)
        #expect(badEnv.stderr.contains("ENGINE_RUNTIME_PORT=\"eighty\" must be a whole number in 0...65535"))
        let badDirectory = try await runtime(["serve", "--driver-dir", "/nonexistent-dir"])
        #expect(badDirectory.status != 0)
        #expect(badDirectory.stderr.contains("cannot read driver directory /nonexistent-dir"))
        let badLevel = try await runtime(["serve", "--log-level", "loud"])
        #expect(badLevel.status != 0)
        #expect(badLevel.stderr.contains("unknown log level \"loud\""))
        let badBuffers = try await runtime(["serve", "--driver-dir", "/tmp"], environment: ["ENGINE_RUNTIME_METRICS_BUFFER_MS": "-5"])
        #expect(badBuffers.status != 0)
        #expect(badBuffers.stderr.contains("ENGINE_RUNTIME_METRICS_BUFFER_MS=\"-5\" must be a whole number in 0...3600000"), "\(badBuffers.stderr)")
    }

    @Test func driversListShowsDriversAndFailures() async throws {
        let directory = try await driverDirectory()
        defer { directory.remove() }
        let good = try await runtime(["drivers", "list", "--driver-dir", directory.path, "--json"])
        #expect(good.status == 0, "\(good.stderr)")
        let list = try JSONCoding.decode(DriverList.self, from: Array(good.stdout.utf8))
        #expect(Set(list.data.map(\.name)) == ["vllm", "sglang", "llamacpp", "template"])
        try "junk".write(toFile: directory.path + "/junk.so", atomically: true, encoding: .utf8)
        let withJunk = try await runtime(["drivers", "list", "--driver-dir", directory.path])
        #expect(withJunk.status == 1)
        #expect(withJunk.stdout.contains("FAILED \(directory.path)/junk.so: not a loadable shared object"))
        #expect(withJunk.stdout.contains("extension: template.echo(text: string, times: int64) -> string"))
    }

    @Test(arguments: ["vllm", "sglang", "llamacpp", "template"])
    func conformancePassesOnInTreeDriversAndTheTemplate(driver: String) async throws {
        let directory = try await driverDirectory()
        defer { directory.remove() }
        let files = ["vllm": "/libEngineVLLM.so", "sglang": "/libEngineSGLang.so", "llamacpp": "/libEngineLlamaCpp.so"]
        let path = directory.path + (files[driver] ?? "/libtemplate.so")
        let result = try await runtime(["drivers", "check", path, "--json", "--timeout", "5"])
        #expect(result.status == 0, "\(result.stdout)")
        let report = try JSONCoding.decode(ConformanceReport.self, from: Array(result.stdout.utf8))
        #expect(report.passed)
        #expect(report.driver == driver)
        #expect(report.checks.contains { $0.name == "health (malformed JSON)" && $0.passed })
        #expect(report.checks.count >= 15)
        // ABI 1.3: the in-tree drivers can launch their engines; the template cannot (no check).
        let planned = report.checks.contains { $0.name == "plan_launch (valid spec)" && $0.passed }
        #expect(planned == (driver != "template"))
        if driver != "template" { #expect(report.checks.contains { $0.name == "plan_launch refuses --port" && $0.passed }) }
    }

    /// The checks run in a child process: a driver that crashes still gets a verdict naming the
    /// check it crashed in.
    @Test func conformanceSurvivesACrashingDriver() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let crashing = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "crash.so", defines: ["CRASH_HEALTH"])
        let result = try await runtime(["drivers", "check", crashing], environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("PASS  create_instance"))
        #expect(result.stdout.contains("FAIL  health (valid request): the driver crashed the checker (SIGSEGV)"))
        #expect(result.stdout.contains("\(crashing): does NOT conform"))
    }

    /// Rules that load but cannot work each get a FAIL line naming the rule and the fix; the
    /// correct rule beside them passes.
    @Test func conformanceNamesEachUselessMetricRule() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "rules.so", defines: ["USELESS_RULES"])
        let result = try await runtime(["drivers", "check", path])
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stdout.contains("FAIL  metric rule #0 crafted:prompt_tokens -> llm_engine_prompt_tokens: ") && result.stdout.contains("(write crafted:prompt_tokens_total)"), "\(result.stdout)")
        #expect(result.stdout.contains("FAIL  metric rule #1 crafted:queue -> llm_engine_queue_depth: ") && result.stdout.contains("llm_engine_queue_depth is not in the standard set"))
        #expect(result.stdout.contains("FAIL  metric rule #2 crafted:ttft -> llm_engine_time_to_first_token_seconds: ") && result.stdout.contains("a gauge source for a standard histogram"))
        #expect(result.stdout.contains("PASS  metric rule #3 crafted:running -> llm_engine_requests_running"))
        let json = try await runtime(["drivers", "check", path, "--json"])
        let report = try JSONCoding.decode(ConformanceReport.self, from: Array(json.stdout.utf8))
        #expect(report.checks.filter { $0.name.hasPrefix("metric rule #") }.map(\.passed) == [false, false, false, true])
    }

    /// Engine options that break the driver's declared config schema stop serve with the
    /// schema's complaint; the driver never sees them. Options that fit start it.
    @Test func optionsOutsideTheDriversSchemaAreRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "schema.so", defines: ["CONFIG_SCHEMA"])
        func engines(_ options: String) throws -> String {
            let path = directory.path + "/engines-\(abs(options.hashValue)).json"
            try #"{"engines":[{"name":"vendor","engine":"crafted-engine","endpoint":"http://127.0.0.1:9","options":\#(options)}]}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let refused = try await runtime(["serve", "--port", "0", "--driver-dir", directory.path, "--config", try engines(#"{"pool":"a","timeout_ms":"fast"}"#)])
        #expect(refused.status != 0)
        #expect(
            (refused.stdout + refused.stderr).contains(#"the options of engine "vendor" do not fit driver crafted's config schema: $.timeout_ms: expected integer, got string"#),
            "\(refused.stderr)")
        let missing = try await runtime(["serve", "--port", "0", "--driver-dir", directory.path, "--config", try engines("{}")])
        #expect(missing.status != 0 && (missing.stdout + missing.stderr).contains("$.pool: is required"), "\(missing.stderr)")
        let fits = try await ServerProcess.start(arguments: ["--driver-dir", directory.path, "--config", try engines(#"{"pool":"b","timeout_ms":500}"#)])
        #expect(try await fits.get("/v1/engines").status == 200)
    }

    /// Without --endpoint, every operation's success path runs against the stand-in engine and
    /// then the failure paths with the engine down; with --endpoint only read-only operations
    /// reach the live engine unless --allow-mutations says so (and the report says which ran).
    @Test func conformanceAgainstTheStandInAndALiveEngine() async throws {
        let vllm = TestPaths.buildDirectory + "/libEngineVLLM.so"
        let standIn = try await runtime(["drivers", "check", vllm, "--json"])
        #expect(standIn.status == 0, "\(standIn.stdout)")
        let report = try JSONCoding.decode(ConformanceReport.self, from: Array(standIn.stdout.utf8))
        #expect(report.engine == "stand-in" && report.skipped.isEmpty)
        let names = report.checks.map(\.name)
        for name in ["load_lora_adapter (valid request)", "load_lora_adapter (non-object JSON)", "load_lora_adapter (valid request) (engine down)", "stand-in engine"] {
            #expect(names.contains(name), "\(name) in \(names)")
        }
        let load = try #require(report.checks.first { $0.name == "load_lora_adapter (valid request)" })
        #expect(load.passed && load.detail == "answered OK", "the success path ran: \(load.detail)")
        let asked = try #require(report.checks.first { $0.name == "stand-in engine" })
        #expect(asked.detail.contains("POST /v1/load_lora_adapter"), "\(asked.detail)")

        let engine = try await ServerProcess.simulator("vllm")
        let readOnly = try await runtime(["drivers", "check", vllm, "--endpoint", engine.baseURL])
        #expect(readOnly.status == 0, "\(readOnly.stdout)")
        #expect(readOnly.stderr.contains("read-only against the live engine at \(engine.baseURL); --allow-mutations runs the mutating operations too"))
        #expect(readOnly.stdout.contains("PASS  mutating operations: not run against the live engine"), "\(readOnly.stdout)")
        #expect(readOnly.stdout.contains("PASS  list_models (valid request): answered OK"))
        #expect(!readOnly.stdout.contains("load_lora_adapter (valid request)"))
        #expect(try await engine.requestCount("POST /v1/load_lora_adapter") == 0, "nothing mutating reached the engine")
        #expect(try await engine.requestCount("POST /reset_prefix_cache") == 0)
        #expect(try await engine.requestCount("GET /v1/models") > 0)

        let mutating = try await runtime(["drivers", "check", vllm, "--endpoint", engine.baseURL, "--allow-mutations", "--json"])
        let live = try JSONCoding.decode(ConformanceReport.self, from: Array(mutating.stdout.utf8))
        #expect(live.engine == engine.baseURL && live.skipped.isEmpty)
        #expect(live.checks.contains { $0.name == "mutating operations" && $0.detail.contains("--allow-mutations") })
        #expect(try await engine.requestCount("POST /v1/load_lora_adapter") > 0)
        let refused = try await runtime(["drivers", "check", vllm, "--allow-mutations"])
        #expect(refused.status != 0 && refused.stderr.contains("--allow-mutations needs --endpoint"))
    }

    /// engine_info without `engine`, a model list that is not one: failed with the contract.
    @Test func conformanceChecksTheAnswersContract() async throws {
        #expect(DriverConformance.answerProblem(.engineInfo, Array(#"{"version":"1"}"#.utf8))?.contains(#"string "engine""#) == true)
        #expect(DriverConformance.answerProblem(.engineInfo, Array(#"{"engine":"acme","version":"1"}"#.utf8)) == nil)
        #expect(DriverConformance.answerProblem(.listModels, Array(#"{"data":[{"name":"x"}]}"#.utf8))?.contains("OpenAI model list") == true)
        #expect(DriverConformance.answerProblem(.listModels, Array(#"{"object":"list","data":[{"id":"x"}]}"#.utf8)) == nil)
    }

    @Test func conformanceFailsOnABrokenDriverWithTheReason() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let broken = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "broken.so", defines: ["BROKEN", "DRIVER_NAME=\"broken\""])
        let result = try await runtime(["drivers", "check", broken])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL  health (valid request): the answer is not valid JSON: this is not json"))
        #expect(result.stdout.contains("FAIL  health (malformed JSON): answered OK to malformed JSON; expected invalid_argument"))
        #expect(result.stdout.contains("FAIL  health (non-object JSON): answered OK to non-object JSON; expected invalid_argument"))
        #expect(result.stdout.contains(
            "FAIL  readiness (valid request): failed against the stand-in engine, which answers every request with success: internal_error: driver returned unknown status 42"))
        #expect(result.stdout.contains("FAIL  readiness (valid request) (engine down): bad failure: internal_error: driver returned unknown status 42"))
        #expect(result.stdout.contains("\(broken): does NOT conform"))

        let badMagic = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "magic.so", defines: ["MAGIC=7u"])
        let magic = try await runtime(["drivers", "check", badMagic, "--json"])
        #expect(magic.status == 1)
        let report = try JSONCoding.decode(ConformanceReport.self, from: Array(magic.stdout.utf8))
        #expect(!report.passed)
        #expect(report.checks.first?.detail == "bad magic 0x7 in the driver descriptor (expected 0x45525444)")
    }
}

import Foundation
import Host
import Testing
import TestSupport

/// examples/driver-template-rust built with cargo (offline, no crates), checked, and loaded
/// into the real binary in front of the simulator; its layout asserts against the header.
@Suite struct RustTemplateTests {
    static let template = TestPaths.packageRoot.appendingPathComponent("examples/driver-template-rust").path

    /// cargo from PATH, or where rustup puts it (scripts/setup.sh installs it there).
    static let cargo: String = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/cargo" } + [NSHomeDirectory() + "/.cargo/bin/cargo"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "cargo"
    }()

    /// A copy of the template (cargo writes Cargo.lock and target/ beside the sources, and tests
    /// run side by side), built; the path of the .so, or the build's output on failure.
    static func build(features: [String] = [], header: String? = nil) async throws -> (directory: TemporaryDirectory, library: String?, output: String) {
        let directory = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: template + "/src", toPath: directory.path + "/src")
        try FileManager.default.copyItem(atPath: template + "/Cargo.toml", toPath: directory.path + "/Cargo.toml")
        if let header {
            // The Rust asserts regenerated from another header, as the script writes them.
            let generated = try await Program.run(
                "/usr/bin/python3",
                [TestPaths.packageRoot.appendingPathComponent("scripts/abi_layout.py").path, "--header", header,
                 "--json", directory.path + "/layout.json", "--rust", directory.path + "/src/layout.rs"])
            #expect(generated.status == 0, "\(generated.stderr)")
        }
        let build = try await Program.run(
            cargo, ["build", "--release", "--offline", "--quiet"] + (features.isEmpty ? [] : ["--features", features.joined(separator: ",")]),
            environment: ProcessInfo.processInfo.environment.merging(["CARGO_TARGET_DIR": directory.path + "/target"]) { $1 },
            directory: directory.path)
        let library = directory.path + "/target/release/librust_template_driver.so"
        return (directory, build.status == 0 ? library : nil, build.stdout + build.stderr)
    }

    @Test func buildsConformsAndServesAnEngine() async throws {
        let (directory, built, output) = try await Self.build()
        defer { directory.remove() }
        let library = try #require(built, "cargo build failed:\n\(output)")
        let check = try await Program.run(TestPaths.binary, ["drivers", "check", library])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("PASS  extension rust_template.echo (zero arguments)"), "\(check.stdout)")

        let engine = try await ServerProcess.simulator("vllm")
        try await engine.configure(#"{"running_requests":4}"#)
        let runtime = try await ServerProcess.start(
            arguments: ["--driver-dir", directory.path, "--driver", library, "--log-level", "debug"],
            environment: ["INFERENCE_ENGINE": "rust-template-engine", "INFERENCE_ENGINE_ENDPOINT": engine.baseURL])
        #expect(try await runtime.get("/ready").status == 200)
        let models = try await runtime.get("/v1/models")
        #expect(models.status == 200 && models.text.contains("sim-model"), "\(models.text)")
        let info = try await runtime.get("/v1/engines/default/info")
        #expect(info.status == 200 && info.text.contains(#""engine":"rust-template-engine""#), "\(info.text)")
        let adapter = try TemporaryDirectory()
        defer { adapter.remove() }
        try "{}".write(toFile: adapter.path + "/adapter_config.json", atomically: true, encoding: .utf8)
        let load = try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"rusty","lora_path":"\#(adapter.path)"}"#)
        #expect(load.status == 200, "\(load.text)")
        #expect(try await engine.requestCount("POST /v1/load_lora_adapter") == 1)
        let add = try await runtime.post("/v1/engines/default/extensions/rust_template.add", #"{"a":2,"b":40}"#)
        #expect(add.status == 200 && add.text == #"{"result":42}"#, "\(add.text)")
        let echo = try await runtime.post("/v1/engines/default/extensions/rust_template.echo", #"{"text":"ab","times":3}"#)
        #expect(echo.status == 200 && echo.text == #"{"result":"ababab"}"#, "\(echo.text)")
        let refused = try await runtime.post("/v1/engines/default/extensions/rust_template.echo", #"{"text":"ab","times":1000}"#)
        #expect(refused.status == 400 && refused.text.contains("times must be within 0...100"), "\(refused.text)")
        let metrics = try await runtime.get("/metrics")
        #expect(metrics.text.contains(#"llm_engine_requests_running{engine="rust-template-engine",model_name="sim-model"} 4"#), "the metric rule maps the engine's gauge")
        #expect(runtime.output.contains("adapter rusty loaded"), "the driver logs through the host")
    }

    /// A panic inside an entry point is answered as an internal error; the sidecar goes on.
    @Test func aPanicIsAnInternalErrorNotACrash() async throws {
        let (directory, built, output) = try await Self.build(features: ["panic-on-info"])
        defer { directory.remove() }
        let library = try #require(built, "cargo build failed:\n\(output)")
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.start(
            arguments: ["--driver-dir", directory.path, "--driver", library],
            environment: ["INFERENCE_ENGINE": "rust-template-engine", "INFERENCE_ENGINE_ENDPOINT": engine.baseURL])
        let info = try await runtime.get("/v1/engines/default/info")
        #expect(info.status == 500 && info.text.contains("the driver panicked: engine_info panics"), "\(info.text)")
        #expect(try await runtime.get("/v1/models").status == 200)
        #expect(try await runtime.get("/healthz").status == 200)
    }

    /// The published layout and the Rust asserts match the header; a header with two fields
    /// swapped gives asserts the Rust bindings fail, naming the field.
    @Test func layoutAssertsFollowTheHeaderAndCatchAMove() async throws {
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/abi_layout.py").path
        let check = try await Program.run("/usr/bin/python3", [script, "--check"])
        #expect(check.status == 0, "Sources/PluginABI/abi_layout.json or the template's layout.rs is stale: \(check.stderr)")
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let header = try String(contentsOfFile: TestPaths.headerDirectory + "/engine_runtime_driver.h", encoding: .utf8)
        let swapped = header.replacingOccurrences(
            of: "    ert_operation_fn health;\n    ert_operation_fn readiness;", with: "    ert_operation_fn readiness;\n    ert_operation_fn health;")
        #expect(swapped != header)
        try swapped.write(toFile: scratch.path + "/engine_runtime_driver.h", atomically: true, encoding: .utf8)
        let (directory, built, output) = try await Self.build(header: scratch.path + "/engine_runtime_driver.h")
        defer { directory.remove() }
        #expect(built == nil, "the bindings built against a header whose fields moved")
        #expect(output.contains("offset of ert_operations.health"), "\(output.suffix(3000))")
    }
}

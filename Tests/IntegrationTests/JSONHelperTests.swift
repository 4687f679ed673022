import Foundation
import Host
import Testing
import TestSupport

/// examples/driver-template-c/ert_json.h, the C template's JSON helper: its own checks
/// (Tests/Fixtures/json_helper_test.c) compiled with cc as C11 and as C++17, and the template
/// reading nested engine answers with it in front of the simulator.
@Suite struct JSONHelperTests {
    static let helperDirectory = TestPaths.packageRoot.appendingPathComponent("examples/driver-template-c").path
    static let checks = TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/json_helper_test.c").path

    @Test(arguments: [["-x", "c", "-std=c11", "-pedantic"], ["-x", "c++", "-std=c++17"]])
    func theHelpersChecksPass(language: [String]) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let compiler = language.contains("c++") ? "/usr/bin/g++" : "/usr/bin/cc"
        // C++ has no compound literals or designated initializers of this kind in the checks:
        // compile the header alone there.
        let source: String
        if language.contains("c++") {
            source = directory.path + "/include.cpp"
            try #"#include "ert_json.h"\#nint main() { ert_json_value v; return ert_json_parse("{}", 2, &v) ? 0 : 1; }\#n"#
                .write(toFile: source, atomically: true, encoding: .utf8)
        } else {
            source = Self.checks
        }
        let program = directory.path + "/checks"
        let build = try await Program.run(
            compiler,
            language + ["-Wall", "-Wextra", "-Werror", "-I", TestPaths.headerDirectory, "-I", Self.helperDirectory, "-o", program, source])
        #expect(build.status == 0, "\(build.stderr)")
        let run = try await Program.run(program, [])
        #expect(run.status == 0, "\(run.stdout)")
        if !language.contains("c++") { #expect(run.stdout.contains("all checks passed"), "\(run.stdout)") }
    }

    /// The template's engine_info: `engine` (which the host requires), the version from
    /// /version and the model from the nested list of /v1/models (`data.0.id`).
    @Test func theTemplateReadsNestedEngineAnswers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.templateSource, into: directory.path, name: "template.so")
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.start(
            arguments: ["--driver-dir", directory.path],
            environment: ["INFERENCE_ENGINE": "template-engine", "INFERENCE_ENGINE_ENDPOINT": engine.baseURL])
        let info = try await runtime.get("/v1/engines/default/info")
        #expect(info.status == 200, "\(info.text)")
        #expect(info.text.contains(#""info":{"engine":"template-engine","model":"sim-model","version":"0.33.0"}"#), "\(info.text)")
    }
}

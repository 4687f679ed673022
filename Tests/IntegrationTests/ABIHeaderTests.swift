import Foundation
import TestSupport
import Testing

/// The public header is the contract: it must compile cleanly for every vendor toolchain.
@Suite struct ABIHeaderTests {
    private func compile(language: [String], extraFlags: [String] = [], source: String) async throws -> ProgramOutput {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/check.src"
        try source.write(toFile: file, atomically: true, encoding: .utf8)
        return try await Program.run(
            "/usr/bin/cc",
            language + ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I", TestPaths.headerDirectory] + extraFlags + [file])
    }

    private let includingSource = """
        #include "engine_runtime_driver.h"
        int main(void) { ert_error e; e.struct_size = sizeof e; e.status = ERT_STATUS_OK; return (int)e.status; }
        """

    @Test func compilesAsC11() async throws {
        let result = try await compile(language: ["-x", "c", "-std=c11"], source: includingSource)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func compilesAsCpp17() async throws {
        let result = try await compile(language: ["-x", "c++", "-std=c++17"], source: includingSource)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func layoutAssertionsHoldAndCatchAReorder() async throws {
        let layout = try String(contentsOfFile: TestPaths.packageRoot.appendingPathComponent("Sources/PluginABI/abi_layout_checks.c").path, encoding: .utf8)
        let good = try await compile(language: ["-x", "c", "-std=c11"], source: layout)
        #expect(good.status == 0, "\(good.stderr)")
        // The same assertions against a header with two fields swapped must fail to compile.
        let header = try String(contentsOfFile: TestPaths.headerDirectory + "/engine_runtime_driver.h", encoding: .utf8)
        let swapped = header.replacingOccurrences(
            of: "    ert_operation_fn health;\n    ert_operation_fn readiness;",
            with: "    ert_operation_fn readiness;\n    ert_operation_fn health;")
        #expect(swapped != header)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try swapped.write(toFile: directory.path + "/engine_runtime_driver.h", atomically: true, encoding: .utf8)
        let bad = try await compile(language: ["-x", "c", "-std=c11"], extraFlags: ["-I", directory.path], source: layout.replacingOccurrences(of: "#include \"engine_runtime_driver.h\"", with: "#include \"\(directory.path)/engine_runtime_driver.h\""))
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("ert_operations.health"))
    }
}

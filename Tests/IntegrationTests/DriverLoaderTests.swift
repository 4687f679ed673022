import Foundation
import Host
import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// Every way a driver file can be wrong, built as a real .so with `cc`, must give one clear
/// line naming the file and the cause, and leave the host running with the other drivers.
@Suite struct DriverLoaderTests {
    /// Builds the crafted driver with `defines` and returns the load failure's line.
    private func failure(_ defines: [String], name: String = "bad.so") async throws -> String {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: name, defines: defines)
        switch DriverLoader.load(path: path) {
        case .success(let driver): Issue.record("driver \(driver.name) loaded but should not have"); return ""
        case .failure(let failure):
            #expect(failure.description.hasPrefix(path + ": "), "the line names the file")
            return failure.description
        }
    }

    /// ABI 1.4's counted engine kinds need no NULL; a NULL-terminated list is read at most 64
    /// entries deep, so one without its NULL is refused instead of read past its end.
    @Test func engineKindsAreReadWithinBounds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "counted.so", defines: ["COUNTED_KINDS=2"])
        let counted = try DriverLoader.load(path: path).get()
        #expect(counted.engineKinds == ["crafted-engine", "crafted-other"])
        #expect(try await failure(["UNTERMINATED_KINDS"]).contains("no NULL within 64 entries"))
        #expect(try await failure(["COUNTED_KINDS=65"], name: "many.so").contains("engine_kind_count"))
        // A 1.3 descriptor (no count field) is still read as NULL-terminated.
        let old = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "old.so", defines: ["DESCRIPTOR_SIZE=ERT_DRIVER_DESCRIPTOR_SIZE_V1_3"])
        #expect(try DriverLoader.load(path: old).get().engineKinds == ["crafted-engine"])
    }

    @Test func missingFile() {
        let result = DriverLoader.load(path: "/nonexistent/driver.so")
        guard case .failure(let failure) = result else { Issue.record("loaded a missing file"); return }
        #expect(failure.description == "/nonexistent/driver.so: no such file")
    }

    @Test func notASharedObject() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/text.so"
        try "just text".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failure(let failure) = DriverLoader.load(path: path) else { Issue.record("loaded a text file"); return }
        #expect(failure.error.description.hasPrefix("not a loadable shared object"))
        #expect(failure.description.contains("text.so"))
    }

    @Test func missingEntrySymbolSaysHowToExportItInEachLanguage() async throws {
        let line = try await failure(["ENTRY_NAME=some_other_name"])
        #expect(line.contains("exports no ert_driver_entry_v1 symbol"))
        for hint in ["C: `ERT_EXPORT", "C++: the same inside `extern \"C\"`", "Rust: `#[no_mangle]", "cdylib", "Swift: `@_cdecl(\"ert_driver_entry_v1\")"] {
            #expect(line.contains(hint), "\(hint) in \(line)")
        }
    }

    @Test func missingEntrySymbolNamesTheOtherMajor() async throws {
        let line = try await failure(["ENTRY_NAME=ert_driver_entry_v2"])
        #expect(line.contains("exports no ert_driver_entry_v1 symbol"))
        #expect(line.contains("built for driver ABI major 2"))
    }

    @Test func badMagic() async throws {
        #expect(try await failure(["MAGIC=0x12345678u"]).contains("bad magic 0x12345678"))
    }

    @Test func abiMajorMismatch() async throws {
        #expect(try await failure(["ABI_MAJOR=2"]).contains("driver ABI major 2 does not match the host's major 1"))
    }

    @Test func driverNeedsNewerMinor() async throws {
        #expect(try await failure(["MIN_HOST_MINOR=7"]).contains("driver needs host ABI 1.7 or newer; this host has 1.4"))
    }

    @Test func requiredFieldNull() async throws {
        #expect(try await failure(["NULL_NAME"]).contains("required descriptor field name is NULL"))
        #expect(try await failure(["NULL_VERSION"]).contains("required descriptor field version is NULL"))
        #expect(try await failure(["NULL_DESTROY"]).contains("required descriptor field destroy_instance is NULL"))
    }

    @Test func invalidDriverName() async throws {
        #expect(try await failure(["DRIVER_NAME=\"Bad Name\""]).contains("invalid driver name \"Bad Name\""))
        #expect(try await failure(["DRIVER_NAME=\"../escape\""]).contains("invalid driver name"))
    }

    @Test func structSizeTooSmall() async throws {
        #expect(try await failure(["DESCRIPTOR_SIZE=48"]).contains("ert_driver_descriptor.struct_size is 48"))
        #expect(try await failure(["OPERATIONS_SIZE=24"]).contains("ert_operations.struct_size is 24"))
    }

    @Test func driverRefusesHost() async throws {
        #expect(try await failure(["REFUSE"]).contains("the driver refused this host: needs a GPU that is not there"))
    }

    @Test func invalidExtensionDeclarations() async throws {
        #expect(try await failure(["EXT_VARIANT=1"]).contains("extension operation \"Bad-Name\": name must match"))
        #expect(try await failure(["EXT_VARIANT=2"]).contains("\"crafted.add\": declared twice"))
        #expect(try await failure(["EXT_VARIANT=3"]).contains("invalid type code 99"))
        #expect(try await failure(["EXT_VARIANT=4"]).contains("17 parameters declared; at most 16"))
        #expect(try await failure(["EXT_VARIANT=5"]).contains("function is NULL"))
        #expect(try await failure(["EXT_VARIANT=6"]).contains("parameter name \"B c\""))
    }

    @Test func duplicateDriverNameIsRefusedAndTheFirstKept() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "a.so", defines: ["DRIVER_NAME=\"twin\""])
        let second = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "b.so", defines: ["DRIVER_NAME=\"twin\""])
        var registry = DriverRegistry()
        try registry.loadDirectory(directory.path)
        #expect(registry.drivers.map(\.path) == [first])
        #expect(registry.failures.map(\.description) == ["\(second): a driver named \"twin\" is already loaded from \(first)"])
    }

    /// RTLD_LOCAL keeps two drivers with the same entry symbol apart: each answers as itself.
    @Test func twoDriversExportingTheSameSymbolStayApart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "one.so", defines: ["DRIVER_NAME=\"one\""])
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "two.so", defines: ["DRIVER_NAME=\"two\""])
        var registry = DriverRegistry()
        try registry.loadDirectory(directory.path)
        #expect(registry.drivers.map(\.name) == ["one", "two"])
        try await withThreadPool { (pool: WorkerPool) async throws in
            for driver in registry.drivers {
                let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
                let answer = try await instance.invoke(.health, request: Array("{}".utf8), timeout: .seconds(5))
                #expect(String(decoding: answer, as: UTF8.self) == "{\"healthy\":true,\"driver\":\"\(driver.name)\"}")
                await instance.shutdown()
            }
        }
    }

    /// A directory with good and bad files: the good ones load, each bad one is one failure.
    @Test func failuresDoNotStopTheOtherDrivers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.templateSource, into: directory.path, name: "libtemplate.so")
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "magic.so", defines: ["MAGIC=1u"])
        try "nope".write(toFile: directory.path + "/junk.so", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: directory.path + "/README.txt", atomically: true, encoding: .utf8)
        var registry = DriverRegistry()
        try registry.loadDirectory(directory.path)
        #expect(registry.drivers.map(\.name) == ["template"])
        #expect(registry.failures.count == 2)
    }

    @Test func unreadableDirectoryIsAnError() {
        var registry = DriverRegistry()
        #expect(throws: DriverDirectoryError.self) { try registry.loadDirectory("/nonexistent-driver-dir") }
    }

    @Test func unsupportedOperationIsRefusedWithoutACall() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "ops.so", defines: ["DRIVER_NAME=\"ops\""])
        let driver = try DriverLoader.load(path: path).get()
        #expect(driver.supportedOperations == [.health, .readiness])
        try await withThreadPool { (pool: WorkerPool) async throws in
            let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
            await #expect(throws: RuntimeError(.unsupported, "driver ops does not support sleep")) {
                try await instance.invoke(.sleep, request: Array("{}".utf8), timeout: .seconds(1))
            }
            await instance.shutdown()
        }
    }

    @Test func wrongEngineKindIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "kind.so", defines: ["DRIVER_NAME=\"kind\""])
        let driver = try DriverLoader.load(path: path).get()
        try await withThreadPool { (pool: WorkerPool) async throws in
            await #expect(throws: RuntimeError.self) {
                try await makeInstance(driver, engineKind: "vllm", pool: pool)
            }
        }
    }
}

/// Struct growth: a driver built against a later 1.x header declares larger structs; the host
/// reads the fields it knows and ignores the rest.
@Suite struct StructGrowthTests {
    /// A driver built against ABI 1.0 (no metric fields) loads on this 1.3 host.
    @Test func anABI10DriverLoads() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "old.so",
            defines: ["DRIVER_NAME=\"old\"", "DESCRIPTOR_SIZE=ERT_DRIVER_DESCRIPTOR_SIZE_V1_0"])
        let driver = try DriverLoader.load(path: path).get()
        #expect(driver.metricRules.isEmpty && driver.metricsPath == nil)
    }

    /// ABI 1.2 appended pause, resume, reload_weights to the table and three fields to a rule:
    /// a 1.1 driver's shorter structs read as absent, whatever lies in memory after them.
    @Test func fieldsBeyondAnOlderStructSizeAreAbsent() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let old = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "old-table.so",
            defines: ["DRIVER_NAME=\"oldtable\"", "PAUSE_OP", "OPERATIONS_SIZE=ERT_OPERATIONS_SIZE_V1_0", "OLD_RULE"])
        let driver = try DriverLoader.load(path: old).get()
        #expect(driver.supportedOperations == [.health, .readiness])
        let rule = try #require(driver.metricRules.first)
        #expect(rule.aggregateLabels == ["rank"])
        #expect(rule.duplicateLabels.isEmpty && rule.keepLabels.isEmpty && rule.valueLabel == nil)
        let new = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "new-table.so", defines: ["DRIVER_NAME=\"newtable\"", "PAUSE_OP"])
        #expect(try DriverLoader.load(path: new).get().supportedOperations == [.health, .readiness, .pause])
    }

    @Test func invalidMetricRulesAreRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "rule.so", defines: ["BAD_RULE"])
        guard case .failure(let failure) = DriverLoader.load(path: path) else { Issue.record("loaded a bad rule"); return }
        #expect(failure.error.description == "metric rule #0: standard_name must be an llm_engine_* name without _total")
    }

    @Test func aNewerDriverWithLargerStructsLoads() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "newer.so",
            defines: ["DRIVER_NAME=\"newer\"", "DESCRIPTOR_SIZE=(sizeof(ert_driver_descriptor)+64)", "OPERATIONS_SIZE=(sizeof(ert_operations)+8)"])
        let driver = try DriverLoader.load(path: path).get()
        #expect(driver.name == "newer")
        #expect(driver.supportedOperations == [.health, .readiness])
        #expect(driver.extensionOperations.map(\.name) == ["crafted.add"])
    }
}

/// A file dlopen refused may be replaced in place (same inode) by a real driver; the loader
/// must look at it again rather than remember the old failure.
@Suite struct LoaderCacheTests {
    @Test func aRefusedFileReplacedInPlaceLoads() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let built = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "built.so", defines: ["DRIVER_NAME=\"inplace\""])
        let path = directory.path + "/driver.so"
        try "not yet a driver".write(toFile: path, atomically: false, encoding: .utf8)
        guard case .failure = DriverLoader.load(path: path) else { Issue.record("text loaded"); return }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: try Data(contentsOf: URL(fileURLWithPath: built)))
        try handle.close()
        #expect(try DriverLoader.load(path: path).get().name == "inplace")
    }
}

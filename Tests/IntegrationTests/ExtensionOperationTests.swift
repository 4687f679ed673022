import Foundation
import Host
import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// Typed vendor operations through libffi: good arguments reach the C function with the right
/// types and results come back; bad arguments are refused before anything is called.
@Suite struct ExtensionOperationTests {
    /// Loads the C template (built with cc) and runs `body` with an instance of it.
    private func withTemplate(_ body: (DriverInstance) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.templateSource, into: directory.path, name: "libext.so", defines: ["TEMPLATE_DRIVER_NAME=\"ext\""])
        let driver = try DriverLoader.load(path: path).get()
        try await withThreadPool { (pool: WorkerPool) async throws in
            let instance = try await makeInstance(driver, engineKind: "template-engine", pool: pool)
            try await body(instance)
            await instance.shutdown()
        }
    }

    private func call(_ instance: DriverInstance, _ name: String, _ json: String) async throws -> JSONValue {
        try await instance.invokeExtension(named: name, argumentsJSON: Array(json.utf8), timeout: .seconds(5))
    }

    @Test func declarationsAreReadWithTheirTypes() async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            let operations = instance.driver.extensionOperations
            #expect(operations.map(\.name) == ["template.echo", "template.scale", "template.set_debug", "template.echo_calls"])
            #expect(operations[0].parameters == [ExtensionParameter(name: "text", type: .string), ExtensionParameter(name: "times", type: .int64)])
            #expect(operations[0].resultType == .string)
            #expect(operations[2].isMutating)
            #expect(!operations[0].isMutating)
        }
    }

    @Test func everyTypeRoundTrips() async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            #expect(try await call(instance, "template.echo", #"{"text":"ab\u00e9","times":3}"#) == .string("abéabéabé"))
            #expect(try await call(instance, "template.scale", #"{"value":1.5,"factor":-4}"#) == .number(-6))
            #expect(try await call(instance, "template.set_debug", #"{"enabled":true}"#) == .bool(false))
            #expect(try await call(instance, "template.set_debug", #"{"enabled":false}"#) == .bool(true))
            #expect(try await call(instance, "template.echo_calls", "{}") == .integer(1))
            // An empty body is an empty argument object.
            #expect(try await call(instance, "template.echo_calls", "") == .integer(1))
        }
    }

    @Test func theDriversOwnErrorComesBack() async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            await #expect(throws: RuntimeError(.invalidArgument, "times must be in 0...100")) {
                try await call(instance, "template.echo", #"{"text":"x","times":101}"#)
            }
        }
    }

    @Test(arguments: [
        (#"{"times":1}"#, "missing argument \"text\" (string)"),
        (#"{"text":"x","times":1,"extra":true}"#, "unknown argument \"extra\" for template.echo"),
        (#"{"text":5,"times":1}"#, "argument \"text\" must be string, not number"),
        (#"{"text":"x","times":"1"}"#, "argument \"times\" must be int64, not string"),
        (#"{"text":"x","times":1.5}"#, "argument \"times\" must be an integer"),
        (#"{"text":"x","times":9223372036854775808}"#, "argument \"times\" is outside the int64 range"),
        (#"{"text":"a\u0000b","times":1}"#, "argument \"text\" contains a NUL character"),
        (#"{"text":"x","times":true}"#, "argument \"times\" must be int64, not boolean"),
        (#"["x",1]"#, "the arguments must be a JSON object, not array"),
        (#"{"text":"x","#, "the request body is not valid JSON"),
    ])
    func badArgumentsAreRefusedAndNothingIsCalled(json: String, message: String) async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            await #expect(throws: RuntimeError(.invalidArgument, message)) {
                try await call(instance, "template.echo", json)
            }
            #expect(try await call(instance, "template.echo_calls", "{}") == .integer(0))
        }
    }

    @Test func boolAndDoubleAreChecked() async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            await #expect(throws: RuntimeError(.invalidArgument, "argument \"enabled\" must be bool, not number")) {
                try await call(instance, "template.set_debug", #"{"enabled":1}"#)
            }
            await #expect(throws: RuntimeError(.invalidArgument, "argument \"value\" must be double, not string")) {
                try await call(instance, "template.scale", #"{"value":"1","factor":2}"#)
            }
        }
    }

    @Test func unknownOperationIsNotFound() async throws {
        try await withTemplate { (instance: DriverInstance) async throws in
            await #expect(throws: RuntimeError(.notFound, "driver ext has no extension operation \"template.nope\"")) {
                try await call(instance, "template.nope", "{}")
            }
        }
    }
}

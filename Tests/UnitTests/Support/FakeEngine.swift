import Foundation
import Host
import NIOCore
import Synchronization

/// An engine in memory behind the `Engine` seam: answers are programmed per operation, and
/// every call is recorded (operation, single-flight key, request body) for the tests to read.
final class FakeEngine: Engine {
    struct Call: Equatable {
        var operation: DriverOperation
        var key: String?
        var body: String
    }

    let name: String
    private let state = Mutex<(answers: [DriverOperation: Result<String, RuntimeError>], calls: [Call], ready: (Bool, String?))>(
        ([:], [], (true, nil)))

    init(name: String = "default") { self.name = name }

    var summary: EngineSummary {
        EngineSummary(name: name, kind: "fake", endpoint: "http://127.0.0.1:9", engineVersion: "1.0", driverName: "fake", driverVersion: "0.1")
    }

    func answer(_ operation: DriverOperation, with json: String) { state.withLock { $0.answers[operation] = .success(json) } }
    func fail(_ operation: DriverOperation, with error: RuntimeError) { state.withLock { $0.answers[operation] = .failure(error) } }
    func setReady(_ ready: Bool, reason: String? = nil) { state.withLock { $0.ready = (ready, reason) } }
    var calls: [Call] { state.withLock { $0.calls } }

    private func record(_ operation: DriverOperation, key: String?, _ request: some Encodable) throws(RuntimeError) -> [UInt8] {
        let body = (try? JSONCoding.encode(request)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        let answer = state.withLock { state in
            state.calls.append(Call(operation: operation, key: key, body: body))
            return state.answers[operation] ?? .success("{}")
        }
        return Array(try answer.get().utf8)
    }

    func call(_ operation: DriverOperation, _ request: some Encodable) async throws(RuntimeError) -> [UInt8] {
        try record(operation, key: nil, request)
    }

    func adapterCall(_ operation: DriverOperation, key: String, _ request: some Encodable & Sendable) async throws(RuntimeError) -> [UInt8] {
        try record(operation, key: key, request)
    }

    func readiness() async -> (ready: Bool, reason: String?) { state.withLock { $0.ready } }

    func extensionOperation(named name: String) -> ExtensionOperation? { nil }

    func invokeExtension(_ operation: ExtensionOperation, arguments: [UInt8]) async throws(RuntimeError) -> JSONValue {
        throw RuntimeError(.unsupported, "no extensions")
    }
}

/// Renders a fixed text for `/metrics`.
struct FixedMetrics: MetricsRendering {
    var text = "# fixed\n"
    func render() async -> ByteBuffer { ByteBuffer(string: text) }
}

extension Result where Failure == RuntimeError {
    /// The kind of the failure, nil on success.
    var failureKind: ErrorKind? {
        if case .failure(let error) = self { return error.kind }
        return nil
    }
}

/// A value closures on several tasks share under a lock.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

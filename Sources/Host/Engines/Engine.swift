/// What the services need from one engine: the seam between the services and the driver
/// layer. `ManagedEngine` is the real one (a driver instance behind the C ABI); tests put an
/// in-memory engine here to drive the routes in-process.
public protocol Engine: AnyObject, Sendable {
    var name: String { get }
    /// How the API shows this engine (never its API key).
    var summary: EngineSummary { get }
    /// Calls a JSON operation with the engine's deadline for it.
    func call(_ operation: DriverOperation, _ request: some Encodable) async throws(RuntimeError) -> [UInt8]
    /// Adapter loads and unloads: concurrent calls with the same key share one engine call.
    func adapterCall(_ operation: DriverOperation, key: String, _ request: some Encodable & Sendable) async throws(RuntimeError) -> [UInt8]
    /// (ready, reason) through the driver's readiness or health check.
    func readiness() async -> (ready: Bool, reason: String?)
    /// The vendor operation named `name`, nil when the driver declares none.
    func extensionOperation(named name: String) -> ExtensionOperation?
    /// Calls a vendor operation with validated JSON arguments and its deadline.
    func invokeExtension(_ operation: ExtensionOperation, arguments: [UInt8]) async throws(RuntimeError) -> JSONValue
}

/// An engine's identity as the API shows it.
public struct EngineSummary: Sendable, Equatable {
    public var name: String
    public var kind: String
    public var endpoint: String
    public var engineVersion: String?
    public var driverName: String
    public var driverVersion: String

    public init(name: String, kind: String, endpoint: String, engineVersion: String?, driverName: String, driverVersion: String) {
        self.name = name
        self.kind = kind
        self.endpoint = endpoint
        self.engineVersion = engineVersion
        self.driverName = driverName
        self.driverVersion = driverVersion
    }
}

/// The engines the routes address, with the default one.
public struct EngineDirectory: Sendable {
    public let engines: [any Engine]
    public let defaultEngine: any Engine

    public init(engines: [any Engine], defaultEngine: any Engine) {
        self.engines = engines
        self.defaultEngine = defaultEngine
    }

    public func engine(named name: String) -> (any Engine)? { engines.first { $0.name == name } }

    /// The named engine, or a not-found error naming it.
    public func require(_ name: String) throws(RuntimeError) -> any Engine {
        guard let engine = engine(named: name) else { throw RuntimeError.notFound("no engine named \"\(name)\"") }
        return engine
    }

    public func isDefault(_ engine: any Engine) -> Bool { engine === defaultEngine }
}

/// A LoRA adapter the engine has loaded, read from its model list.
public struct LoadedAdapter: Sendable, Equatable {
    public var name: String
    public var path: String?
    public var baseModel: String?

    /// The LoRA cards (`parent` set) of an OpenAI-style model list.
    public static func fromModelList(_ bytes: [UInt8]) throws(RuntimeError) -> [LoadedAdapter] {
        guard let models = try? JSONCoding.decode(ModelList.self, from: bytes) else {
            throw RuntimeError(.upstream, "the engine's model list has no data array of models")
        }
        return models.adapters.map { LoadedAdapter(name: $0.id, path: $0.root, baseModel: $0.parent) }
    }
}

/// The default engine of a sidecar that has none configured (it only launches engines through
/// the model runtime): every call says so, instead of reaching for localhost:8000.
final class AbsentEngine: Engine {
    var name: String { "default" }
    var summary: EngineSummary {
        EngineSummary(name: "default", kind: "none", endpoint: "", engineVersion: nil, driverName: "none", driverVersion: "")
    }
    private var absent: RuntimeError {
        RuntimeError.notFound(
            "no engine is configured: this sidecar launches its engines itself (GET /v1/runtime/models); set INFERENCE_ENGINE and INFERENCE_ENGINE_ENDPOINT for one it does not launch")
    }
    func call(_ operation: DriverOperation, _ request: some Encodable) async throws(RuntimeError) -> [UInt8] { throw absent }
    func adapterCall(_ operation: DriverOperation, key: String, _ request: some Encodable & Sendable) async throws(RuntimeError) -> [UInt8] {
        throw absent
    }
    func readiness() async -> (ready: Bool, reason: String?) { (false, absent.message) }
    func extensionOperation(named name: String) -> ExtensionOperation? { nil }
    func invokeExtension(_ operation: ExtensionOperation, arguments: [UInt8]) async throws(RuntimeError) -> JSONValue { throw absent }
}

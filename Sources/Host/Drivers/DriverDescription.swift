/// A driver as `GET /v1/drivers` and `engine-runtime drivers list --json` show it.
public struct DriverDescription: Codable, Sendable, Equatable {
    public struct ExtensionOperationDescription: Codable, Sendable, Equatable {
        public var name: String
        public var description: String?
        public var parameters: [ExtensionParameter]
        public var result_type: ExtensionValueType
        public var mutating: Bool
    }

    public var name: String
    public var version: String
    public var description: String?
    public var path: String
    public var abi_version: String
    public var engine_kinds: [String]
    public var capabilities: [String]
    /// The driver's JSON Schema for its options; nil when it declares none (or an invalid one).
    public var config_schema: JSONValue?
    public var operations: [String]
    public var extension_operations: [ExtensionOperationDescription]
    /// True when the model runtime can launch the driver's engine (ABI 1.3 `plan_launch`).
    public var can_launch: Bool
    /// Present when the driver runs in a host process of its own: its pid, restarts, last exit.
    public var isolation: DriverIsolationStatus?

    public init(_ driver: LoadedDriver) {
        isolation = driver.isolatedHost?.status
        can_launch = driver.canLaunch
        name = driver.name
        version = driver.version
        description = driver.summary
        path = driver.path
        abi_version = "\(driver.abiMajor).\(driver.abiMinor)"
        engine_kinds = driver.engineKinds
        capabilities = driver.capabilities.names
        config_schema = driver.configSchemaJSON.flatMap { try? JSONCoding.decode(JSONValue.self, from: Array($0.utf8)) }
        operations = driver.supportedOperations.map(\.rawValue)
        extension_operations = driver.extensionOperations.map {
            ExtensionOperationDescription(
                name: $0.name, description: $0.summary, parameters: $0.parameters, result_type: $0.resultType,
                mutating: $0.isMutating)
        }
    }
}

/// The list answer of `GET /v1/drivers`, with the files that failed to load.
public struct DriverList: Codable, Sendable {
    public struct Failure: Codable, Sendable, Equatable {
        public var path: String
        public var error: String

        public init(path: String, error: String) {
            self.path = path
            self.error = error
        }
    }

    public var object = "list"
    public var data: [DriverDescription]
    public var failures: [Failure]

    public init(_ registry: DriverRegistry) {
        data = registry.drivers.map(DriverDescription.init)
        failures = registry.failures.map { Failure(path: $0.path, error: $0.error.description) }
    }
}

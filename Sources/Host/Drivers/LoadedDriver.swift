import PluginABI

/// A driver that passed every load-time check: its validated descriptor, read once, and how
/// the host reaches its code (in this process, or through its isolated host process).
/// Immutable; safe to share between threads.
public final class LoadedDriver: @unchecked Sendable {
    public let path: String
    public let name: String
    public let version: String
    public let summary: String?
    public let engineKinds: [String]
    public let capabilities: DriverCapabilities
    public let configSchemaJSON: String?
    /// The ABI version the driver was built with.
    public let abiMajor: Int
    public let abiMinor: Int
    public let supportedOperations: [DriverOperation]
    public let extensionOperations: [ExtensionOperation]
    /// Path of the engine's Prometheus endpoint (ABI 1.1); nil when the engine has none.
    public let metricsPath: String?
    /// How the engine's metrics map to the standard set (ABI 1.1).
    public let metricRules: [MetricRule]

    /// True when the model runtime can launch the driver's engine (ABI 1.3 `plan_launch`).
    public let canLaunch: Bool
    let binding: DriverBinding

    /// Validates a descriptor returned by a driver's entry function.
    init(path: String, descriptor pointer: UnsafePointer<ert_driver_descriptor>) throws(DriverLoadError) {
        let rawSize = GrowableStruct.declaredSize(at: pointer)
        // Magic and versions come before any size-dependent reading.
        if rawSize >= 8 {
            let magic = UnsafeRawPointer(pointer).load(fromByteOffset: 4, as: UInt32.self)
            guard magic == ERT_MAGIC else { throw .badMagic(magic) }
        }
        let minimum = ABIMinimumSize.driverDescriptor
        guard let descriptor = GrowableStruct.read(ert_driver_descriptor.self, at: pointer, minimumSize: minimum)?.value else {
            throw .structTooSmall(structName: "ert_driver_descriptor", size: rawSize, minimum: minimum)
        }
        guard descriptor.abi_major == ERT_ABI_VERSION_MAJOR else {
            throw .abiMajorMismatch(driver: Int(descriptor.abi_major), host: Int(ERT_ABI_VERSION_MAJOR))
        }
        guard descriptor.min_host_abi_minor <= ERT_ABI_VERSION_MINOR else {
            throw .needsNewerHostMinor(required: Int(descriptor.min_host_abi_minor), host: Int(ERT_ABI_VERSION_MINOR))
        }
        // A reserved field may get a meaning in a later minor; a driver that sets it now would
        // change meaning then.
        guard descriptor.reserved0 == 0 else { throw .reservedFieldSet(structName: "ert_driver_descriptor", value: UInt64(descriptor.reserved0)) }
        guard let namePointer = descriptor.name else { throw .missingRequiredField("name") }
        guard let versionPointer = descriptor.version else { throw .missingRequiredField("version") }
        guard let kindsPointer = descriptor.engine_kinds else { throw .missingRequiredField("engine_kinds") }
        guard let create = descriptor.create_instance else { throw .missingRequiredField("create_instance") }
        guard let destroy = descriptor.destroy_instance else { throw .missingRequiredField("destroy_instance") }
        guard let operationsPointer = descriptor.operations else { throw .missingRequiredField("operations") }

        let name = String(cString: namePointer)
        guard Self.isValidName(name) else { throw .invalidName(field: "driver name", value: name) }
        // Counted (ABI 1.4; zero from an older driver, whose descriptor ends before it) or
        // NULL-terminated; never more than 64 entries read either way.
        let counted = descriptor.engine_kind_count
        guard counted <= 64 else { throw .invalidName(field: "engine_kind_count", value: "\(counted) (at most 64)") }
        var kinds: [String] = []
        for index in 0..<(counted > 0 ? counted : 64) {
            guard let kind = kindsPointer[index] else {
                if counted > 0 { throw .missingRequiredField("engine_kinds[\(index)] (engine_kind_count is \(counted))") }
                break
            }
            let text = String(cString: kind)
            guard Self.isValidName(text) else { throw .invalidName(field: "engine kind", value: text) }
            kinds.append(text)
            if counted == 0, index == 63 {
                throw .invalidName(field: "engine_kinds", value: "no NULL within 64 entries (end the list with NULL, or set engine_kind_count)")
            }
        }
        guard !kinds.isEmpty else { throw .missingRequiredField("engine_kinds[0]") }

        let operationsMinimum = ABIMinimumSize.operations
        guard let operations = GrowableStruct.read(ert_operations.self, at: operationsPointer, minimumSize: operationsMinimum)?.value
        else {
            throw .structTooSmall(
                structName: "ert_operations", size: GrowableStruct.declaredSize(at: operationsPointer), minimum: operationsMinimum)
        }

        var extensions: [ExtensionOperation] = []
        if descriptor.extension_op_count > 0 {
            guard let declarations = descriptor.extension_ops else {
                throw .missingRequiredField("extension_ops (extension_op_count is \(descriptor.extension_op_count))")
            }
            guard descriptor.extension_op_count <= 256 else {
                throw .invalidExtension(operation: "*", reason: "\(descriptor.extension_op_count) operations declared; at most 256")
            }
            for position in 0..<descriptor.extension_op_count {
                guard let declaration = declarations[position] else {
                    throw .invalidExtension(operation: "#\(position)", reason: "the declaration pointer is NULL")
                }
                let operation = try ExtensionOperation(declaration: declaration)
                guard !extensions.contains(where: { $0.name == operation.name }) else {
                    throw .invalidExtension(operation: operation.name, reason: "declared twice")
                }
                extensions.append(operation)
            }
        }

        var rules: [MetricRule] = []
        if descriptor.metric_rule_count > 0 {
            guard let declarations = descriptor.metric_rules else {
                throw .missingRequiredField("metric_rules (metric_rule_count is \(descriptor.metric_rule_count))")
            }
            guard descriptor.metric_rule_count <= 1024 else {
                throw .invalidMetricRule(index: 0, reason: "\(descriptor.metric_rule_count) rules declared; at most 1024")
            }
            for index in 0..<descriptor.metric_rule_count {
                guard let declaration = declarations[index] else {
                    throw .invalidMetricRule(index: index, reason: "the rule pointer is NULL")
                }
                rules.append(try MetricRule(declaration: declaration, index: index))
            }
        }
        let metricsPath = descriptor.metrics_path.map { String(cString: $0) }
        if let metricsPath, !metricsPath.hasPrefix("/") {
            throw .invalidName(field: "metrics_path", value: metricsPath)
        }

        self.path = path
        self.metricsPath = metricsPath
        self.metricRules = rules
        self.name = name
        self.version = String(cString: versionPointer)
        self.summary = descriptor.description.map { String(cString: $0) }
        self.engineKinds = kinds
        self.capabilities = DriverCapabilities(rawValue: descriptor.capabilities)
        self.configSchemaJSON = descriptor.config_schema_json.map { String(cString: $0) }
        self.abiMajor = Int(descriptor.abi_major)
        self.abiMinor = Int(descriptor.abi_minor)
        self.supportedOperations = DriverOperation.allCases.filter { $0.function(in: operations) != nil }
        self.extensionOperations = extensions
        self.canLaunch = descriptor.plan_launch != nil
        self.binding = .inProcess(
            DriverEntryPoints(operations: operations, planLaunch: descriptor.plan_launch, createInstance: create, destroyInstance: destroy))
    }

    /// A driver served by `host`, described by the manifest its host read from the descriptor.
    init(manifest: DriverManifest, host: DriverHostProcess) {
        path = manifest.path
        name = manifest.name
        version = manifest.version
        summary = manifest.summary
        engineKinds = manifest.engineKinds
        capabilities = DriverCapabilities(rawValue: manifest.capabilities)
        configSchemaJSON = manifest.configSchemaJSON
        abiMajor = manifest.abiMajor
        abiMinor = manifest.abiMinor
        supportedOperations = manifest.operations
        extensionOperations = manifest.extensions.map(ExtensionOperation.init(declared:))
        metricsPath = manifest.metricsPath
        metricRules = manifest.metricRules
        canLaunch = manifest.canLaunch
        binding = .isolated(host)
    }

    /// What the sidecar needs to know of the driver, for its isolated host to send.
    var manifest: DriverManifest {
        DriverManifest(
            path: path, name: name, version: version, summary: summary, engineKinds: engineKinds, capabilities: capabilities.rawValue,
            configSchemaJSON: configSchemaJSON, abiMajor: abiMajor, abiMinor: abiMinor, operations: supportedOperations,
            extensions: extensionOperations.map(\.declaration), metricsPath: metricsPath, metricRules: metricRules, canLaunch: canLaunch)
    }

    /// The host process serving the driver; nil when it runs in this process.
    public var isolatedHost: DriverHostProcess? {
        if case .isolated(let host) = binding { return host }
        return nil
    }

    /// Driver names and engine kinds follow the engine-name rule.
    static func isValidName(_ name: String) -> Bool { ResourceName.isValidEngineName(name) }

    public func extensionOperation(named name: String) -> ExtensionOperation? {
        extensionOperations.first { $0.name == name }
    }
}

/// How the host reaches a driver's code.
enum DriverBinding: Sendable {
    /// Loaded into this process.
    case inProcess(DriverEntryPoints)
    /// Loaded by a child process the host talks to over a socket.
    case isolated(DriverHostProcess)
}

/// The functions a descriptor hands over, for calls in this process. Function pointers into a
/// library that is never unloaded: safe to share.
struct DriverEntryPoints: @unchecked Sendable {
    let operations: ert_operations
    /// How to launch the engine under the supervisor (ABI 1.3); nil for older drivers.
    let planLaunch: ert_plan_launch_fn?
    let createInstance: ert_create_instance_fn
    let destroyInstance: ert_destroy_instance_fn
}

/// A loaded driver's description, as plain data: what an isolated driver's host sends the
/// sidecar in its hello.
struct DriverManifest: Codable, Sendable {
    var path: String
    var name: String
    var version: String
    var summary: String?
    var engineKinds: [String]
    var capabilities: UInt64
    var configSchemaJSON: String?
    var abiMajor: Int
    var abiMinor: Int
    var operations: [DriverOperation]
    var extensions: [ExtensionDeclaration]
    var metricsPath: String?
    var metricRules: [MetricRule]
    var canLaunch: Bool
}

import PluginABI
#if canImport(Glibc)
import Glibc
#endif

/// Turns a Swift driver into the C ABI: builds the descriptor once, and provides the entry,
/// create, destroy and operation functions. A driver declares one `static let` of it and
/// exports the entry symbol (see EngineVLLM for the three lines it takes).
///
/// The descriptor memory is allocated once and never freed: the host never unloads drivers
/// and keeps pointers into it for the life of the process. Immutable after `init`.
public final class DriverExport: @unchecked Sendable {
    private let descriptor: UnsafeMutablePointer<ert_driver_descriptor>

    /// `create` must be a C function that calls `DriverExport.createInstance(of:...)` with
    /// the driver's instance type (a C function cannot be generic, so each driver writes it).
    /// `planLaunch`, when given, is a C function that calls `DriverExport.planLaunch` with the
    /// driver's planner (ABI 1.3): the host can then start the engine itself.
    public init(info: DriverInfo, create: ert_create_instance_fn, planLaunch: ert_plan_launch_fn? = nil) {
        func keep(_ text: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(text)!) }
        let kinds = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: info.engineKinds.count + 1)
        for (index, kind) in info.engineKinds.enumerated() { kinds[index] = keep(kind) }
        kinds[info.engineKinds.count] = nil

        var table = ert_operations()
        table.struct_size = UInt32(MemoryLayout<ert_operations>.size)
        for operation in info.operations { operation.set(OperationThunks.thunk(for: operation), in: &table) }
        let operations = UnsafeMutablePointer<ert_operations>.allocate(capacity: 1)
        operations.initialize(to: table)

        var descriptor = ert_driver_descriptor()
        descriptor.struct_size = UInt32(MemoryLayout<ert_driver_descriptor>.size)
        descriptor.magic = ERT_MAGIC
        descriptor.abi_major = UInt16(ERT_ABI_VERSION_MAJOR)
        descriptor.abi_minor = UInt16(ERT_ABI_VERSION_MINOR)
        descriptor.min_host_abi_minor = 0
        descriptor.name = keep(info.name)
        descriptor.version = keep(info.version)
        descriptor.description = keep(info.summary)
        descriptor.engine_kinds = UnsafePointer(kinds)
        descriptor.capabilities = info.capabilities
        descriptor.config_schema_json = info.configSchemaJSON.map(keep)
        descriptor.create_instance = create
        descriptor.destroy_instance = { instance in
            guard let instance else { return }
            Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).release()
        }
        descriptor.operations = UnsafePointer(operations)
        if info.extensions.isEmpty {
            descriptor.extension_ops = nil
        } else {
            let declarations = UnsafeMutablePointer<UnsafePointer<ert_extension_op>?>.allocate(capacity: info.extensions.count)
            for (index, spec) in info.extensions.enumerated() { declarations[index] = spec.declaration(keep: keep) }
            descriptor.extension_ops = UnsafePointer(declarations)
        }
        descriptor.extension_op_count = info.extensions.count
        descriptor.metrics_path = info.metricsPath.map(keep)
        let rules = UnsafeMutablePointer<UnsafePointer<ert_metric_rule>?>.allocate(capacity: max(1, info.metricRules.count))
        for (index, spec) in info.metricRules.enumerated() {
            var rule = ert_metric_rule()
            rule.struct_size = UInt32(MemoryLayout<ert_metric_rule>.size)
            rule.source_type = spec.kind.raw
            rule.source_name = keep(spec.source)
            rule.standard_name = keep(spec.standard)
            rule.scale = 1
            rule.aggregate = spec.aggregate.raw
            rule.aggregate_labels = spec.aggregateLabels.map(keep)
            rule.label_renames = spec.labelRenames.map(keep)
            rule.label_values = spec.labelValues.map(keep)
            rule.match_labels = spec.matchLabels.map(keep)
            rule.set_labels = spec.setLabels.map(keep)
            rule.duplicate_labels = spec.duplicateLabels.map(keep)
            rule.keep_labels = spec.keepLabels.map(keep)
            rule.value_label = spec.valueLabel.map(keep)
            let stored = UnsafeMutablePointer<ert_metric_rule>.allocate(capacity: 1)
            stored.initialize(to: rule)
            rules[index] = UnsafePointer(stored)
        }
        descriptor.metric_rules = info.metricRules.isEmpty ? nil : UnsafePointer(rules)
        descriptor.metric_rule_count = info.metricRules.count
        descriptor.plan_launch = planLaunch
        self.descriptor = UnsafeMutablePointer.allocate(capacity: 1)
        self.descriptor.initialize(to: descriptor)
    }

    /// The body of the driver's `ert_driver_entry_v1`.
    public func entry(
        host: UnsafePointer<ert_host_info>?, error: UnsafeMutablePointer<ert_error>?
    ) -> UnsafePointer<ert_driver_descriptor>? {
        guard let host, host.pointee.magic == ERT_MAGIC else {
            error?.write(DriverFailure.invalidArgument("the host passed no ert_host_info or a bad magic"))
            return nil
        }
        guard host.pointee.abi_major == ERT_ABI_VERSION_MAJOR else {
            error?.write(DriverFailure.unsupported("host ABI major \(host.pointee.abi_major) is not \(ERT_ABI_VERSION_MAJOR)"))
            return nil
        }
        return UnsafePointer(descriptor)
    }

    /// The body of the driver's `create_instance`.
    public static func createInstance<Instance: EngineDriverInstance>(
        of type: Instance.Type, config: UnsafePointer<ert_instance_config>?,
        out: UnsafeMutablePointer<OpaquePointer?>?, error: UnsafeMutablePointer<ert_error>?
    ) -> ert_status {
        // A host of any 1.x minor: read the caller's struct_size bytes, the rest stays absent.
        guard let config, let out,
            let (c, _) = GrowableStruct.read(ert_instance_config.self, at: config, minimumSize: ABIMinimumSize.instanceConfig),
            let services = c.services
        else {
            error?.write(DriverFailure.invalidArgument("create_instance: config (of at least ABI 1.0's size), out or services missing"))
            return ERT_STATUS_INVALID_ARGUMENT
        }
        func text(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }
        var endpoint = text(c.endpoint) ?? ""
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            error?.write(DriverFailure.invalidArgument("endpoint \"\(endpoint)\" must be an http:// or https:// URL"))
            return ERT_STATUS_INVALID_ARGUMENT
        }
        let settings = InstanceSettings(
            instanceName: text(c.instance_name) ?? "default", engineKind: text(c.engine_kind) ?? "",
            endpoint: endpoint, apiKey: text(c.api_key).flatMap { $0.isEmpty ? nil : $0 },
            adminAPIKey: text(c.admin_api_key).flatMap { $0.isEmpty ? nil : $0 },
            engineVersion: text(c.engine_version), configJSON: text(c.config_json) ?? "{}")
        let host = HostConnection(services: services, context: c.host_context)
        do {
            let instance = try Instance(settings: settings, host: host)
            out.pointee = OpaquePointer(Unmanaged.passRetained(InstanceBox(instance, services: services)).toOpaque())
            return ERT_STATUS_OK
        } catch let failure {
            error?.write(failure)
            return failure.status
        }
    }
}

/// Keeps a Swift instance alive behind the `ert_instance *` the host holds.
final class InstanceBox {
    let instance: any EngineDriverInstance
    let services: UnsafePointer<ert_host_services>
    init(_ instance: any EngineDriverInstance, services: UnsafePointer<ert_host_services>) {
        self.instance = instance
        self.services = services
    }
}

extension UnsafeMutablePointer where Pointee == ert_error {
    /// Fills a host-owned error record, never past its declared size (an older host's record
    /// may be smaller than this kit's).
    func write(_ failure: DriverFailure) {
        ErrorRecord.write(failure.status, upstreamHTTPStatus: failure.upstreamHTTPStatus, message: failure.message, into: self)
    }
}

/// One C function per operation, each forwarding to the instance's `perform`.
enum OperationThunks {
    static func run(
        _ operation: DriverOperation, _ instance: OpaquePointer?, _ call: UnsafePointer<ert_call>?,
        _ request: UnsafePointer<CChar>?, _ length: Int, _ response: UnsafePointer<ert_sink>?,
        _ error: UnsafeMutablePointer<ert_error>?
    ) -> ert_status {
        guard let instance, let call, let response else {
            error?.write(.invalidArgument("instance, call or response is NULL"))
            return ERT_STATUS_INVALID_ARGUMENT
        }
        let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
        let bytes = request.map { pointer in
            pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        } ?? []
        let host = HostConnection(services: box.services, context: call.pointee.host_context)
        do {
            // Every request is a JSON object; checking here spares each driver the check.
            let request = DriverRequest(bytes: bytes)
            _ = try request.decode(JSONObjectShape.self)
            let answer = try box.instance.perform(operation, request: request, call: CallScope(host: host))
            guard response.write(answer) else {
                error?.write(.internalError("the host refused the answer (too large)"))
                return ERT_STATUS_INTERNAL
            }
            return ERT_STATUS_OK
        } catch let failure {
            error?.write(failure)
            return failure.status
        }
    }

    static func thunk(for operation: DriverOperation) -> ert_operation_fn {
        switch operation {
        case .health: health
        case .readiness: readiness
        case .engineInfo: engineInfo
        case .listModels: listModels
        case .loadLoRAAdapter: loadLoRAAdapter
        case .unloadLoRAAdapter: unloadLoRAAdapter
        case .loadModel: loadModel
        case .unloadModel: unloadModel
        case .sleep: sleep
        case .wake: wake
        case .resetCache: resetCache
        case .metrics: metrics
        case .pause: pause
        case .resume: resume
        case .reloadWeights: reloadWeights
        }
    }

    // A C function pointer cannot capture the operation, so each operation has its own.
    static let health: ert_operation_fn = { run(.health, $0, $1, $2, $3, $4, $5) }
    static let readiness: ert_operation_fn = { run(.readiness, $0, $1, $2, $3, $4, $5) }
    static let engineInfo: ert_operation_fn = { run(.engineInfo, $0, $1, $2, $3, $4, $5) }
    static let listModels: ert_operation_fn = { run(.listModels, $0, $1, $2, $3, $4, $5) }
    static let loadLoRAAdapter: ert_operation_fn = { run(.loadLoRAAdapter, $0, $1, $2, $3, $4, $5) }
    static let unloadLoRAAdapter: ert_operation_fn = { run(.unloadLoRAAdapter, $0, $1, $2, $3, $4, $5) }
    static let loadModel: ert_operation_fn = { run(.loadModel, $0, $1, $2, $3, $4, $5) }
    static let unloadModel: ert_operation_fn = { run(.unloadModel, $0, $1, $2, $3, $4, $5) }
    static let pause: ert_operation_fn = { run(.pause, $0, $1, $2, $3, $4, $5) }
    static let resume: ert_operation_fn = { run(.resume, $0, $1, $2, $3, $4, $5) }
    static let reloadWeights: ert_operation_fn = { run(.reloadWeights, $0, $1, $2, $3, $4, $5) }
    static let sleep: ert_operation_fn = { run(.sleep, $0, $1, $2, $3, $4, $5) }
    static let wake: ert_operation_fn = { run(.wake, $0, $1, $2, $3, $4, $5) }
    static let resetCache: ert_operation_fn = { run(.resetCache, $0, $1, $2, $3, $4, $5) }
    static let metrics: ert_operation_fn = { run(.metrics, $0, $1, $2, $3, $4, $5) }
}

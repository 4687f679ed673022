import PluginABI

/// A typed vendor extension operation of a Swift driver (`ert_extension_op`): its declaration
/// and its C function. Swift cannot make one C function per signature generically, so the
/// driver writes the `@convention(c)` function itself (one line around `DriverExport.extensionCall`)
/// and passes it here as `function`.
public struct ExtensionSpec: @unchecked Sendable {
    public enum ValueType: Sendable {
        case void, bool, int64, double, string

        var raw: ert_value_type {
            switch self {
            case .void: ERT_TYPE_VOID
            case .bool: ERT_TYPE_BOOL
            case .int64: ERT_TYPE_INT64
            case .double: ERT_TYPE_DOUBLE
            case .string: ERT_TYPE_STRING
            }
        }
    }

    public var name: String
    public var description: String?
    public var result: ValueType
    public var mutating: Bool
    public var parameters: [(name: String, type: ValueType)]
    /// The C function, declared with exactly the signature the header prescribes for these
    /// types (`ert_status f(ert_instance *, const ert_call *, ert_error *, T1 ..., R *)`).
    public var function: UnsafeRawPointer

    public init(
        name: String, description: String? = nil, result: ValueType, mutating: Bool = false,
        parameters: [(name: String, type: ValueType)] = [], function: UnsafeRawPointer
    ) {
        self.name = name
        self.description = description
        self.result = result
        self.mutating = mutating
        self.parameters = parameters
        self.function = function
    }

    /// The declaration, allocated once and never freed (the host keeps pointers into it).
    func declaration(keep: (String) -> UnsafePointer<CChar>) -> UnsafePointer<ert_extension_op> {
        let names = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, parameters.count))
        let types = UnsafeMutablePointer<ert_value_type>.allocate(capacity: max(1, parameters.count))
        for (index, parameter) in parameters.enumerated() {
            names[index] = keep(parameter.name)
            types[index] = parameter.type.raw
        }
        var op = ert_extension_op()
        op.struct_size = UInt32(MemoryLayout<ert_extension_op>.size)
        op.name = keep(name)
        op.description = description.map(keep)
        op.result_type = result.raw
        op.flags = mutating ? UInt32(ERT_EXTENSION_MUTATING) : 0
        op.param_names = parameters.isEmpty ? nil : UnsafePointer(names)
        op.param_types = parameters.isEmpty ? nil : UnsafePointer(types)
        op.param_count = parameters.count
        op.function = unsafeBitCast(function, to: (@convention(c) () -> Void).self)
        let stored = UnsafeMutablePointer<ert_extension_op>.allocate(capacity: 1)
        stored.initialize(to: op)
        return UnsafePointer(stored)
    }
}

extension DriverExport {
    /// The body of an extension operation's C function: finds the Swift instance, runs `body`
    /// with a call scope, and turns a thrown failure into the status and error record (nothing
    /// unwinds across the ABI).
    public static func extensionCall<Instance: EngineDriverInstance>(
        _ type: Instance.Type, _ instance: OpaquePointer?, _ call: UnsafePointer<ert_call>?, _ error: UnsafeMutablePointer<ert_error>?,
        _ body: (Instance, CallScope) throws(DriverFailure) -> Void
    ) -> ert_status {
        guard let instance, let call else {
            error?.write(.invalidArgument("instance or call is NULL"))
            return ERT_STATUS_INVALID_ARGUMENT
        }
        let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
        guard let typed = box.instance as? Instance else {
            error?.write(.internalError("the instance is not a \(Instance.self)"))
            return ERT_STATUS_INTERNAL
        }
        do {
            try body(typed, CallScope(host: HostConnection(services: box.services, context: call.pointee.host_context)))
            return ERT_STATUS_OK
        } catch let failure {
            error?.write(failure)
            return failure.status
        }
    }
}

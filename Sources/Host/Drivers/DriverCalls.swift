import DriverABI
import PluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The blocking calls into a driver loaded in this process, one function per kind of call:
/// what `DriverInstance` runs on a worker thread, and what an isolated driver's host runs for
/// the sidecar. No deadlines or serialization here; the callers own those.
enum DriverCalls {
    /// The most bytes of JSON a driver may answer with (metrics text excluded).
    static let maximumResponseBytes = 32 << 20
    /// The most bytes of a launch plan.
    static let maximumPlanBytes = 1 << 20

    static func createInstance(
        _ entry: DriverEntryPoints, configuration: InstanceConfiguration, context: HostContext
    ) -> Result<InstanceHandle, RuntimeError> {
        CStringArena.with { arena in
            var config = ert_instance_config(
                struct_size: UInt32(MemoryLayout<ert_instance_config>.size),
                instance_name: arena.copy(configuration.name),
                engine_kind: arena.copy(configuration.engineKind),
                endpoint: arena.copy(configuration.endpoint),
                api_key: configuration.apiKey.map { arena.copy($0) },
                engine_version: configuration.engineVersion.map { arena.copy($0) },
                config_json: arena.copy(configuration.configJSON),
                host_context: context.opaque,
                services: HostABI.shared.services,
                admin_api_key: configuration.adminAPIKey.map { arena.copy($0) })
            var error = ErrorRecord.empty()
            var instance: OpaquePointer? = nil
            let status = entry.createInstance(&config, &instance, &error)
            guard status == ERT_STATUS_OK else { return .failure(RuntimeError(driverReturned: status, record: error)) }
            guard let instance else {
                return .failure(RuntimeError(.internalError, "create_instance returned OK but no instance"))
            }
            return .success(InstanceHandle(pointer: instance))
        }
    }

    /// Runs `body` with an `ert_call` whose host context is `context`.
    static func withCall<R>(_ context: HostContext, _ body: (UnsafePointer<ert_call>) -> R) -> R {
        var call = ert_call(struct_size: UInt32(MemoryLayout<ert_call>.size), host_context: context.opaque)
        return withExtendedLifetime(context) { withUnsafePointer(to: &call) { body($0) } }
    }

    /// One JSON operation (or `metrics`): what the driver wrote, or its error.
    static func invoke(
        _ operation: DriverOperation, _ function: ert_operation_fn, instance: InstanceHandle, call: UnsafePointer<ert_call>,
        request: [UInt8]
    ) -> Result<[UInt8], RuntimeError> {
        let sink = ByteSink(limit: maximumResponseBytes)
        var error = ErrorRecord.empty()
        // The ABI promises a NUL-terminated request.
        let status = (request + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { text in
                sink.withCSink { function(instance.pointer, call, text.baseAddress, request.count, $0, &error) }
            }
        }
        guard status == ERT_STATUS_OK else { return .failure(RuntimeError(driverReturned: status, record: error)) }
        if sink.overflowed {
            return .failure(RuntimeError(.internalError, "\(operation.rawValue) answered more than \(maximumResponseBytes) bytes"))
        }
        return .success(sink.bytes)
    }

    /// `plan_launch` with a request text; the plan's bytes as the driver wrote them.
    static func planLaunch(_ planLaunch: ert_plan_launch_fn, request: [UInt8]) -> Result<[UInt8], RuntimeError> {
        let sink = ByteSink(limit: maximumPlanBytes)
        var record = ErrorRecord.empty()
        // The spec is NUL-terminated for C readers, the NUL not counted.
        let status = sink.withCSink { sink in
            (request + [0]).withUnsafeBufferPointer {
                $0.withMemoryRebound(to: CChar.self) { planLaunch($0.baseAddress, request.count, sink, &record) }
            }
        }
        guard status == ERT_STATUS_OK else { return .failure(RuntimeError(driverReturned: status, record: record)) }
        return .success(sink.bytes)
    }
}

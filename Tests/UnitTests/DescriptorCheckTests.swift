@testable import Host
import PluginABI
import Testing

/// Load-time checks of a descriptor built in memory, as a driver of any language lays it out.
@Suite struct DescriptorCheckTests {
    private func load(_ adjust: (inout ert_driver_descriptor, inout ert_metric_rule) -> Void) -> DriverLoadError? {
        var operations = ert_operations()
        operations.struct_size = UInt32(MemoryLayout<ert_operations>.size)
        return withUnsafePointer(to: &operations) { operationsPointer in
            "check".withCString { name in
                "1.0".withCString { version in
                    "check-engine".withCString { kind in
                        "vllm:num_requests_running".withCString { source in
                            "llm_engine_requests_running".withCString { standard in
                                var kinds: [UnsafePointer<CChar>?] = [kind, nil]
                                return kinds.withUnsafeMutableBufferPointer { kindList in
                                    var rule = ert_metric_rule()
                                    rule.struct_size = UInt32(MemoryLayout<ert_metric_rule>.size)
                                    rule.source_type = MetricSourceType.gauge.raw
                                    rule.source_name = source
                                    rule.standard_name = standard
                                    var descriptor = ert_driver_descriptor()
                                    descriptor.struct_size = UInt32(MemoryLayout<ert_driver_descriptor>.size)
                                    descriptor.magic = ERT_MAGIC
                                    descriptor.abi_major = UInt16(ERT_ABI_VERSION_MAJOR)
                                    descriptor.abi_minor = UInt16(ERT_ABI_VERSION_MINOR)
                                    descriptor.name = name
                                    descriptor.version = version
                                    descriptor.engine_kinds = UnsafePointer(kindList.baseAddress)
                                    descriptor.create_instance = { _, _, _ in ERT_STATUS_INTERNAL }
                                    descriptor.destroy_instance = { _ in }
                                    descriptor.operations = operationsPointer
                                    adjust(&descriptor, &rule)
                                    return withUnsafePointer(to: &rule) { rulePointer in
                                        var rules: [UnsafePointer<ert_metric_rule>?] = [rulePointer]
                                        return rules.withUnsafeMutableBufferPointer { ruleList in
                                            descriptor.metric_rules = UnsafePointer(ruleList.baseAddress)
                                            descriptor.metric_rule_count = 1
                                            return withUnsafePointer(to: &descriptor) { pointer in
                                                do throws(DriverLoadError) {
                                                    _ = try LoadedDriver(path: "memory", descriptor: pointer)
                                                    return DriverLoadError?.none
                                                } catch { return error }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func aWellFormedDescriptorLoads() {
        #expect(load { _, _ in } == nil)
    }

    @Test func reservedFieldsMustBeZero() {
        let descriptor = load { descriptor, _ in descriptor.reserved0 = 3 }
        #expect(descriptor == .reservedFieldSet(structName: "ert_driver_descriptor", value: 3))
        #expect(descriptor?.description.contains("must be zero") == true)
        let rule = load { _, rule in rule.reserved0 = 1 }
        guard case .invalidMetricRule(0, let reason) = rule else { Issue.record("accepted: \(String(describing: rule))"); return }
        #expect(reason.contains("reserved0 is 1"))
    }

    @Test func unknownRuleKindsAreRefused() {
        let rule = load { _, rule in rule.source_type = 42 }
        #expect(rule == .invalidMetricRule(index: 0, reason: "unknown source_type 42"))
    }
}

/// One taxonomy: each kind has one status and one envelope type.
@Suite struct ErrorKindTests {
    @Test func everyKindMapsToOneStatusAndType() {
        let table: [ErrorKind: (Int, String)] = [
            .invalidArgument: (400, "invalid_argument"), .notFound: (404, "not_found"), .permissionDenied: (403, "permission_denied"),
            .conflict: (409, "conflict"), .unsupported: (501, "unsupported"), .unavailable: (503, "unavailable"),
            .upstream: (502, "upstream_error"), .integrity: (502, "integrity_error"), .storage: (507, "storage_error"),
            .timeout: (504, "timeout"), .cancelled: (409, "cancelled"), .internalError: (500, "internal_error"),
            .unauthorized: (401, "unauthorized"), .methodNotAllowed: (405, "method_not_allowed"), .tooLarge: (413, "invalid_argument"),
            .requestTimeout: (408, "request_timeout"), .unsupportedMediaType: (415, "unsupported_media_type"),
        ]
        #expect(table.count == ErrorKind.allCases.count)
        for kind in ErrorKind.allCases {
            #expect(kind.httpStatus == table[kind]?.0, "\(kind)")
            #expect(kind.envelopeType == table[kind]?.1, "\(kind)")
        }
    }

    @Test func driverStatusesRoundTripThroughKinds() {
        for status in DriverStatus.allCases where status != .ok {
            #expect(DriverStatus(ErrorKind(status)) == status, "\(status)")
        }
        #expect(DriverStatus(ErrorKind.storage) == .internalError)
        #expect(DriverStatus(ErrorKind.integrity) == .upstream)
    }

    @Test func httpClientFailuresBecomeRuntimeKinds() {
        #expect(RuntimeError(HTTPClientError(.unreachable, "refused")).kind == .unavailable)
        #expect(RuntimeError(HTTPClientError(.tooLarge, "big")).kind == .upstream)
        #expect(RuntimeError(HTTPClientError(.invalidRequest, "bad")).kind == .invalidArgument)
    }
}

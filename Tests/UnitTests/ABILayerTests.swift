import Foundation
import DriverABI
import PluginABI
import TestSupport
import Testing

/// The Swift side of the ABI against the header itself.
@Suite struct ABILayerTests {
    @Test func minimumSizesMatchTheHeadersV10Macros() async throws {
        let macros = [
            "ERT_SINK_SIZE_V1_0", "ERT_ERROR_SIZE_V1_0", "ERT_HTTP_REQUEST_SIZE_V1_0", "ERT_HTTP_RESPONSE_SIZE_V1_0",
            "ERT_HOST_SERVICES_SIZE_V1_0", "ERT_HOST_INFO_SIZE_V1_0", "ERT_INSTANCE_CONFIG_SIZE_V1_0", "ERT_CALL_SIZE_V1_0",
            "ERT_OPERATIONS_SIZE_V1_0", "ERT_EXTENSION_OP_SIZE_V1_0", "ERT_DRIVER_DESCRIPTOR_SIZE_V1_0", "ERT_METRIC_RULE_SIZE_V1_1",
        ]
        let swift = [
            ABIMinimumSize.sink, ABIMinimumSize.error, ABIMinimumSize.httpRequest, ABIMinimumSize.httpResponse,
            ABIMinimumSize.hostServices, ABIMinimumSize.hostInfo, ABIMinimumSize.instanceConfig, ABIMinimumSize.call,
            ABIMinimumSize.operations, ABIMinimumSize.extensionOperation, ABIMinimumSize.driverDescriptor, ABIMinimumSize.metricRule,
        ]
        let sizes = try await Self.headerValues(macros)
        #expect(sizes == swift, "\(zip(macros, sizes).map { "\($0.0)=\($0.1)" })")
    }

    /// The newest size macros are the whole structs as Swift imports them (nothing appended since).
    @Test func theNewestSizeMacrosAreTheImportedStructs() async throws {
        let macros = [
            "ERT_INSTANCE_CONFIG_SIZE_V1_2", "ERT_OPERATIONS_SIZE_V1_2", "ERT_METRIC_RULE_SIZE_V1_2", "ERT_DRIVER_DESCRIPTOR_SIZE_V1_4",
        ]
        let swift = [
            MemoryLayout<ert_instance_config>.size, MemoryLayout<ert_operations>.size, MemoryLayout<ert_metric_rule>.size,
            MemoryLayout<ert_driver_descriptor>.size,
        ]
        let sizes = try await Self.headerValues(macros)
        #expect(sizes == swift, "\(zip(macros, sizes).map { "\($0.0)=\($0.1)" })")
    }

    /// The values of size macros of the header, as a C compiler computes them.
    private static func headerValues(_ macros: [String]) async throws -> [Int] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = """
            #include <stdio.h>
            #include "engine_runtime_driver.h"
            int main(void) {
            \(macros.map { "    printf(\"%zu\\n\", (size_t)\($0));" }.joined(separator: "\n"))
                return 0;
            }
            """
        try source.write(toFile: directory.path + "/sizes.c", atomically: true, encoding: .utf8)
        let build = try await Program.run(
            "/usr/bin/cc", ["-std=c11", "-I", TestPaths.headerDirectory, "-o", directory.path + "/sizes", directory.path + "/sizes.c"])
        #expect(build.status == 0, "\(build.stderr)")
        return try await Program.run(directory.path + "/sizes", []).stdout.split(separator: "\n").compactMap { Int($0) }
    }

    @Test func statusesComeFromTheHeaderAndUnknownOnesAreInternal() {
        #expect(DriverStatus.allCases.map(\.raw) == Array(0...9).map(Int32.init))
        #expect(DriverStatus(raw: ERT_STATUS_NOT_FOUND) == .notFound)
        #expect(DriverStatus(raw: 77) == .internalError)
        #expect(!DriverStatus.isKnown(77))
        #expect(Set(DriverStatus.allCases.map(\.name)).count == DriverStatus.allCases.count)
    }

    @Test func everyOperationHasItsOwnTableEntry() {
        let marker: ert_operation_fn = { _, _, _, _, _, _ in ERT_STATUS_OK }
        for operation in DriverOperation.allCases {
            var table = ert_operations()
            operation.set(marker, in: &table)
            let set = DriverOperation.allCases.filter { $0.function(in: table) != nil }
            #expect(set == [operation])
        }
    }

    @Test func metricKindsAndCapabilitiesFollowTheHeader() {
        #expect(MetricSourceType.allCases.map(\.raw) == [UInt32(ERT_METRIC_COUNTER), UInt32(ERT_METRIC_GAUGE), UInt32(ERT_METRIC_HISTOGRAM)])
        #expect(MetricSourceType(raw: 9) == nil)
        #expect(MetricAggregate(raw: UInt32(ERT_AGGREGATE_NEWEST)) == .newest)
        #expect(DriverCapabilities.prometheus.rawValue == UInt64(ERT_CAP_PROMETHEUS))
        #expect(DriverCapabilities(rawValue: 1 << 40 | 1).names == ["multi_instance", "bit40"])
    }

    @Test func aSinkStopsAtItsLimit() {
        let sink = ByteSink(limit: 5)
        let accepted = sink.withCSink { pointer in (pointer.write(Array("abc".utf8)), pointer.write(Array("def".utf8)), pointer.write([])) }
        #expect(accepted == (true, false, true))
        #expect(sink.bytes == Array("abc".utf8))
        #expect(sink.overflowed)
    }
}

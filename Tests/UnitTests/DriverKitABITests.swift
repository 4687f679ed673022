import DriverABI
import EngineDriverKit
import PluginABI
import Testing

/// The kit against hosts of other sizes: it reads every `ert_instance_config` from ABI 1.0's
/// size up and never writes past the caller's `ert_error.struct_size`.
@Suite struct DriverKitABITests {
    final class Recorder: EngineDriverInstance {
        let settings: InstanceSettings
        init(settings: InstanceSettings, host: HostConnection) throws(DriverFailure) {
            guard settings.endpoint.hasSuffix(":8000") else { throw .invalidArgument("endpoint must use port 8000 (here: \(settings.endpoint))") }
            self.settings = settings
        }
        func perform(_ operation: DriverOperation, request: DriverRequest, call: CallScope) throws(DriverFailure) -> [UInt8] { [] }
    }

    /// Guard bytes after a record show any write past its declared size.
    static let guardByte: UInt8 = 0xA5
    static let guardCount = 64

    /// An `ert_instance_config` of `size` bytes (this header's fields cut to fit) followed by
    /// guard bytes, as an older or newer host would lay it out.
    private func withConfig<R>(
        size: Int, endpoint: String, _ body: (UnsafePointer<ert_instance_config>) -> R
    ) -> R {
        var services = ert_host_services()
        services.struct_size = UInt32(ABIMinimumSize.hostServices)
        return withUnsafePointer(to: &services) { servicesPointer in
            "default".withCString { name in
                "vllm".withCString { kind in
                    endpoint.withCString { endpointText in
                        "{}".withCString { json in
                            var config = ert_instance_config()
                            config.struct_size = UInt32(size)
                            config.instance_name = name
                            config.engine_kind = kind
                            config.endpoint = endpointText
                            config.config_json = json
                            config.services = servicesPointer
                            let storage = UnsafeMutableRawPointer.allocate(
                                byteCount: max(size, MemoryLayout<ert_instance_config>.size) + Self.guardCount, alignment: 16)
                            defer { storage.deallocate() }
                            storage.initializeMemory(as: UInt8.self, repeating: Self.guardByte, count: max(size, MemoryLayout<ert_instance_config>.size) + Self.guardCount)
                            withUnsafeBytes(of: &config) { storage.copyMemory(from: $0.baseAddress!, byteCount: min(size, MemoryLayout<ert_instance_config>.size)) }
                            return body(storage.assumingMemoryBound(to: ert_instance_config.self))
                        }
                    }
                }
            }
        }
    }

    /// Runs `create_instance` with an error record declaring `errorSize` bytes; returns the
    /// status, the message written and whether every byte past `errorSize` is untouched.
    private func create(configSize: Int, errorSize: Int, endpoint: String) -> (status: ert_status, message: String, guardIntact: Bool, instance: OpaquePointer?) {
        let byteCount = MemoryLayout<ert_error>.size + Self.guardCount
        let record = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 16)
        defer { record.deallocate() }
        record.initializeMemory(as: UInt8.self, repeating: Self.guardByte, count: byteCount)
        record.initializeMemory(as: UInt8.self, repeating: 0, count: errorSize)
        record.storeBytes(of: UInt32(errorSize), as: UInt32.self)
        var instance: OpaquePointer? = nil
        let status = withConfig(size: configSize, endpoint: endpoint) { config in
            DriverExport.createInstance(of: Recorder.self, config: config, out: &instance, error: record.assumingMemoryBound(to: ert_error.self))
        }
        let messageOffset = MemoryLayout<ert_error>.offset(of: \.message)!
        let written = UnsafeRawBufferPointer(start: record + messageOffset, count: max(0, errorSize - messageOffset))
        let intact = UnsafeRawBufferPointer(start: record + errorSize, count: byteCount - errorSize).allSatisfy { $0 == Self.guardByte }
        return (status, CString.read(written), intact, instance)
    }

    @Test func aConfigOfABI10SizeIsReadAndTheErrorRecordOfABI10SizeFilled() {
        let ok = create(configSize: ABIMinimumSize.instanceConfig, errorSize: ABIMinimumSize.error, endpoint: "http://127.0.0.1:8000/")
        #expect(ok.status == ERT_STATUS_OK)
        #expect(ok.instance != nil)
        let refused = create(configSize: ABIMinimumSize.instanceConfig, errorSize: ABIMinimumSize.error, endpoint: "http://127.0.0.1:9000")
        #expect(refused.status == ERT_STATUS_INVALID_ARGUMENT)
        #expect(refused.message == "endpoint must use port 8000 (here: http://127.0.0.1:9000)")
        #expect(refused.guardIntact)
    }

    @Test func aNewerHostsLargerConfigIsAcceptedAndItsUnknownTailIgnored() {
        let newer = create(configSize: MemoryLayout<ert_instance_config>.size + 32, errorSize: ABIMinimumSize.error, endpoint: "http://h:8000")
        #expect(newer.status == ERT_STATUS_OK)
    }

    @Test func aConfigSmallerThanABI10IsRefused() {
        let old = create(configSize: ABIMinimumSize.instanceConfig - 8, errorSize: ABIMinimumSize.error, endpoint: "http://h:8000")
        #expect(old.status == ERT_STATUS_INVALID_ARGUMENT)
        #expect(old.message.contains("ABI 1.0"))
        #expect(old.instance == nil)
    }

    @Test func errorsAreCutToTheCallersRecordAndNeverWrittenPastIt() {
        let messageOffset = MemoryLayout<ert_error>.offset(of: \.message)!
        // A record with room for 16 message bytes: 15 characters and the NUL.
        let small = create(configSize: ABIMinimumSize.instanceConfig, errorSize: messageOffset + 16, endpoint: "http://h:1")
        #expect(small.status == ERT_STATUS_INVALID_ARGUMENT)
        #expect(small.message == "endpoint must u")
        #expect(small.guardIntact)
        // A record too small for a message still gets nothing past its size.
        let tiny = create(configSize: ABIMinimumSize.instanceConfig, errorSize: 8, endpoint: "http://h:1")
        #expect(tiny.status == ERT_STATUS_INVALID_ARGUMENT)
        #expect(tiny.guardIntact)
    }

    @Test func aCutMessageEndsOnACharacterBoundary() {
        var record = ErrorRecord.empty()
        let messageOffset = MemoryLayout<ert_error>.offset(of: \.message)!
        record.struct_size = UInt32(messageOffset + 5)
        ErrorRecord.write(ERT_STATUS_UPSTREAM, upstreamHTTPStatus: 502, message: "abcé…", into: &record)
        #expect(CString.read(record.message) == "abc")
        #expect(record.status == ERT_STATUS_UPSTREAM)
        #expect(record.upstream_http_status == 502)
    }

    /// The kit's request check: an object at the top, the structure scanned, no values built.
    /// (swift-foundation's scan accepts a trailing comma, as JSONDecoder always has.)
    @Test func aRequestIsCheckedToBeAnObjectWithoutBuildingItsValues() {
        for object in [#"{"a":{"b":[1,2.5e3,null]},"c":"\u00e9"}"#, "{}", #" {"a":1} "#] {
            #expect((try? JSONCoding.decode(JSONObjectShape.self, from: Array(object.utf8))) != nil, "\(object)")
        }
        for notAnObject in ["[1]", #""a""#, "3", "null", #"{"a":"#, "{} x", #"{"a" 1}"#, "", "{"] {
            #expect((try? JSONCoding.decode(JSONObjectShape.self, from: Array(notAnObject.utf8))) == nil, "\(notAnObject)")
        }
        #expect(!JSONCoding.isValidJSON(Array(#""\q""#.utf8)), "full validation still reads every string")
    }
}

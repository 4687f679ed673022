import PluginABI

/// The sizes of the ABI structs as first published; readers accept nothing smaller. Mirrors the
/// header's `ERT_*_SIZE_V1_0` macros (`offsetof` expressions Swift cannot import); a test
/// compiles those macros with `cc` and compares.
public enum ABIMinimumSize {
    public static let sink = MemoryLayout<ert_sink>.offset(of: \.write)! + MemoryLayout<UnsafeRawPointer>.size
    public static let error = MemoryLayout<ert_error>.offset(of: \.message)! + Int(ERT_ERROR_MESSAGE_CAPACITY)
    public static let httpRequest = MemoryLayout<ert_http_request>.offset(of: \.max_response_bytes)! + 8
    public static let httpResponse = MemoryLayout<ert_http_response>.offset(of: \.content_type)! + Int(ERT_CONTENT_TYPE_CAPACITY)
    public static let hostServices = MemoryLayout<ert_host_services>.offset(of: \.get_extension)! + MemoryLayout<UnsafeRawPointer>.size
    public static let hostInfo = MemoryLayout<ert_host_info>.offset(of: \.services)! + MemoryLayout<UnsafeRawPointer>.size
    public static let instanceConfig = MemoryLayout<ert_instance_config>.offset(of: \.services)! + MemoryLayout<UnsafeRawPointer>.size
    public static let call = MemoryLayout<ert_call>.offset(of: \.host_context)! + MemoryLayout<UnsafeRawPointer>.size
    public static let operations = MemoryLayout<ert_operations>.offset(of: \.metrics)! + MemoryLayout<UnsafeRawPointer>.size
    public static let extensionOperation = MemoryLayout<ert_extension_op>.offset(of: \.function)! + MemoryLayout<UnsafeRawPointer>.size
    public static let driverDescriptor = MemoryLayout<ert_driver_descriptor>.offset(of: \.extension_op_count)! + MemoryLayout<Int>.size
    /// Metric rules arrived with ABI 1.1.
    public static let metricRule = MemoryLayout<ert_metric_rule>.offset(of: \.set_labels)! + MemoryLayout<UnsafeRawPointer>.size
}

/// Reads ABI structs whose writer may be older or newer than this side (rule 3 of the header):
/// only the writer's `struct_size` bytes are read; fields beyond it stay zero, which means
/// absent.
public enum GrowableStruct {
    /// The `struct_size` a struct declares (its first field, a uint32_t).
    public static func declaredSize(at pointer: UnsafeRawPointer) -> Int {
        Int(pointer.loadUnaligned(as: UInt32.self))
    }

    /// Copies the struct at `pointer` into a zeroed value of this side's size.
    /// Returns nil when the declared size is below `minimumSize`.
    public static func read<T>(_ type: T.Type, at pointer: UnsafeRawPointer, minimumSize: Int) -> (value: T, size: Int)? {
        let size = declaredSize(at: pointer)
        guard size >= minimumSize else { return nil }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { storage.deallocate() }
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        storage.copyMemory(from: pointer, byteCount: min(size, MemoryLayout<T>.size))
        return (storage.load(as: T.self), size)
    }
}

import PluginABI

/// Reads ABI structs whose writer may be older or newer than this host (rule 3 of the
/// header): only the writer's `struct_size` bytes are read; fields beyond it stay zero, which
/// means absent.
enum GrowableStruct {
    /// The `struct_size` a struct declares (its first field, a uint32_t).
    static func declaredSize(at pointer: UnsafeRawPointer) -> Int {
        Int(pointer.loadUnaligned(as: UInt32.self))
    }

    /// Copies the struct at `pointer` into a zeroed host-sized value.
    /// Returns nil when the declared size is below `minimumSize`.
    static func read<T>(_ type: T.Type, at pointer: UnsafeRawPointer, minimumSize: Int) -> (value: T, size: Int)? {
        let size = declaredSize(at: pointer)
        guard size >= minimumSize else { return nil }
        let storage = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { storage.deallocate() }
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        storage.copyMemory(from: pointer, byteCount: min(size, MemoryLayout<T>.size))
        return (storage.load(as: T.self), size)
    }
}

/// The sizes of the ABI structs as first published (1.0); readers accept nothing smaller.
/// Mirrors the `ERT_*_SIZE_V1_0` macros of the header, which Swift cannot import.
enum ABIMinimumSize {
    static let httpRequest = MemoryLayout<ert_http_request>.offset(of: \.max_response_bytes)! + 8
    static let httpResponse = MemoryLayout<ert_http_response>.offset(of: \.content_type)! + Int(ERT_CONTENT_TYPE_CAPACITY)
    static let error = MemoryLayout<ert_error>.offset(of: \.message)! + Int(ERT_ERROR_MESSAGE_CAPACITY)
    static let operations = MemoryLayout<ert_operations>.offset(of: \.metrics)! + 8
    static let extensionOperation = MemoryLayout<ert_extension_op>.offset(of: \.function)! + 8
    static let driverDescriptor = MemoryLayout<ert_driver_descriptor>.offset(of: \.extension_op_count)! + 8
}

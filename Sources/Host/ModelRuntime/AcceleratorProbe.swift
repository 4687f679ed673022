import DriverABI
#if canImport(Glibc)
import Glibc
#endif

/// GPUs and their memory through NVML, opened at run time (`libnvidia-ml.so.1` comes with the
/// NVIDIA driver, not with the sidecar): none found is an empty list, never an error.
struct AcceleratorProbe: Sendable {
    private typealias Initialize = @convention(c) () -> Int32
    private typealias Count = @convention(c) (UnsafeMutablePointer<UInt32>) -> Int32
    private typealias Handle = @convention(c) (UInt32, UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias UUID = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>, UInt32) -> Int32
    /// nvmlMemory_t: total, free, used (unsigned long long each).
    private typealias Memory = @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt64>) -> Int32

    func devices() -> [RuntimeSnapshot.Accelerator] {
        guard let library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL) else { return [] }
        func symbol<T>(_ name: String, _ type: T.Type) -> T? { dlsym(library, name).map { unsafeBitCast($0, to: type) } }
        guard let initialize = symbol("nvmlInit_v2", Initialize.self), let shutdown = symbol("nvmlShutdown", Initialize.self),
            let count = symbol("nvmlDeviceGetCount_v2", Count.self), let handle = symbol("nvmlDeviceGetHandleByIndex_v2", Handle.self),
            let uuid = symbol("nvmlDeviceGetUUID", UUID.self), let memory = symbol("nvmlDeviceGetMemoryInfo", Memory.self),
            initialize() == 0
        else { return [] }
        defer { _ = shutdown() }
        var devices: UInt32 = 0
        guard count(&devices) == 0 else { return [] }
        var result: [RuntimeSnapshot.Accelerator] = []
        for index in 0..<min(devices, 64) {
            var device: OpaquePointer?
            guard handle(index, &device) == 0 else { continue }
            var name = [CChar](repeating: 0, count: 96)
            var numbers = [UInt64](repeating: 0, count: 3)
            guard uuid(device, &name, 96) == 0, memory(device, &numbers) == 0 else { continue }
            result.append(.init(id: name.withUnsafeBytes { CString.read($0) }, hbm_total_bytes: Int64(numbers[0]), hbm_free_bytes: Int64(numbers[1])))
        }
        return result
    }
}

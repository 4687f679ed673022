#if canImport(Glibc)
import Glibc
#endif

/// glibc functions Swift's Glibc module leaves out (GNU extensions, `<malloc.h>`), looked up
/// by name once. Nil where the C library lacks one: callers treat them as hints.
public enum GNUExtensions {
    private static func lookUp<Function>(_ name: String, as type: Function.Type) -> Function? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name).map { unsafeBitCast($0, to: type) }  // RTLD_DEFAULT
    }

    /// `mallopt(param, value)`.
    public static let mallopt = lookUp("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self)
    /// `M_MMAP_THRESHOLD` and `M_ARENA_MAX` of `<malloc.h>`.
    public static let mmapThreshold: Int32 = -3
    public static let arenaMax: Int32 = -8

    /// `sync_file_range(fd, offset, count, flags)`; `SYNC_FILE_RANGE_WRITE` is 2.
    static let syncFileRange = lookUp("sync_file_range", as: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    static let syncFileRangeWrite: UInt32 = 2

    /// `pthread_setname_np(thread, name)`: names show in `top -H` and in core dumps.
    static let setThreadName = lookUp("pthread_setname_np", as: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32).self)
}

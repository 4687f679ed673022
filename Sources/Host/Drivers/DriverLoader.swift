import PluginABI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Opens driver files and runs the handshake. The only code in the host that touches `dlopen`.
///
/// `dlopen` state is process-wide, and the ABI promises a driver that its entry function runs
/// once per process; so this cache of opened files (keyed by device and inode, not by path) is
/// process-wide too. Files are never closed (header rule 8), so a cached file stays mapped and
/// its inode cannot be reused by another file; a file dlopen refused is not cached, because
/// its inode can be.
public enum DriverLoader {
    private struct FileIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    private static let opened = Mutex<[FileIdentity: Result<LoadedDriver, DriverLoadError>]>([:])

    /// Loads the driver at `path`, or returns the one already loaded from the same file.
    public static func load(path: String) -> Result<LoadedDriver, DriverLoadFailure> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return .failure(DriverLoadFailure(path: path, error: .fileNotFound))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(DriverLoadFailure(path: path, error: .notASharedObject("not a regular file")))
        }
        let identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        // Held across dlopen and the entry call: two threads loading one file must not both
        // run its entry function.
        let result = opened.withLock { cache -> Result<LoadedDriver, DriverLoadError> in
            if let known = cache[identity] { return known }
            let result = openAndHandshake(path: path)
            if case .failure(.notASharedObject) = result { return result }
            cache[identity] = result
            return result
        }
        return result.mapError { DriverLoadFailure(path: path, error: $0) }
    }

    private static func openAndHandshake(path: String) -> Result<LoadedDriver, DriverLoadError> {
        _ = dlerror()
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            return .failure(.notASharedObject(Self.trimPath(reason, path: path)))
        }
        guard let symbol = dlsym(handle, ERT_DRIVER_ENTRY_SYMBOL) else {
            let others = (2...9).filter { dlsym(handle, "ert_driver_entry_v\($0)") != nil }
            return .failure(.missingEntrySymbol(otherMajors: others))
        }
        let entry = unsafeBitCast(symbol, to: ert_driver_entry_v1_fn.self)
        var error = ErrorRecord.empty()
        guard let descriptor = entry(HostABI.shared.info, &error) else {
            let reason = RuntimeError(driverReturned: ERT_STATUS_INTERNAL, record: error).message
            return .failure(.driverRefusedHost(reason))
        }
        do throws(DriverLoadError) {
            return .success(try LoadedDriver(path: path, descriptor: descriptor))
        } catch {
            return .failure(error)
        }
    }

    /// dlerror repeats the path at the front; the failure line already names it.
    private static func trimPath(_ reason: String, path: String) -> String {
        reason.hasPrefix(path + ": ") ? String(reason.dropFirst(path.count + 2)) : reason
    }
}

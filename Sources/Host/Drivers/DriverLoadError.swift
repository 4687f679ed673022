/// Why a driver file could not be loaded. Each case renders as one line naming the cause; the
/// loader prefixes the file.
public enum DriverLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    case fileNotFound
    case notASharedObject(String)
    case missingEntrySymbol(otherMajors: [Int])
    case driverRefusedHost(String)
    case badMagic(UInt32)
    case abiMajorMismatch(driver: Int, host: Int)
    case needsNewerHostMinor(required: Int, host: Int)
    case structTooSmall(structName: String, size: Int, minimum: Int)
    case missingRequiredField(String)
    case invalidName(field: String, value: String)
    case duplicateDriverName(String, firstPath: String)
    case invalidExtension(operation: String, reason: String)
    case invalidMetricRule(index: Int, reason: String)
    case reservedFieldSet(structName: String, value: UInt64)
    /// The driver's isolated host process reported this line, or could not be started.
    case isolatedHost(String)

    public var description: String {
        switch self {
        case .isolatedHost(let line):
            line
        case .fileNotFound:
            "no such file"
        case .notASharedObject(let reason):
            "not a loadable shared object: \(reason)"
        case .missingEntrySymbol(let majors) where !majors.isEmpty:
            "exports no ert_driver_entry_v1 symbol; it was built for driver ABI major "
                + majors.map(String.init).joined(separator: ", ") + ", and this host speaks major 1"
        case .missingEntrySymbol:
            "exports no ert_driver_entry_v1 symbol: is it an engine-runtime driver? Export the entry as "
                + "C: `ERT_EXPORT const ert_driver_descriptor *ert_driver_entry_v1(const ert_host_info *, ert_error *)` (with -fvisibility=hidden, ERT_EXPORT keeps it visible); "
                + "C++: the same inside `extern \"C\"` (the header has it), or the name is mangled; "
                + "Rust: `#[no_mangle] pub unsafe extern \"C\" fn ert_driver_entry_v1` in a crate with crate-type = [\"cdylib\"]; "
                + "Swift: `@_cdecl(\"ert_driver_entry_v1\") public func` in a .dynamic library product (see docs/drivers.md)"
        case .driverRefusedHost(let reason):
            "the driver refused this host: \(reason)"
        case .badMagic(let magic):
            "bad magic 0x\(String(magic, radix: 16)) in the driver descriptor (expected 0x45525444)"
        case .abiMajorMismatch(let driver, let host):
            "driver ABI major \(driver) does not match the host's major \(host)"
        case .needsNewerHostMinor(let required, let host):
            "driver needs host ABI 1.\(required) or newer; this host has 1.\(host) (upgrade engine-runtime)"
        case .structTooSmall(let name, let size, let minimum):
            "\(name).struct_size is \(size), below the \(minimum) bytes of ABI 1.0"
        case .missingRequiredField(let field):
            "required descriptor field \(field) is NULL"
        case .invalidName(let field, let value):
            "invalid \(field) \"\(value)\" (must match [a-z0-9][a-z0-9_-]{0,62})"
        case .duplicateDriverName(let name, let firstPath):
            "a driver named \"\(name)\" is already loaded from \(firstPath)"
        case .invalidExtension(let operation, let reason):
            "extension operation \"\(operation)\": \(reason)"
        case .invalidMetricRule(let index, let reason):
            "metric rule #\(index): \(reason)"
        case .reservedFieldSet(let name, let value):
            "\(name).reserved0 is \(value); reserved fields must be zero (zero-initialize the struct: `= {0}` in C)"
        }
    }
}

/// A failed load: the file and the cause, rendered as `PATH: cause`.
public struct DriverLoadFailure: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let error: DriverLoadError
    public var description: String { "\(path): \(error)" }
}

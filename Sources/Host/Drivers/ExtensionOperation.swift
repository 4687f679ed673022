#if canImport(Glibc)
import Glibc
#endif
import CFFI
import PluginABI

/// The closed type set of extension operations (`ERT_TYPE_*`). In JSON (`/v1/drivers`,
/// `drivers list --json`) a type is its word, `"int64"`, not the header's number.
public enum ExtensionValueType: Int32, Sendable, Codable, CustomStringConvertible, CaseIterable {
    case void = 0, bool, int64, double, string

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let word = try? container.decode(String.self), let type = Self.allCases.first(where: { $0.description == word }) {
            self = type
        } else if let number = try? container.decode(Int32.self), let type = Self(rawValue: number) {
            self = type  // what earlier versions wrote
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an extension value type (void, bool, int64, double, string)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        switch self {
        case .void: "void"
        case .bool: "bool"
        case .int64: "int64"
        case .double: "double"
        case .string: "string"
        }
    }

    /// The libffi type of a value of this type passed by value (void only as a result).
    fileprivate var ffiType: UnsafeMutablePointer<ffi_type> {
        switch self {
        case .void: ert_ffi_type_void()
        case .bool: ert_ffi_type_uint8()  // C `bool` is one byte on every supported ABI
        case .int64: ert_ffi_type_sint64()
        case .double: ert_ffi_type_double()
        case .string: ert_ffi_type_pointer()
        }
    }
}

/// One declared parameter of an extension operation.
public struct ExtensionParameter: Sendable, Codable, Equatable {
    public let name: String
    public let type: ExtensionValueType

    public init(name: String, type: ExtensionValueType) {
        self.name = name
        self.type = type
    }
}

/// What an extension operation declares, without its function: how an isolated driver's
/// host tells the sidecar about it.
struct ExtensionDeclaration: Codable, Sendable {
    var name: String
    var summary: String?
    var resultType: ExtensionValueType
    var parameters: [ExtensionParameter]
    var mutating: Bool
}

/// A validated vendor operation with a typed C signature, called through libffi.
///
/// The call interface (`ffi_cif`) is prepared once when the driver loads; calls only marshal
/// arguments. Instances are immutable after creation, so they are safe to share. An isolated
/// driver's operations have no call interface in the sidecar: its host calls them.
public final class ExtensionOperation: @unchecked Sendable {
    public let name: String
    public let summary: String?
    public let resultType: ExtensionValueType
    public let parameters: [ExtensionParameter]
    public let isMutating: Bool

    private let callable: Callable?

    /// The function and its prepared call interface, freed with the operation.
    private final class Callable {
        let function: @convention(c) () -> Void
        let cif: UnsafeMutablePointer<ffi_cif>
        let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>

        init(function: @convention(c) () -> Void, cif: UnsafeMutablePointer<ffi_cif>, argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>) {
            self.function = function
            self.cif = cif
            self.argumentTypes = argumentTypes
        }

        deinit {
            cif.deallocate()
            argumentTypes.deallocate()
        }
    }

    var declaration: ExtensionDeclaration {
        ExtensionDeclaration(name: name, summary: summary, resultType: resultType, parameters: parameters, mutating: isMutating)
    }

    /// An operation an isolated driver's host declared (checked there as a declaration is here).
    init(declared declaration: ExtensionDeclaration) {
        name = declaration.name
        summary = declaration.summary
        resultType = declaration.resultType
        parameters = declaration.parameters
        isMutating = declaration.mutating
        callable = nil
    }

    /// Most bytes of a string result an extension may return.
    public static let maximumStringResultBytes = 1 << 20

    /// Validates one declaration read from a driver and prepares its call interface.
    init(declaration pointer: UnsafePointer<ert_extension_op>) throws(DriverLoadError) {
        let size = GrowableStruct.declaredSize(at: pointer)
        guard
            let declaration = GrowableStruct.read(
                ert_extension_op.self, at: pointer, minimumSize: ExtensionOperation.minimumDeclarationSize)?.value
        else {
            throw .structTooSmall(
                structName: "ert_extension_op", size: size, minimum: ExtensionOperation.minimumDeclarationSize)
        }
        guard let namePointer = declaration.name else { throw .missingRequiredField("ert_extension_op.name") }
        let name = String(cString: namePointer)
        func invalid(_ reason: String) -> DriverLoadError { .invalidExtension(operation: name, reason: reason) }

        guard Self.isValidOperationName(name) else { throw invalid("name must match [a-z0-9_.]+ (at most 64 bytes)") }
        guard let function = declaration.function else { throw invalid("function is NULL") }
        guard let resultType = ExtensionValueType(rawValue: declaration.result_type) else {
            throw invalid("unknown result type code \(declaration.result_type)")
        }
        let count = declaration.param_count
        guard count <= Int(ERT_EXTENSION_MAX_PARAMS) else {
            throw invalid("\(count) parameters declared; at most \(ERT_EXTENSION_MAX_PARAMS) are allowed")
        }
        var parameters: [ExtensionParameter] = []
        if count > 0 {
            guard let names = declaration.param_names, let types = declaration.param_types else {
                throw invalid("param_names or param_types is NULL but param_count is \(count)")
            }
            for index in 0..<count {
                guard let parameterName = names[index].map({ String(cString: $0) }) else {
                    throw invalid("parameter \(index) has a NULL name")
                }
                guard Self.isValidParameterName(parameterName) else {
                    throw invalid("parameter name \"\(parameterName)\" must match [a-z0-9_]+ (at most 64 bytes)")
                }
                guard let type = ExtensionValueType(rawValue: types[index]), type != .void else {
                    throw invalid("parameter \"\(parameterName)\" has invalid type code \(types[index])")
                }
                guard !parameters.contains(where: { $0.name == parameterName }) else {
                    throw invalid("parameter \"\(parameterName)\" is declared twice")
                }
                parameters.append(ExtensionParameter(name: parameterName, type: type))
            }
        }

        // (instance, call, error, arguments..., [result out])
        let fixed = 3
        let total = fixed + parameters.count + (resultType == .void ? 0 : 1)
        let argumentTypes = UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>.allocate(capacity: total)
        for index in 0..<fixed { argumentTypes[index] = ert_ffi_type_pointer() }
        for (index, parameter) in parameters.enumerated() { argumentTypes[fixed + index] = parameter.type.ffiType }
        if resultType != .void { argumentTypes[total - 1] = ert_ffi_type_pointer() }
        let cif = UnsafeMutablePointer<ffi_cif>.allocate(capacity: 1)
        let prepared = ffi_prep_cif(cif, ert_ffi_default_abi(), UInt32(total), ert_ffi_type_sint32(), argumentTypes)
        guard prepared == FFI_OK else {
            argumentTypes.deallocate()
            cif.deallocate()
            throw invalid("libffi could not prepare the call interface (status \(prepared.rawValue))")
        }

        self.name = name
        self.summary = declaration.description.map { String(cString: $0) }
        self.resultType = resultType
        self.parameters = parameters
        self.isMutating = declaration.flags & UInt32(ERT_EXTENSION_MUTATING) != 0
        self.callable = Callable(function: function, cif: cif, argumentTypes: argumentTypes)
        _ = size
    }

    static let minimumDeclarationSize = ABIMinimumSize.extensionOperation

    static func isValidOperationName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2E }
    }

    static func isValidParameterName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    // MARK: Arguments

    /// A validated argument value, in declaration order.
    public enum Argument: Sendable, Equatable, Codable {
        case bool(Bool)
        case int64(Int64)
        case double(Double)
        case string(String)
    }

    /// Checks a JSON object of named arguments against the declaration: every parameter
    /// present with the right type, nothing extra, int64 in range, finite doubles, no NUL in
    /// strings. Throws `invalidArgument` naming the first problem.
    public func validateArguments(json: [UInt8]) throws(RuntimeError) -> [Argument] {
        let document: JSONValue
        do {
            document = try JSONCoding.decode(JSONValue.self, from: json.isEmpty ? Array("{}".utf8) : json)
        } catch {
            throw RuntimeError(.invalidArgument, "the request body is not valid JSON")
        }
        guard case .object(let object) = document else {
            throw RuntimeError(.invalidArgument, "the arguments must be a JSON object, not \(document.typeName)")
        }
        for key in object.keys.sorted() where !parameters.contains(where: { $0.name == key }) {
            throw RuntimeError(.invalidArgument, "unknown argument \"\(key)\" for \(name)")
        }
        return try parameters.map { parameter throws(RuntimeError) -> Argument in
            guard let value = object[parameter.name] else {
                throw RuntimeError(.invalidArgument, "missing argument \"\(parameter.name)\" (\(parameter.type))")
            }
            func wrongType() -> RuntimeError {
                RuntimeError(
                    .invalidArgument, "argument \"\(parameter.name)\" must be \(parameter.type), not \(value.typeName)")
            }
            switch (parameter.type, value) {
            case (.bool, .bool(let flag)):
                return .bool(flag)
            case (.int64, .integer(let number)):
                return .int64(number)
            case (.int64, .number(let number)):
                guard number.rounded() == number, number.isFinite else {
                    throw RuntimeError(.invalidArgument, "argument \"\(parameter.name)\" must be an integer")
                }
                throw RuntimeError(
                    .invalidArgument, "argument \"\(parameter.name)\" is outside the int64 range")
            case (.double, .integer(let number)):
                return .double(Double(number))
            case (.double, .number(let number)):
                guard number.isFinite else {
                    throw RuntimeError(.invalidArgument, "argument \"\(parameter.name)\" must be finite")
                }
                return .double(number)
            case (.string, .string(let text)):
                guard !text.utf8.contains(0) else {
                    throw RuntimeError(.invalidArgument, "argument \"\(parameter.name)\" contains a NUL character")
                }
                return .string(text)
            default:
                throw wrongType()
            }
        }
    }

    // MARK: Calling

    /// Calls the operation. Blocking: run it on a worker thread, never on an event loop.
    /// `arguments` must come from `validateArguments`.
    func invoke(
        instance: InstanceHandle, call: UnsafePointer<ert_call>, arguments: [Argument]
    ) -> Result<JSONValue, RuntimeError> {
        precondition(arguments.count == parameters.count, "arguments were not validated")
        guard let callable else { return .failure(RuntimeError(.internalError, "\(name) is served by the driver's host process")) }
        let slotCount = 3 + arguments.count + (resultType == .void ? 0 : 1)
        // Each slot holds one argument value (at most 8 bytes); libffi reads through pointers.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: slotCount * 8, alignment: 8)
        let values = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: slotCount)
        var strings: [UnsafeMutablePointer<CChar>] = []
        var error = ErrorRecord.empty()
        let resultSlot = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        resultSlot.storeBytes(of: 0, as: UInt64.self)
        let stringResult = ByteSink(limit: Self.maximumStringResultBytes)
        defer {
            slots.deallocate()
            values.deallocate()
            resultSlot.deallocate()
            strings.forEach { free($0) }
        }

        func slot(_ index: Int) -> UnsafeMutableRawPointer { slots + index * 8 }
        var returned: Int = 0  // ffi widens small integral results to ffi_arg
        let raw = withUnsafeMutablePointer(to: &error) { errorPointer -> ert_status in
            stringResult.withCSink { sinkPointer -> ert_status in
                slot(0).storeBytes(of: UnsafeMutableRawPointer(instance.pointer), as: UnsafeMutableRawPointer.self)
                slot(1).storeBytes(of: UnsafeRawPointer(call), as: UnsafeRawPointer.self)
                slot(2).storeBytes(of: UnsafeMutableRawPointer(errorPointer), as: UnsafeMutableRawPointer.self)
                for (index, argument) in arguments.enumerated() {
                    let target = slot(3 + index)
                    switch argument {
                    case .bool(let flag): target.storeBytes(of: flag ? 1 : 0, as: UInt8.self)
                    case .int64(let number): target.storeBytes(of: number, as: Int64.self)
                    case .double(let number): target.storeBytes(of: number, as: Double.self)
                    case .string(let text):
                        let copy = strdup(text)!
                        strings.append(copy)
                        target.storeBytes(of: UnsafeRawPointer(copy), as: UnsafeRawPointer.self)
                    }
                }
                if resultType != .void {
                    let out: UnsafeRawPointer = resultType == .string ? UnsafeRawPointer(sinkPointer) : UnsafeRawPointer(resultSlot)
                    slot(slotCount - 1).storeBytes(of: out, as: UnsafeRawPointer.self)
                }
                for index in 0..<slotCount { values[index] = slot(index) }
                ffi_call(callable.cif, callable.function, &returned, values)
                return Int32(truncatingIfNeeded: returned)
            }
        }
        guard raw == ERT_STATUS_OK else { return .failure(RuntimeError(driverReturned: raw, record: error)) }
        switch resultType {
        case .void: return .success(.null)
        case .bool: return .success(.bool(resultSlot.load(as: UInt8.self) != 0))
        case .int64: return .success(.integer(resultSlot.load(as: Int64.self)))
        case .double:
            let number = resultSlot.load(as: Double.self)
            guard number.isFinite else {
                return .failure(RuntimeError(.internalError, "\(name) returned a non-finite double"))
            }
            return .success(.number(number))
        case .string:
            if stringResult.overflowed {
                return .failure(RuntimeError(.internalError, "\(name) returned a string over \(Self.maximumStringResultBytes) bytes"))
            }
            guard let text = String(validating: stringResult.bytes, as: UTF8.self) else {
                return .failure(RuntimeError(.internalError, "\(name) returned a string that is not valid UTF-8"))
            }
            return .success(.string(text))
        }
    }
}

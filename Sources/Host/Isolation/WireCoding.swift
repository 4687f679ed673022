import DriverABI

/// The binary form of a frame's header on the wire to an isolated driver's host.
///
/// Both ends are the same `engine-runtime` binary, so the form needs no versioning. It is
/// binary because JSON coding of the headers was most of what isolation cost: a profile of
/// isolated LoRA loads showed ~0.15 ms of CPU per call in the child alone in JSONEncoder and
/// JSONDecoder, all of it on the call's path, for headers of a few integers and strings.
/// Integers are fixed-width little-endian, strings and byte strings a 4-byte length and the
/// bytes, optionals a presence byte. Rare, nested values (an instance's configuration, a
/// manifest, an error) are embedded as JSON: they are not on the hot path.
protocol WireMessage: Sendable {
    func write(to writer: inout WireWriter)
    static func read(from reader: inout WireReader) throws(WireFormatError) -> Self
}

/// A header that does not decode: the peer is not a matching host, and the channel is ended.
struct WireFormatError: Error {
    let reason: String
}

struct WireWriter {
    var bytes: [UInt8]

    init() { bytes = [] }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func int(_ value: Int) { u64(UInt64(bitPattern: Int64(value))) }

    mutating func bool(_ value: Bool) { u8(value ? 1 : 0) }

    mutating func raw(_ value: some Collection<UInt8>) {
        withUnsafeBytes(of: UInt32(value.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: value)
    }

    mutating func string(_ value: String) { raw(value.utf8) }

    mutating func optional<T>(_ value: T?, _ write: (inout WireWriter, T) -> Void) {
        guard let value else { return u8(0) }
        u8(1)
        write(&self, value)
    }

    mutating func strings(_ values: [String]) {
        int(values.count)
        for value in values { string(value) }
    }

    /// A nested value as JSON; one that cannot be encoded is written as JSON null, which the
    /// reader then refuses (the values written here always encode).
    mutating func json(_ value: some Encodable) { raw((try? JSONCoding.encode(value)) ?? Array("null".utf8)) }
}

struct WireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int, _ what: String) throws(WireFormatError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else { throw WireFormatError(reason: "the header ends inside \(what)") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func u8() throws(WireFormatError) -> UInt8 { try take(1, "a byte").first! }

    mutating func u64() throws(WireFormatError) -> UInt64 {
        try take(8, "an integer").withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    mutating func int() throws(WireFormatError) -> Int {
        let value = Int64(bitPattern: try u64())
        guard let exact = Int(exactly: value) else { throw WireFormatError(reason: "an integer out of range") }
        return exact
    }

    mutating func bool() throws(WireFormatError) -> Bool { try u8() != 0 }

    mutating func raw() throws(WireFormatError) -> ArraySlice<UInt8> {
        let length = try take(4, "a length").withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        return try take(Int(length), "a string")
    }

    mutating func string() throws(WireFormatError) -> String { String(decoding: try raw(), as: UTF8.self) }

    mutating func optional<T>(_ read: (inout WireReader) throws(WireFormatError) -> T) throws(WireFormatError) -> T? {
        switch try u8() {
        case 0: return nil
        case 1: return try read(&self)
        case let flag: throw WireFormatError(reason: "presence flag \(flag)")
        }
    }

    mutating func optionalString() throws(WireFormatError) -> String? {
        try optional { (reader: inout WireReader) throws(WireFormatError) in try reader.string() }
    }

    mutating func optionalU64() throws(WireFormatError) -> UInt64? {
        try optional { (reader: inout WireReader) throws(WireFormatError) in try reader.u64() }
    }

    mutating func optionalJSON<T: Decodable>(_ type: T.Type) throws(WireFormatError) -> T? {
        try optional { (reader: inout WireReader) throws(WireFormatError) in try reader.json(type) }
    }

    mutating func strings() throws(WireFormatError) -> [String] {
        let count = try int()
        // Each string takes at least its 4-byte length: a count beyond that is corrupt.
        guard count >= 0, count <= (bytes.count - offset) / 4 else { throw WireFormatError(reason: "a list of \(count) strings") }
        var values: [String] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try string()) }
        return values
    }

    mutating func json<T: Decodable>(_ type: T.Type) throws(WireFormatError) -> T {
        let text = try raw()
        do {
            return try JSONCoding.decode(type, from: text)
        } catch {
            throw WireFormatError(reason: "a \(T.self) that does not decode: \(error)")
        }
    }
}

extension HostToDriverHost: WireMessage {
    func write(to writer: inout WireWriter) {
        switch self {
        case .create(let call, let instance, let configuration):
            writer.u8(0)
            writer.u64(call)
            writer.u64(instance)
            writer.json(configuration)
        case .invoke(let call, let instance, let operation, let deadline):
            writer.u8(1)
            writer.u64(call)
            writer.u64(instance)
            writer.string(operation.rawValue)
            writer.u64(deadline)
        case .invokeExtension(let call, let instance, let name, let arguments, let deadline):
            writer.u8(2)
            writer.u64(call)
            writer.u64(instance)
            writer.string(name)
            writer.json(arguments)
            writer.u64(deadline)
        case .planLaunch(let call):
            writer.u8(3)
            writer.u64(call)
        case .destroy(let call, let instance):
            writer.u8(4)
            writer.u64(call)
            writer.u64(instance)
        case .httpAnswer(let exchange, let status, let contentType, let error):
            writer.u8(5)
            writer.u64(exchange)
            writer.int(status)
            writer.string(contentType)
            writer.optional(error) { $0.json($1) }
        }
    }

    static func read(from reader: inout WireReader) throws(WireFormatError) -> HostToDriverHost {
        switch try reader.u8() {
        case 0:
            return .create(call: try reader.u64(), instance: try reader.u64(), configuration: try reader.json(InstanceConfiguration.self))
        case 1:
            let call = try reader.u64()
            let instance = try reader.u64()
            let name = try reader.string()
            guard let operation = DriverOperation(rawValue: name) else { throw WireFormatError(reason: "unknown operation \(name)") }
            return .invoke(call: call, instance: instance, operation: operation, deadlineNanoseconds: try reader.u64())
        case 2:
            return .invokeExtension(
                call: try reader.u64(), instance: try reader.u64(), name: try reader.string(),
                arguments: try reader.json([ExtensionOperation.Argument].self), deadlineNanoseconds: try reader.u64())
        case 3:
            return .planLaunch(call: try reader.u64())
        case 4:
            return .destroy(call: try reader.u64(), instance: try reader.u64())
        case 5:
            return .httpAnswer(
                exchange: try reader.u64(), status: try reader.int(), contentType: try reader.string(),
                error: try reader.optionalJSON(RuntimeError.self))
        case let tag:
            throw WireFormatError(reason: "unknown message \(tag) from the sidecar")
        }
    }
}

extension DriverHostToHost: WireMessage {
    func write(to writer: inout WireWriter) {
        switch self {
        case .hello(let manifest, let failure):
            writer.u8(0)
            writer.optional(manifest) { $0.json($1) }
            writer.optional(failure) { $0.string($1) }
        case .answer(let call, let error, let value):
            writer.u8(1)
            writer.u64(call)
            writer.optional(error) { $0.json($1) }
            writer.optional(value) { $0.json($1) }
        case .log(let level, let message, let metadata):
            writer.u8(2)
            writer.string(level)
            writer.string(message)
            let pairs = metadata.sorted { $0.key < $1.key }
            writer.strings(pairs.map(\.key))
            writer.strings(pairs.map(\.value))
        case .http(let exchange, let call, let method, let url, let headers, let timeout, let idempotent, let limit):
            writer.u8(3)
            writer.u64(exchange)
            writer.optional(call) { $0.u64($1) }
            writer.string(method)
            writer.string(url)
            writer.strings(headers)
            writer.int(Int(timeout))
            writer.bool(idempotent)
            writer.int(limit)
        case .progress(let call, let done, let total, let message):
            writer.u8(4)
            writer.u64(call)
            writer.u64(done)
            writer.u64(total)
            writer.optional(message) { $0.string($1) }
        }
    }

    static func read(from reader: inout WireReader) throws(WireFormatError) -> DriverHostToHost {
        switch try reader.u8() {
        case 0:
            return .hello(
                manifest: try reader.optionalJSON(DriverManifest.self),
                failure: try reader.optionalString())
        case 1:
            return .answer(
                call: try reader.u64(),
                error: try reader.optionalJSON(RuntimeError.self),
                value: try reader.optionalJSON(JSONValue.self))
        case 2:
            let level = try reader.string()
            let message = try reader.string()
            let keys = try reader.strings()
            let values = try reader.strings()
            guard keys.count == values.count else { throw WireFormatError(reason: "a log record's metadata does not pair up") }
            return .log(level: level, message: message, metadata: Dictionary(zip(keys, values), uniquingKeysWith: { $1 }))
        case 3:
            return .http(
                exchange: try reader.u64(),
                call: try reader.optionalU64(),
                method: try reader.string(), url: try reader.string(), headers: try reader.strings(),
                timeoutMilliseconds: Int64(try reader.int()), idempotent: try reader.bool(), maxResponseBytes: try reader.int())
        case 4:
            return .progress(
                call: try reader.u64(), done: try reader.u64(), total: try reader.u64(),
                message: try reader.optionalString())
        case let tag:
            throw WireFormatError(reason: "unknown message \(tag) from a driver host")
        }
    }
}

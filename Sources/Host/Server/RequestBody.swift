import Hummingbird
import NIOCore

/// Reads and checks JSON request bodies: size bound, well-formed object, no unknown fields
/// (the AIBrix request models forbid extras, and a typo should not be silently ignored).
struct RequestBody {
    let limit: Int

    private var tooLarge: RuntimeError {
        RuntimeError(.tooLarge, "the request body is larger than \(limit) bytes")
    }

    /// The body as a JSON object; an empty body is `{}`.
    func object(_ request: Request, allowed: Set<String>) async throws -> [String: JSONValue] {
        try await checkedBody(request, allowed: allowed).object
    }

    /// Decodes a checked body into `T` (field types are checked here).
    func decode<T: Decodable>(_ type: T.Type, _ request: Request, allowed: Set<String>) async throws -> T {
        let body = try await checkedBody(request, allowed: allowed)
        return try Self.decode(type, bytes: body.bytes.isEmpty ? Array("{}".utf8) : body.bytes)
    }

    /// The raw bytes and the parsed object, after the size, shape and field checks.
    func checkedBody(_ request: Request, allowed: Set<String>) async throws -> (bytes: [UInt8], object: [String: JSONValue]) {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        let bytes = Array(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return ([], [:]) }
        guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
            throw RuntimeError.invalid("the request body is not valid JSON")
        }
        guard case .object(let object) = value else {
            throw RuntimeError.invalid("the request body must be a JSON object, not \(value.typeName)")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw RuntimeError.invalid(
                "unknown field \"\(unknown)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        return (bytes, object)
    }

    static func decode<T: Decodable>(_ type: T.Type, bytes: [UInt8]) throws -> T {
        do {
            return try JSONCoding.decode(type, from: bytes)
        } catch let DecodingError.keyNotFound(key, _) {
            throw RuntimeError.invalid("missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(expected, context) {
            throw RuntimeError.invalid("field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" must be \(typeName(expected))")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw RuntimeError.invalid("field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" must be \(typeName(expected)), not null")
        } catch {
            throw RuntimeError.invalid("the request body does not match the expected fields")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type: "an integer"
        case is [String].Type: "an array of strings"
        case is [String: String].Type: "an object of strings"
        default: "of another type"
        }
    }
}

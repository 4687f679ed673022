import Hummingbird
import NIOCore

/// Reads and checks JSON request bodies: a JSON content type, the size bound (counted as the
/// bytes arrive, and against the budget all bodies share), a well-formed object without
/// duplicate keys, no unknown fields (the AIBrix request models forbid extras, and a typo
/// should not be silently ignored).
struct RequestBody {
    let limit: Int
    let budget: BodyBudget

    init(limit: Int) {
        self.limit = limit
        // Enough for dozens of bodies at the limit at once; the JSON bodies of this API are
        // a few hundred bytes.
        budget = BodyBudget(total: max(32 << 20, 4 * limit))
    }

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
        // A browser may send a cross-site form or text/plain POST without asking first; a
        // JSON content type it may not, so requiring one keeps such pages out.
        if let type = request.headers[.contentType], !Self.isJSON(type) {
            throw RuntimeError(.unsupportedMediaType, "the request body must be JSON (Content-Type: application/json), not \(type.prefix(100))")
        }
        let bytes = try await collect(request)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return ([], [:]) }
        if request.headers[.contentType] == nil {
            throw RuntimeError(.unsupportedMediaType, "a request body needs Content-Type: application/json")
        }
        guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
            throw RuntimeError.invalid("the request body is not valid JSON")
        }
        guard case .object(let object) = value else {
            throw RuntimeError.invalid("the request body must be a JSON object, not \(value.typeName)")
        }
        if let key = JSONDuplicateKeys.first(in: bytes) {
            throw RuntimeError.invalid("field \"\(key.prefix(100))\" appears twice in one object")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw RuntimeError.invalid(
                "unknown field \"\(unknown)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        return (bytes, object)
    }

    /// The body's bytes, refused as soon as they pass the limit or the shared budget.
    private func collect(_ request: Request) async throws -> [UInt8] {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw tooLarge }
        var bytes: [UInt8] = []
        var taken = 0
        defer { budget.give(taken) }
        do {
            for try await chunk in request.body {
                guard bytes.count + chunk.readableBytes <= limit else { throw tooLarge }
                guard budget.take(chunk.readableBytes) else {
                    throw RuntimeError(
                        .unavailable, "the runtime is receiving too many request bodies at once (\(budget.total) bytes); retry shortly")
                }
                taken += chunk.readableBytes
                bytes.append(contentsOf: chunk.readableBytesView)
            }
        } catch let error as RuntimeError {
            throw error
        } catch {
            // The client went away or the request timeout closed the connection.
            throw RuntimeError.invalid("the request body ended before it was complete")
        }
        return bytes
    }

    /// `application/json`, any `+json` type, with or without parameters.
    static func isJSON(_ contentType: String) -> Bool {
        // Bytes, not Characters: this runs on every request with a body.
        let end = contentType.utf8.firstIndex(of: UInt8(ascii: ";")) ?? contentType.endIndex
        let type = contentType[..<end].trimmingWhitespace().lowercased()
        return type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json"))
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

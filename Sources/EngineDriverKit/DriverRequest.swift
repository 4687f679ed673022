import FoundationEssentials

/// The JSON request of one operation.
public struct DriverRequest: Sendable {
    public let bytes: [UInt8]

    /// Decodes the request into `T`. Malformed JSON, a missing required field or a wrong type
    /// is an invalid argument naming the problem.
    public func decode<T: Decodable>(_ type: T.Type) throws(DriverFailure) -> T {
        do {
            return try JSONCoding.decode(type, from: bytes.isEmpty ? Array("{}".utf8) : bytes)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .invalidArgument("missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw .invalidArgument("the request must be a JSON object")
        } catch let DecodingError.typeMismatch(_, context) {
            throw .invalidArgument("wrong type for \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\"")
        } catch let DecodingError.valueNotFound(_, context) {
            throw .invalidArgument("null for \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\"")
        } catch {
            throw .invalidArgument("the request is not valid JSON")
        }
    }
}

/// JSON encoding for driver answers.
public enum DriverJSON {
    public static func encode(_ value: some Encodable) throws(DriverFailure) -> [UInt8] {
        do { return try JSONCoding.encode(value) } catch {
            throw .internalError("could not encode the answer: \(error)")
        }
    }

    /// Checks that engine output is one JSON value before passing it through unchanged.
    public static func validated(_ bytes: [UInt8], what: String, httpStatus: Int) throws(DriverFailure) -> [UInt8] {
        guard JSONCoding.isValidJSON(bytes) else {
            throw .upstream("\(what): the engine answered something that is not JSON", status: Int32(httpStatus))
        }
        return bytes
    }
}

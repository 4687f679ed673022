import FoundationEssentials

/// The host's JSON encoding and decoding, in one place so every answer looks the same.
public enum JSONCoding {
    /// Decodes `T` from UTF-8 JSON bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    /// Encodes `value` as compact UTF-8 JSON with sorted keys (stable output for clients and
    /// tests).
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// Encodes with indentation, for command-line output meant for people.
    public static func encodePretty(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// True when `bytes` is one well-formed JSON value.
    public static func isValidJSON(_ bytes: some Collection<UInt8>) -> Bool {
        // Decoded all the way: JSONDecoder's scan checks structure, but a string's escapes only
        // when the string is read (`"\q"` passes the scan).
        (try? decode(JSONValue.self, from: bytes)) != nil
    }
}

/// A JSON object at the top, checked without building its members: JSONDecoder scans the whole
/// text for structure before any `init(from:)` runs, and this looks only at the top. Escapes
/// inside strings are checked when a field is read. Building a `JSONValue` tree only to throw
/// it away was a few percent of the CPU of every driver call.
public struct JSONObjectShape: Decodable, Sendable {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: AnyKey.self)
    }
}

import Testing

@testable import DriverABI
@testable import Host

/// The subset of JSON Schema the host checks instance configs against.
@Suite struct ConfigSchemaTests {
    static let schema = ConfigSchema(json: """
        {"type":"object","additionalProperties":false,"required":["pool"],
         "properties":{"pool":{"type":"string","enum":["a","b"]},
                       "timeout_ms":{"type":"integer","minimum":1,"maximum":60000},
                       "hosts":{"type":"array","maxItems":2,"items":{"type":"string","minLength":1}},
                       "ratio":{"type":["number","null"],"exclusiveMaximum":1}}}
        """)!

    static func problem(_ json: String) throws -> String? {
        try Self.schema.problem(with: JSONCoding.decode(JSONValue.self, from: Array(json.utf8)))
    }

    @Test func validConfigsPass() throws {
        #expect(try Self.problem(#"{"pool":"a"}"#) == nil)
        #expect(try Self.problem(#"{"pool":"b","timeout_ms":500,"hosts":["x"],"ratio":null}"#) == nil)
        #expect(try Self.problem(#"{"pool":"b","timeout_ms":500.0,"ratio":0.5}"#) == nil, "500.0 is an integer in JSON Schema")
    }

    @Test func eachViolationIsNamedWithItsPath() throws {
        for (json, expected) in [
            (#"[]"#, "$: expected object, got array"),
            (#"{}"#, "$.pool: is required"),
            (#"{"pool":"c"}"#, #"$.pool: must be one of "a", "b""#),
            (#"{"pool":"a","timeout_ms":"fast"}"#, "$.timeout_ms: expected integer, got string"),
            (#"{"pool":"a","timeout_ms":0}"#, "$.timeout_ms: must be at least 1"),
            (#"{"pool":"a","timeout_ms":1.5}"#, "$.timeout_ms: expected integer, got number"),
            (#"{"pool":"a","hosts":["x","y","z"]}"#, "$.hosts: takes at most 2 items"),
            (#"{"pool":"a","hosts":[""]}"#, "$.hosts[0]: must be at least 1 characters"),
            (#"{"pool":"a","ratio":1}"#, "$.ratio: must be below 1"),
            (#"{"pool":"a","ratio":"x"}"#, "$.ratio: expected number or null, got string"),
            (#"{"pool":"a","speed":1}"#, "$.speed: is not a known setting (known: hosts, pool, ratio, timeout_ms)"),
        ] {
            #expect(try Self.problem(json) == expected, "\(json)")
        }
    }

    @Test func aSchemaThatDeclaresNothingAcceptsAnything() throws {
        let open = try #require(ConfigSchema(json: #"{"type":"object"}"#))
        #expect(open.problem(with: .object(["anything": .integer(1)])) == nil)
        #expect(ConfigSchema(json: "not json") == nil)
    }
}

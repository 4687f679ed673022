/// A driver's `config_schema_json`, checked by the host before `create_instance` (the header
/// promises it): an engine's `options` that break the schema are refused with the schema's
/// complaint, and the driver never sees them.
///
/// The JSON Schema keywords a configuration schema needs: `type` (one or a list), `enum`,
/// `const`, `properties`, `required`, `additionalProperties` (a boolean or a schema), `items`,
/// `minItems`/`maxItems`, `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`,
/// `minLength`/`maxLength`. Other keywords (`$ref`, `pattern`, `oneOf`, ...) are not checked:
/// the driver still validates what it reads. No Swift package here validates JSON Schema.
struct ConfigSchema: Sendable {
    let schema: JSONValue

    init?(json: String) {
        guard let schema = try? JSONCoding.decode(JSONValue.self, from: Array(json.utf8)) else { return nil }
        self.schema = schema
    }

    /// The first problem of `config` (a path like `$.timeout_ms` and what is wrong), or nil.
    func problem(with config: JSONValue) -> String? {
        Self.problem(config, schema, path: "$")
    }

    private static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("integer", .integer): true
        case ("integer", .number(let number)): number == number.rounded() && number.isFinite
        case ("number", .integer), ("number", .number): true
        default: typeName(value) == type
        }
    }

    private static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .integer(let integer): Double(integer)
        case .number(let number): number
        default: nil
        }
    }

    private static func problem(_ value: JSONValue, _ schema: JSONValue, path: String) -> String? {
        guard case .object(let rules) = schema else { return nil }  // `true`, `{}`: anything
        switch rules["type"] {
        case .string(let type) where !matches(value, type: type):
            return "\(path): expected \(type), got \(typeName(value))"
        case .array(let types):
            let names = types.compactMap { if case .string(let name) = $0 { name } else { nil } }
            if !names.isEmpty, !names.contains(where: { matches(value, type: $0) }) {
                return "\(path): expected \(names.joined(separator: " or ")), got \(typeName(value))"
            }
        default: break
        }
        if case .array(let allowed) = rules["enum"], !allowed.contains(value) {
            return "\(path): must be one of \(allowed.map(text).joined(separator: ", "))"
        }
        if let constant = rules["const"], constant != value { return "\(path): must be \(text(constant))" }
        if let actual = number(value) {
            if let bound = number(rules["minimum"]), actual < bound { return "\(path): must be at least \(text(rules["minimum"]!))" }
            if let bound = number(rules["maximum"]), actual > bound { return "\(path): must be at most \(text(rules["maximum"]!))" }
            if let bound = number(rules["exclusiveMinimum"]), actual <= bound { return "\(path): must be above \(text(rules["exclusiveMinimum"]!))" }
            if let bound = number(rules["exclusiveMaximum"]), actual >= bound { return "\(path): must be below \(text(rules["exclusiveMaximum"]!))" }
        }
        switch value {
        case .string(let string):
            let length = string.unicodeScalars.count
            if let bound = number(rules["minLength"]), Double(length) < bound { return "\(path): must be at least \(Int(bound)) characters" }
            if let bound = number(rules["maxLength"]), Double(length) > bound { return "\(path): must be at most \(Int(bound)) characters" }
        case .array(let items):
            if let bound = number(rules["minItems"]), Double(items.count) < bound { return "\(path): needs at least \(Int(bound)) items" }
            if let bound = number(rules["maxItems"]), Double(items.count) > bound { return "\(path): takes at most \(Int(bound)) items" }
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() {
                    if let problem = problem(item, itemSchema, path: "\(path)[\(index)]") { return problem }
                }
            }
        case .object(let members):
            var properties: [String: JSONValue] = [:]
            if case .object(let declared) = rules["properties"] { properties = declared }
            if case .array(let required) = rules["required"] {
                for case .string(let name) in required where members[name] == nil { return "\(path).\(name): is required" }
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let memberSchema = properties[name] {
                    if let problem = problem(member, memberSchema, path: "\(path).\(name)") { return problem }
                    continue
                }
                switch rules["additionalProperties"] {
                case .bool(false):
                    let known = properties.keys.sorted()
                    return "\(path).\(name): is not a known setting" + (known.isEmpty ? " (the driver takes none)" : " (known: \(known.joined(separator: ", ")))")
                case .some(let other):
                    if let problem = problem(member, other, path: "\(path).\(name)") { return problem }
                case nil: break
                }
            }
        default: break
        }
        return nil
    }

    private static func text(_ value: JSONValue) -> String {
        (try? JSONCoding.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }
}

/// The bodies of the routes that change an engine's state (sleep, wake, pause, weights,
/// caches), checked here so a driver only sees well-formed words and paths. What the words
/// mean is the driver's: vLLM's modes are abort, wait and keep, SGLang's abort, retract and
/// in_place; each driver refuses the ones its engine lacks.
enum StateChange {
    struct Sleep: Codable, Sendable {
        var level: Int?
        var mode: String?
        var tags: [String]?

        func validate() throws(RuntimeError) {
            if let level, !(0...2).contains(level) { throw RuntimeError.invalid("level must be 0, 1 or 2") }
            try StateChange.validate(word: mode, field: "mode")
            try StateChange.validate(tags: tags)
        }
    }

    struct Wake: Codable, Sendable { var tags: [String]? }

    struct Pause: Codable, Sendable { var mode: String? }

    /// A model of an engine that runs several (llama-server's router mode), by name.
    struct Model: Codable, Sendable { var model: String }

    struct ResetCache: Codable, Sendable {
        static let caches: Set<String> = ["prefix", "multimodal", "encoder", "all"]
        var cache: String?
    }

    struct ReloadWeights: Codable, Sendable {
        var model_path: String?
        var load_format: String?
        var weight_version: String?

        /// The path is the engine's (it may be a hub repo id), so only its shape is checked.
        func validate() throws(RuntimeError) {
            if let model_path {
                guard !model_path.isEmpty, model_path.utf8.count <= 4096, !model_path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
                else { throw RuntimeError.invalid("model_path must be 1 to 4096 bytes without control characters") }
            }
            try StateChange.validate(word: load_format, field: "load_format")
            if let weight_version {
                guard !weight_version.isEmpty, weight_version.utf8.count <= 128,
                    weight_version.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
                else { throw RuntimeError.invalid("weight_version must be 1 to 128 printable ASCII characters without spaces") }
            }
        }
    }

    /// A mode or format: [a-z0-9_]{1,32}.
    static func validate(word: String?, field: String) throws(RuntimeError) {
        guard let word else { return }
        guard (1...32).contains(word.utf8.count), word.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
        else { throw RuntimeError.invalid("\(field) \"\(word.prefix(40))\" must match [a-z0-9_]{1,32}") }
    }

    static func validate(tags: [String]?) throws(RuntimeError) {
        guard let tags else { return }
        guard tags.count <= 8 else { throw RuntimeError.invalid("at most 8 tags") }
        for tag in tags { try validate(word: tag, field: "tag") }
    }
}

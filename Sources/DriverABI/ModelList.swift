/// The answer of the `list_models` operation: an OpenAI-style model list, in which a LoRA
/// adapter is the card whose `parent` names its base model. Drivers decode their engine's list
/// with it, and the host reads adapters out of it.
public struct ModelList: Codable, Sendable, Equatable {
    public struct Card: Codable, Sendable, Equatable {
        public var id: String
        /// Where the model or adapter was loaded from.
        public var root: String?
        /// The base model, for an adapter.
        public var parent: String?

        public init(id: String, root: String? = nil, parent: String? = nil) {
            self.id = id
            self.root = root
            self.parent = parent
        }
    }

    public var data: [Card]

    public init(data: [Card]) { self.data = data }

    /// The adapters of the list (cards with a parent).
    public var adapters: [Card] { data.filter { $0.parent != nil } }
}

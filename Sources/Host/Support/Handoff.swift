import Synchronization

/// A value passed from one owner to the next through code that copies what it holds (request
/// structs, `@Sendable` closures): whoever takes it holds the only reference to its storage, so
/// a reused array is written over in place instead of copied on its first write.
public final class Handoff<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    public init(_ value: Value) { self.value = Mutex(value) }

    /// The value, once; nil after the first take.
    public func take() -> Value? {
        value.withLock { stored in
            defer { stored = nil }
            return stored
        }
    }
}

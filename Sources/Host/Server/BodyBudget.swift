import Synchronization

/// Bytes of request bodies being received, across every connection. Each body is bounded by
/// the body limit, but a thousand clients each sending most of one would hold a thousand
/// limits; the budget bounds them together, and a body that would pass it is refused (503)
/// rather than buffered.
final class BodyBudget: Sendable {
    let total: Int
    private let used = Atomic<Int>(0)

    init(total: Int) { self.total = total }

    /// Takes `bytes` from the budget; false (and nothing taken) when it would pass the total.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= total else { return false }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, successOrdering: .relaxed, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) { used.subtract(bytes, ordering: .relaxed) }
}

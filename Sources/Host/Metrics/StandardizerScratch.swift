#if canImport(Glibc)
import Glibc
#endif

/// Growable raw buffers for what the standardizer builds once per engine sample and throws
/// away (a series key, the labels a sample keeps). Arrays checked uniqueness and capacity on
/// every append, a third of the loop's time. Owned by one loop; `deallocate` when it ends.
struct ByteScratch {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    var count = 0

    init(capacity: Int = 256) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count)
        // Label names and values are short: a call to memmove per append cost more than this.
        if bytes.count <= 32 {
            for index in 0..<bytes.count { base[count + index] = bytes[index] }
        } else {
            (base + count).update(from: bytes.baseAddress!, count: bytes.count)
        }
        count += bytes.count
    }

    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    private mutating func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: max(capacity * 2, count + more))
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = max(capacity * 2, count + more)
    }

    func deallocate() { base.deallocate() }
}

/// The (output name, value) labels one sample keeps, as byte ranges.
struct LabelScratch {
    typealias Bytes = UnsafeBufferPointer<UInt8>
    private var base: UnsafeMutablePointer<(Bytes, Bytes)>
    private var capacity: Int
    private var count = 0

    init(capacity: Int = 16) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    var labels: UnsafeBufferPointer<(Bytes, Bytes)> { UnsafeBufferPointer(start: base, count: count) }

    /// Empties it, with room for `needed` labels.
    mutating func reset(capacity needed: Int) {
        count = 0
        guard needed > capacity else { return }
        base.deallocate()
        capacity = needed
        base = .allocate(capacity: needed)
    }

    /// Within the capacity `reset` made room for.
    mutating func append(_ label: (Bytes, Bytes)) {
        (base + count).initialize(to: label)
        count += 1
    }

    /// Orders the labels by name as the output writes them. Insertion sort: a sample has a
    /// handful, nearly always in order already.
    mutating func sortByName() {
        guard count > 1 else { return }
        for index in 1..<count {
            var position = index
            while position > 0, Self.precedes(base[position].0, base[position - 1].0) {
                base.swapAt(position, position - 1)
                position -= 1
            }
        }
    }

    private static func precedes(_ a: Bytes, _ b: Bytes) -> Bool {
        let common = min(a.count, b.count)
        let order = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
        return order < 0 || (order == 0 && a.count < b.count)
    }

    func deallocate() { base.deallocate() }
}

extension UnsafeMutablePointer {
    fileprivate func swapAt(_ a: Int, _ b: Int) {
        let held = self[a]
        self[a] = self[b]
        self[b] = held
    }
}

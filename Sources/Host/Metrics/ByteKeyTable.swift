#if canImport(Glibc)
import Glibc
#endif

/// Byte strings numbered in the order they were first seen: the standardizer's output series
/// and rank partitions, looked up once per engine sample.
///
/// A `Dictionary` of byte arrays allocated a key per new series, copied the key on each
/// lookup and hashed it with SipHash; here keys live in one arena, are hashed eight bytes at a
/// step and found by open addressing. Equal hashes are always confirmed by comparing bytes.
/// The seed is random per table, so an engine cannot pick label values that all collide.
struct ByteKeyTable {
    /// Entry index + 1 per slot, 0 when free; the count is a power of two.
    private var slots: [Int32]
    private var hashes: [UInt64] = []
    /// Each entry's key is `arena[offsets[i]..<offsets[i + 1]]`.
    private var offsets: [Int] = [0]
    private var arena: [UInt8] = []
    private let seed: UInt64

    var count: Int { hashes.count }

    init(capacity: Int = 64) {
        var slotCount = 16
        while slotCount < capacity * 2 { slotCount <<= 1 }
        slots = [Int32](repeating: 0, count: slotCount)
        seed = UInt64.random(in: 0...UInt64.max)
    }

    /// The number of `key`, given to it now if it is new (`inserted`).
    mutating func index(of key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        let hash = Self.hash(key, seed: seed)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[slot]) - 1
            if entry < 0 { break }
            if hashes[entry] == hash, sameKey(entry, key) { return (entry, false) }
            slot = (slot + 1) & mask
        }
        let entry = hashes.count
        slots[slot] = Int32(truncatingIfNeeded: entry + 1)
        hashes.append(hash)
        arena.append(contentsOf: key)
        offsets.append(arena.count)
        if hashes.count * 2 > slots.count { grow() }
        return (entry, true)
    }

    /// The number of `key`, nil when it was never given one.
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        let hash = Self.hash(key, seed: seed)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[slot]) - 1
            if entry < 0 { return nil }
            if hashes[entry] == hash, sameKey(entry, key) { return entry }
            slot = (slot + 1) & mask
        }
    }

    private func sameKey(_ entry: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = offsets[entry]
        guard offsets[entry + 1] - start == key.count else { return false }
        if key.isEmpty { return true }
        return arena.withUnsafeBufferPointer { bytesEqual($0.baseAddress! + start, key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count) }
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (entry, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(truncatingIfNeeded: entry + 1)
        }
    }

    /// A 64-bit hash of `bytes`: eight bytes at a time folded in with one multiply each, and
    /// splitmix64's finalizer at the end. Good enough for a table that compares keys on every
    /// match; a full mix per word made hashing a third of the lookup.
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var hash = seed ^ (UInt64(truncatingIfNeeded: bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var offset = 0
        while offset + 8 <= bytes.count {
            hash = (hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            hash ^= hash >> 29
            offset += 8
        }
        if offset < bytes.count {
            var tail: UInt64 = 0
            for index in offset..<bytes.count { tail |= UInt64(bytes[index]) << UInt64((index - offset) * 8) }
            hash = (hash ^ tail) &* 0xBF58_476D_1CE4_E5B9
        }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}

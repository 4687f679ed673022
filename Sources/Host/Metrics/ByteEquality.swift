#if canImport(Glibc)
import Glibc
#endif

/// Whether `count` bytes at `a` and `b` are equal. The strings the metrics hot path compares
/// (label names, metric names, predicted repeats of the previous sample's) are mostly under
/// 32 bytes, where a call to memcmp cost more than the comparison: those are compared as
/// overlapping 8-byte words.
@inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    let a = UnsafeRawPointer(a), b = UnsafeRawPointer(b)
    func word(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 { pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
    switch count {
    case 0: return true
    case 1..<8:
        for index in 0..<count where a.load(fromByteOffset: index, as: UInt8.self) != b.load(fromByteOffset: index, as: UInt8.self) {
            return false
        }
        return true
    case 8...16: return word(a, 0) == word(b, 0) && word(a, count - 8) == word(b, count - 8)
    case 17...32:
        return word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, count - 16) == word(b, count - 16)
            && word(a, count - 8) == word(b, count - 8)
    default: return memcmp(a, b, count) == 0
    }
}

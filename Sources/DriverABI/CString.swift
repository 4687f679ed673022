/// Copies between Swift strings and the fixed-size C character arrays of the ABI.
public enum CString {
    /// Writes `text` into a fixed `char[N]` (imported as a tuple), truncated at a UTF-8
    /// character boundary so the result stays valid, always NUL-terminated.
    public static func copy<Tuple>(_ text: String, into storage: inout Tuple) {
        withUnsafeMutableBytes(of: &storage) { copy(text, into: $0) }
    }

    /// Writes `text` into `buffer` (at most `buffer.count - 1` bytes and a NUL), cut at a
    /// UTF-8 character boundary.
    public static func copy(_ text: String, into buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        let utf8 = Array(text.utf8)
        var end = min(utf8.count, buffer.count - 1)
        // Cutting inside a multi-byte character: back up to where that character starts.
        if end < utf8.count {
            while end > 0, utf8[end] & 0xC0 == 0x80 { end -= 1 }
        }
        buffer.copyBytes(from: utf8[..<end])
        buffer[end] = 0
    }

    /// Reads a fixed `char[N]` up to its first NUL (invalid UTF-8 is repaired).
    public static func read<Tuple>(_ storage: Tuple) -> String {
        withUnsafeBytes(of: storage) { read($0) }
    }

    /// Reads `bytes` up to the first NUL (invalid UTF-8 is repaired).
    public static func read(_ bytes: UnsafeRawBufferPointer) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Reads an optional C string pointer.
    public static func read(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

public extension StringProtocol {
    /// Without leading and trailing spaces, tabs, CR and LF (no Foundation needed). Works on
    /// the UTF-8 bytes: these are all ASCII, and a UTF-8 continuation byte is never one of
    /// them. (Reversing `Character`s twice was a visible cost on every request's headers.)
    func trimmingWhitespace() -> String {
        let bytes = utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }) else { return "" }
        var end = first
        var index = first
        while index != bytes.endIndex {
            let next = bytes.index(after: index)
            if !isSpace(bytes[index]) { end = next }
            index = next
        }
        return String(decoding: bytes[first..<end], as: UTF8.self)
    }
}

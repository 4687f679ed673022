public extension StringProtocol {
    /// Without leading and trailing spaces, tabs, CR and LF (no Foundation needed).
    func trimmingWhitespace() -> String {
        func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}

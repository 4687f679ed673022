/// The one validator for names that reach engines and, later, file systems.
public enum ResourceName {
    /// LoRA adapter and model names. Accepts every valid Kubernetes object name (DNS subdomain:
    /// lower-case alphanumerics, `-` and `.`), plus the upper-case letters and `_` that AIBrix
    /// names already use; refuses anything that could act as a path: `/`, `\`, a leading `.`,
    /// `..` anywhere, whitespace and control characters. At most 253 bytes.
    public static func adapterNameProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { return "must not be empty" }
        guard bytes.count <= 253 else { return "is longer than 253 characters" }
        func isAlnum(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        guard isAlnum(bytes.first!), isAlnum(bytes.last!) else { return "must start and end with a letter or digit" }
        guard bytes.allSatisfy({ isAlnum($0) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F }) else {
            return "may contain only letters, digits, '-', '.' and '_'"
        }
        // Over the bytes: String.contains(_:) searches by Characters, a visible cost per call.
        guard !zip(bytes, bytes.dropFirst()).contains(where: { $0 == 0x2E && $1 == 0x2E }) else { return "must not contain '..'" }
        return nil
    }

    /// Engine and driver names: `[a-z0-9][a-z0-9_-]{0,62}`.
    public static func isValidEngineName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLowerAlnum(_ byte: UInt8) -> Bool { (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) }
        return isLowerAlnum(first) && bytes.allSatisfy { isLowerAlnum($0) || $0 == 0x5F || $0 == 0x2D }
    }
}

import Crypto

#if canImport(Glibc)
import Glibc
#endif

/// Checks a downloaded file against what its source published.
enum FileDigest {
    /// Nil when `path` matches `expected` (and `size`, when known); otherwise what is wrong.
    /// The sha256 of `text`, in hex.
    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Array(text.utf8))) }

    static func mismatch(path: String, size: Int64?, expected: ExpectedDigest?, name: String) throws(RuntimeError) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StagingDirectory.error(errno, "stat", path) }
        if let size, Int64(info.st_size) != size {
            return "\(name) has \(info.st_size) bytes, the source published \(size)"
        }
        guard let expected else { return nil }
        let actual: String
        switch expected {
        case .sha256:
            var hash = SHA256()
            try read(path) { hash.update(bufferPointer: $0) }
            actual = hex(hash.finalize())
        case .gitBlobSHA1:
            var hash = Insecure.SHA1()
            hash.update(data: Array("blob \(info.st_size)\u{0}".utf8))
            try read(path) { hash.update(bufferPointer: $0) }
            actual = hex(hash.finalize())
        case .md5:
            var hash = Insecure.MD5()
            try read(path) { hash.update(bufferPointer: $0) }
            actual = hex(hash.finalize())
        }
        let wanted: String
        switch expected {
        case .sha256(let value), .gitBlobSHA1(let value), .md5(let value): wanted = value
        }
        return actual == wanted ? nil : "\(name) does not match its \(expected) (got \(actual))"
    }

    /// Reads `path` in 1 MiB pieces with the kernel told the reads are sequential (a larger
    /// read-ahead). The pages are left cached on purpose: the engine reads the file next.
    private static func read(_ path: String, _ body: (UnsafeRawBufferPointer) -> Void) throws(RuntimeError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagingDirectory.error(errno, "open", path) }
        defer { close(descriptor) }
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw StagingDirectory.error(errno, "read", path)
            }
            if count == 0 { break }
            body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest { out += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }
}

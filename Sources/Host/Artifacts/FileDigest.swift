import Crypto

#if canImport(Glibc)
import Glibc
#endif

/// The digest of a file's first `bytes` bytes, kept up to date while the file is written, so
/// verification reads back only what was not hashed on the way in (nothing, for a file
/// received in order).
struct RunningDigest {
    private enum Hasher {
        case sha256(SHA256)
        case sha1(Insecure.SHA1)
        case md5(Insecure.MD5)
    }

    private var hasher: Hasher
    /// Bytes hashed, all from offset 0 on.
    private(set) var bytes: Int64 = 0

    /// Nil when there is nothing to check, or the digest needs a size the source did not give.
    init?(for expected: ExpectedDigest?, size: Int64?) {
        switch expected {
        case nil: return nil
        case .sha256: hasher = .sha256(SHA256())
        case .md5: hasher = .md5(Insecure.MD5())
        case .gitBlobSHA1:
            // The git header holds the size, so the hash cannot start before the size is known.
            guard let size else { return nil }
            var sha1 = Insecure.SHA1()
            sha1.update(data: Array("blob \(size)\u{0}".utf8))
            hasher = .sha1(sha1)
        }
    }

    mutating func update(_ buffer: UnsafeRawBufferPointer) {
        switch hasher {
        case .sha256(var hash):
            hash.update(bufferPointer: buffer)
            hasher = .sha256(hash)
        case .sha1(var hash):
            hash.update(bufferPointer: buffer)
            hasher = .sha1(hash)
        case .md5(var hash):
            hash.update(bufferPointer: buffer)
            hasher = .md5(hash)
        }
        bytes += Int64(buffer.count)
    }

    /// Hashes `path` from `bytes` up to `end` (or its end), reading it in 1 MiB pieces.
    mutating func read(_ path: String, upTo end: Int64? = nil) throws(RuntimeError) {
        try FileDigest.read(path, from: bytes, upTo: end) { update($0) }
    }

    func hex() -> String {
        switch hasher {
        case .sha256(let hash): FileDigest.hex(hash.finalize())
        case .sha1(let hash): FileDigest.hex(hash.finalize())
        case .md5(let hash): FileDigest.hex(hash.finalize())
        }
    }
}

/// Checks a downloaded file against what its source published.
enum FileDigest {
    /// The sha256 of `text`, in hex.
    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Array(text.utf8))) }

    /// Nil when `path` matches `expected` (and `size`, when known); otherwise what is wrong.
    /// `running` is what was hashed while the file was written; the rest is read from disk.
    static func mismatch(
        path: String, size: Int64?, expected: ExpectedDigest?, name: String, running: RunningDigest? = nil
    ) throws(RuntimeError) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StagingDirectory.error(errno, "stat", path) }
        if let size, Int64(info.st_size) != size {
            return "\(name) has \(info.st_size) bytes, the source published \(size)"
        }
        guard let expected else { return nil }
        let fileSize = Int64(info.st_size)
        guard var digest = running.flatMap({ $0.bytes <= fileSize ? $0 : nil }) ?? RunningDigest(for: expected, size: fileSize) else {
            return nil
        }
        try digest.read(path)
        let actual = digest.hex()
        let wanted: String
        switch expected {
        case .sha256(let value), .gitBlobSHA1(let value), .md5(let value): wanted = value
        }
        return actual == wanted ? nil : "\(name) does not match its \(expected) (got \(actual))"
    }

    /// Reads `path` from `offset` to `end` (or its end) in 1 MiB pieces, with the kernel told the
    /// reads are sequential (a larger read-ahead). The pages are left cached on purpose: the
    /// engine reads the file next.
    static func read(
        _ path: String, from offset: Int64, upTo end: Int64?, _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(RuntimeError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagingDirectory.error(errno, "open", path) }
        defer { close(descriptor) }
        _ = posix_fadvise(descriptor, off_t(offset), 0, POSIX_FADV_SEQUENTIAL)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var position = offset
        while end.map({ position < $0 }) ?? true {
            let wanted = end.map { min(buffer.count, Int($0 - position)) } ?? buffer.count
            let count = pread(descriptor, buffer.baseAddress, wanted, off_t(position))
            if count < 0 {
                if errno == EINTR { continue }
                throw StagingDirectory.error(errno, "read", path)
            }
            if count == 0 { break }
            body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            position += Int64(count)
        }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest { out += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }
}

import PluginABI

/// Collects the bytes the other side writes through an `ert_sink`, up to a limit.
///
/// Used on one thread at a time (the thread of the call it was handed to), as the header's
/// sink rules require.
public final class ByteSink {
    public private(set) var bytes: [UInt8] = []
    /// True once a write would have passed the limit; later writes are refused.
    public private(set) var overflowed = false
    public let limit: Int

    public init(limit: Int = .max) { self.limit = limit }

    /// Offers this sink as a C `ert_sink` for the duration of `body`.
    public func withCSink<R>(_ body: (UnsafePointer<ert_sink>) throws -> R) rethrows -> R {
        var sink = ert_sink(
            struct_size: UInt32(MemoryLayout<ert_sink>.size),
            context: Unmanaged.passUnretained(self).toOpaque(),
            write: { context, data, length in
                guard let context else { return false }
                return Unmanaged<ByteSink>.fromOpaque(context).takeUnretainedValue().append(data, length)
            })
        return try withUnsafePointer(to: &sink) { try body($0) }
    }

    private func append(_ data: UnsafePointer<CChar>?, _ length: Int) -> Bool {
        guard !overflowed else { return false }
        guard length > 0 else { return true }
        guard let data else { return false }
        guard bytes.count <= limit - length else {
            overflowed = true
            return false
        }
        data.withMemoryRebound(to: UInt8.self, capacity: length) {
            bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
        return true
    }
}

extension UnsafePointer where Pointee == ert_sink {
    /// Writes `bytes` through the sink; false when the other side refused them.
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        guard let write = pointee.write else { return false }
        return bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { write(pointee.context, $0.baseAddress, $0.count) }
        }
    }
}

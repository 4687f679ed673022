import PluginABI

/// Collects the bytes a driver writes through an `ert_sink`, up to a limit.
///
/// Used on one thread at a time (the thread of the driver call it was handed to).
final class ByteSink {
    private(set) var bytes: [UInt8] = []
    /// True once a write would have passed the limit; later writes are refused.
    private(set) var overflowed = false
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Offers this sink as a C `ert_sink` for the duration of `body`.
    func withCSink<R>(_ body: (UnsafePointer<ert_sink>) throws -> R) rethrows -> R {
        var sink = ert_sink(
            struct_size: UInt32(MemoryLayout<ert_sink>.size),
            context: Unmanaged.passUnretained(self).toOpaque(),
            write: { context, data, length in
                guard let context else { return false }
                let sink = Unmanaged<ByteSink>.fromOpaque(context).takeUnretainedValue()
                return sink.append(data, length)
            })
        return try withUnsafePointer(to: &sink) { try body($0) }
    }

    private func append(_ data: UnsafePointer<CChar>?, _ length: Int) -> Bool {
        guard !overflowed else { return false }
        guard length > 0 else { return true }
        guard let data else { return false }
        guard bytes.count + length <= limit else {
            overflowed = true
            return false
        }
        data.withMemoryRebound(to: UInt8.self, capacity: length) {
            bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
        return true
    }
}

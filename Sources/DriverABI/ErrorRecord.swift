import PluginABI

/// `ert_error` as both sides use it: a caller-owned record the callee fills. The writer never
/// writes past the caller's `struct_size` (an older caller's record may be smaller than this
/// side's), and the reader takes whatever was written.
public enum ErrorRecord {
    /// A zeroed record with this side's size, ready to hand to the other side.
    public static func empty() -> ert_error {
        var error = ert_error()
        error.struct_size = UInt32(MemoryLayout<ert_error>.size)
        return error
    }

    /// Fills the caller's record, within its declared size: status and upstream status when
    /// they fit, then as much of the message as fits (cut at a UTF-8 boundary, NUL-terminated).
    public static func write(
        _ status: ert_status, upstreamHTTPStatus: Int32, message: String, into record: UnsafeMutablePointer<ert_error>?
    ) {
        guard let record else { return }
        let raw = UnsafeMutableRawPointer(record)
        let size = GrowableStruct.declaredSize(at: raw)
        let statusOffset = MemoryLayout<ert_error>.offset(of: \.status)!
        let upstreamOffset = MemoryLayout<ert_error>.offset(of: \.upstream_http_status)!
        let messageOffset = MemoryLayout<ert_error>.offset(of: \.message)!
        if size >= statusOffset + 4 { raw.storeBytes(of: status, toByteOffset: statusOffset, as: ert_status.self) }
        if size >= upstreamOffset + 4 { raw.storeBytes(of: upstreamHTTPStatus, toByteOffset: upstreamOffset, as: Int32.self) }
        let capacity = min(size, MemoryLayout<ert_error>.size) - messageOffset
        if capacity > 0 {
            CString.copy(message, into: UnsafeMutableRawBufferPointer(start: raw + messageOffset, count: capacity))
        }
    }

    /// What the callee wrote: status as returned, upstream status (nil when 0) and message.
    public static func read(_ record: ert_error) -> (upstreamHTTPStatus: Int?, message: String) {
        (record.upstream_http_status > 0 ? Int(record.upstream_http_status) : nil, CString.read(record.message))
    }
}

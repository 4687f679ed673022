import Foundation

/// kvcached's segment as an engine creates it when its KV cache is set up: 24 bytes of
/// int64 `total_size`, `used_size`, `prealloc_size` (kvcached csrc/inc/mem_info_tracker.hpp:
/// 22-36, written `(total, 0, 0)` at start), unlinked on an orderly exit
/// (mem_info_tracker.hpp:221-225). After SIGKILL it stays, with stale numbers, as kvcached's does.
struct KVSegmentFile {
    let path: String
    /// What a small engine reports as its whole virtual KV size.
    static let initialTotal: Int64 = 1 << 30

    init(name: String, directory: String = "/dev/shm") throws {
        guard !name.isEmpty, !name.contains("/") else { throw EngineCommandLine.Refusal(description: "bad kvcached segment name \(name)") }
        path = directory + "/" + name
        var fields: [Int64] = [Self.initialTotal, 0, 0]
        let data = Data(bytes: &fields, count: 24)
        try data.write(to: URL(fileURLWithPath: path))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

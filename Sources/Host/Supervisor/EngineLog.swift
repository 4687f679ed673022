import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One engine's output: the file the engine appends to (it outlives the sidecar, so an engine
/// never writes into a closed pipe), followed by the supervisor, which logs each new line with
/// the model's name and keeps a bounded tail for the API. When the file passes `maximumBytes`
/// it is copied to `<file>.1` and cut to zero (the engine appends, so it writes on at the new
/// end): one engine's chatter never fills the disk.
public final class EngineLog: Sendable {
    public let path: String
    let maximumBytes: Int
    private let logger: Logger
    private let state = Mutex(State())
    static let tailLines = 50
    static let tailLineBytes = 1024

    private struct State {
        var offset: Int = 0
        var partial: [UInt8] = []
        var tail: [String] = []
    }

    init(path: String, maximumBytes: Int, logger: Logger, fromEnd: Bool) {
        self.path = path
        self.maximumBytes = maximumBytes
        self.logger = logger
        if fromEnd {
            var info = stat()
            if stat(path, &info) == 0 { state.withLock { $0.offset = Int(info.st_size) } }
        }
    }

    /// The last lines the engine wrote (at most `tailLines`, each cut at `tailLineBytes`).
    public var tail: [String] { state.withLock { $0.tail } }

    /// Reads what the engine wrote since the last call, logs it line by line, rotates the
    /// file when it grew too large. Called from the supervisor's tick.
    func follow() {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return }
        let size = Int(info.st_size)
        var lines: [String] = []
        state.withLock { state in
            // Cut by rotation (or by somebody else): start again from the top.
            if size < state.offset { state.offset = 0 }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            var budget = 4 << 20  // per tick, so a flood cannot stall the supervisor
            while state.offset < size, budget > 0 {
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(state.offset)) }
                guard count > 0 else { break }
                state.offset += count
                budget -= count
                for byte in buffer[0..<count] {
                    if byte == UInt8(ascii: "\n") {
                        lines.append(String(decoding: state.partial.prefix(Self.tailLineBytes), as: UTF8.self))
                        state.partial.removeAll(keepingCapacity: true)
                    } else if state.partial.count < Self.tailLineBytes * 4 {
                        state.partial.append(byte)
                    }
                }
            }
            state.tail.append(contentsOf: lines.suffix(Self.tailLines))
            if state.tail.count > Self.tailLines { state.tail.removeFirst(state.tail.count - Self.tailLines) }
        }
        for line in lines { logger.info("\(line)") }
        if size > maximumBytes { rotate() }
    }

    private func rotate() {
        let previous = path + ".1"
        unlink(previous)
        // Copy, then cut: the engine's descriptor stays on `path`.
        let source = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard source >= 0 else { return }
        defer { close(source) }
        let target = open(previous, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if target >= 0 {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                _ = buffer.withUnsafeBytes { write(target, $0.baseAddress, count) }
            }
            close(target)
        }
        truncate(path, 0)
        state.withLock { $0.offset = 0 }
        logger.notice("engine log rotated", metadata: ["log": "\(path)", "previous": "\(previous)"])
    }
}

import DriverABI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the sidecar sends an isolated driver's host. Each message is a frame's header; the
/// frame's body carries the bytes named in the comment (a request, an HTTP answer's body).
enum HostToDriverHost: Sendable {
    case create(call: UInt64, instance: UInt64, configuration: InstanceConfiguration)
    /// Body: the request JSON. The deadline is `CLOCK_MONOTONIC` nanoseconds, one clock for
    /// both processes.
    case invoke(call: UInt64, instance: UInt64, operation: DriverOperation, deadlineNanoseconds: UInt64)
    case invokeExtension(
        call: UInt64, instance: UInt64, name: String, arguments: [ExtensionOperation.Argument], deadlineNanoseconds: UInt64)
    /// Body: the launch spec JSON.
    case planLaunch(call: UInt64)
    case destroy(call: UInt64, instance: UInt64)
    /// Body: the answer's body.
    case httpAnswer(exchange: UInt64, status: Int, contentType: String, error: RuntimeError?)
}

/// What an isolated driver's host sends the sidecar.
enum DriverHostToHost: Sendable {
    /// The first message: the driver's manifest, or why it did not load.
    case hello(manifest: DriverManifest?, failure: String?)
    /// Body: what the driver wrote (JSON, Prometheus text or a launch plan). `value` is an
    /// extension operation's typed result.
    case answer(call: UInt64, error: RuntimeError?, value: JSONValue?)
    case log(level: String, message: String, metadata: [String: String])
    /// A driver's `http_request`, performed by the sidecar's client. `call` is the call whose
    /// deadline and cancellation bound it (nil for an instance's own context). Body: the
    /// request body.
    case http(
        exchange: UInt64, call: UInt64?, method: String, url: String, headers: [String], timeoutMilliseconds: Int64,
        idempotent: Bool, maxResponseBytes: Int)
    case progress(call: UInt64, done: UInt64, total: UInt64, message: String?)
}

/// One end of the socket pair between the sidecar and a driver host, carrying frames:
/// a header length and a body length (4 bytes each, little-endian), the header (`WireMessage`),
/// the body.
///
/// Sends are whole frames under a lock, from any thread; receives come from one reader thread.
/// The descriptor is closed with the channel.
final class WireChannel: Sendable {
    let descriptor: Int32
    private let sendLock = Mutex(())
    private let receiveBuffer = Mutex(ReceiveBuffer())

    /// Bytes read past the last frame.
    private struct ReceiveBuffer {
        var bytes: [UInt8] = []
        var start = 0
        /// Where small reads land, allocated once.
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
    }

    static let maximumHeaderBytes = 4 << 20
    static let maximumBodyBytes = 64 << 20

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// A connected pair (close-on-exec both); the second end is for the child.
    static func pair() -> (parent: Int32, child: Int32)? {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else { return nil }
        return (ends[0], ends[1])
    }

    /// False when the other end is gone.
    @discardableResult
    func send(_ message: some WireMessage, body: [UInt8] = []) -> Bool {
        var writer = WireWriter()
        writer.bytes.reserveCapacity(128 + body.count)
        writer.u64(0)  // the lengths, filled in below
        message.write(to: &writer)
        let headerLength = writer.bytes.count - 8
        writer.bytes.append(contentsOf: body)
        // Patched in the writer's own array: a second reference to it would copy the frame.
        writer.bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(headerLength).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(body.count).littleEndian, toByteOffset: 4, as: UInt32.self)
        }
        let frame = writer.bytes
        return sendLock.withLock { _ in
            frame.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return false }
                    offset += written
                }
                return true
            }
        }
    }

    /// The next frame, or nil at end of stream or on a malformed frame. One reader at a time.
    func receive<Message: WireMessage>(_ type: Message.Type) -> (Message, [UInt8])? {
        let frame = receiveBuffer.withLock { buffer -> (header: [UInt8], body: [UInt8])? in
            guard let lengths = read(8, into: &buffer) else { return nil }
            let headerLength = Int(lengths.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) }.littleEndian)
            let bodyLength = Int(lengths.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }.littleEndian)
            guard headerLength <= Self.maximumHeaderBytes, bodyLength <= Self.maximumBodyBytes,
                let header = read(headerLength, into: &buffer), let body = read(bodyLength, into: &buffer)
            else { return nil }
            return (header, body)
        }
        guard let frame else { return nil }
        var reader = WireReader(frame.header)
        guard let message = try? Message.read(from: &reader), reader.isAtEnd else { return nil }
        return (message, frame.body)
    }

    /// Waits at most `timeout` for data to read; false when none came.
    func waitReadable(timeout: Duration) -> Bool {
        if receiveBuffer.withLock({ $0.start < $0.bytes.count }) { return true }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        while true {
            let ready = poll(&entry, 1, milliseconds)
            if ready < 0, errno == EINTR { continue }
            return ready > 0
        }
    }

    /// `count` bytes: first what is buffered, then straight from the socket. Reads ask for at
    /// least a chunk, so a small frame usually arrives whole in one call; the surplus stays
    /// buffered for the next frame.
    private func read(_ count: Int, into buffer: inout ReceiveBuffer) -> [UInt8]? {
        guard count > 0 else { return [] }
        var complete = true
        let result = [UInt8](unsafeUninitializedCapacity: count) { target, initialized in
            let base = target.baseAddress!
            let buffered = min(count, buffer.bytes.count - buffer.start)
            if buffered > 0 {
                buffer.bytes.withUnsafeBufferPointer { base.initialize(from: $0.baseAddress! + buffer.start, count: buffered) }
                buffer.start += buffered
                initialized = buffered
            }
            if buffer.start == buffer.bytes.count {
                buffer.bytes.removeAll(keepingCapacity: true)
                buffer.start = 0
            }
            while initialized < count {
                let needed = count - initialized
                // A large body is read in place: nothing past it is read, nothing copied.
                let inPlace = needed >= buffer.chunk.count
                let got =
                    inPlace
                    ? recv(descriptor, base + initialized, needed, 0)
                    : buffer.chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                if got < 0, errno == EINTR { continue }
                guard got > 0 else {
                    complete = false
                    return
                }
                let used = inPlace ? got : min(got, needed)
                if !inPlace {
                    buffer.chunk.withUnsafeBufferPointer { chunk in
                        (base + initialized).initialize(from: chunk.baseAddress!, count: used)
                        buffer.bytes.append(contentsOf: chunk[used..<got])
                    }
                }
                initialized += used
            }
        }
        return complete ? result : nil
    }
}

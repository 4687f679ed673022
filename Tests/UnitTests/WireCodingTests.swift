import Dispatch
import DriverABI
import Glibc
import Testing

@testable import Host

/// The frames between the sidecar and an isolated driver's host, over a real socket pair:
/// every message survives the trip, bodies of any size arrive whole and in order, and a
/// header that does not decode ends the channel instead of being guessed at.
@Suite struct WireCodingTests {
    static func bytes(_ message: some WireMessage) -> [UInt8] {
        var writer = WireWriter()
        message.write(to: &writer)
        return writer.bytes
    }

    static let error = RuntimeError(.upstream, "engine said no", upstreamHTTPStatus: 409)

    static let toDriverHost: [HostToDriverHost] = [
        .create(call: 1, instance: 2, configuration: InstanceConfiguration(
            name: "engine-a", engineKind: "vllm", endpoint: "http://127.0.0.1:8000", apiKey: "k", engineVersion: "0.33.0",
            configJSON: #"{"timeout_ms":5}"#)),
        .invoke(call: UInt64.max, instance: 7, operation: .loadLoRAAdapter, deadlineNanoseconds: 123_456_789),
        .invokeExtension(
            call: 3, instance: 7, name: "vendor.op", arguments: [.int64(-5), .double(2.5), .string("é\u{0}x"), .bool(true)],
            deadlineNanoseconds: 9),
        .planLaunch(call: 4),
        .destroy(call: 5, instance: 7),
        .httpAnswer(exchange: 6, status: 200, contentType: "application/json", error: nil),
        .httpAnswer(exchange: 6, status: 0, contentType: "", error: error),
    ]

    static let toHost: [DriverHostToHost] = [
        .hello(manifest: nil, failure: "no ert_driver_entry"),
        .answer(call: 1, error: nil, value: nil),
        .answer(call: 2, error: error, value: nil),
        .answer(call: 3, error: nil, value: .object(["result": .array([.number(1), .string("two"), .null])])),
        .log(level: "warning", message: "line\nbreak", metadata: ["a": "1", "instance": "engine-a"]),
        .http(
            exchange: 8, call: nil, method: "POST", url: "http://127.0.0.1:8000/v1/load_lora_adapter",
            headers: ["Content-Type: application/json", "Authorization: Bearer x"], timeoutMilliseconds: 30_000, idempotent: false,
            maxResponseBytes: 1 << 20),
        .http(exchange: 9, call: 4, method: "GET", url: "http://h/", headers: [], timeoutMilliseconds: 1, idempotent: true, maxResponseBytes: 0),
        .progress(call: 5, done: 10, total: 0, message: nil),
        .progress(call: 5, done: 10, total: 20, message: "half"),
    ]

    final class Sent: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var result: Bool?
        func wait() -> Bool? {
            done.wait()
            return result
        }
    }

    static func sendAside(_ message: some WireMessage, body: [UInt8], on channel: WireChannel) -> Sent {
        let sent = Sent()
        DispatchQueue.global().async {
            sent.result = channel.send(message, body: body)
            sent.done.signal()
        }
        return sent
    }

    @Test func everyMessageCrossesWithItsBody() throws {
        let ends = try #require(WireChannel.pair())
        let sender = WireChannel(descriptor: ends.parent)
        let receiver = WireChannel(descriptor: ends.child)
        // Bodies from empty to past the reader's 64 KiB chunk, so both read paths and the
        // surplus carried from one frame to the next are taken.
        let sizes = [0, 1, 100, 65_535, 65_536, 300_000]
        for (index, message) in Self.toDriverHost.enumerated() {
            let body = (0..<sizes[index % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            // Sent from another thread: a body larger than the socket's buffer blocks its
            // sender until it is read.
            let sent = Self.sendAside(message, body: body, on: sender)
            let (received, receivedBody) = try #require(receiver.receive(HostToDriverHost.self))
            #expect(sent.wait() == true)
            #expect(Self.bytes(received) == Self.bytes(message), "\(message)")
            #expect(receivedBody == body)
        }
        for (index, message) in Self.toHost.enumerated() {
            let body = (0..<sizes[index % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &+ index) }
            let sent = Self.sendAside(message, body: body, on: receiver)
            let (received, receivedBody) = try #require(sender.receive(DriverHostToHost.self))
            #expect(sent.wait() == true)
            #expect(Self.bytes(received) == Self.bytes(message), "\(message)")
            #expect(receivedBody == body)
        }
    }

    @Test func framesSentBackToBackArriveInOrder() throws {
        let ends = try #require(WireChannel.pair())
        let sender = WireChannel(descriptor: ends.parent)
        let receiver = WireChannel(descriptor: ends.child)
        // Small frames written before any read: one recv takes several of them at once.
        for call in 1...50 { sender.send(HostToDriverHost.planLaunch(call: UInt64(call)), body: Array(repeating: UInt8(call), count: call)) }
        for call in 1...50 {
            let (message, body) = try #require(receiver.receive(HostToDriverHost.self))
            guard case .planLaunch(let got) = message else { Issue.record("\(message)"); return }
            #expect(got == UInt64(call))
            #expect(body == Array(repeating: UInt8(call), count: call))
        }
    }

    @Test func aHeaderThatDoesNotDecodeEndsTheChannel() throws {
        var invoke = WireWriter()
        HostToDriverHost.invoke(call: 1, instance: 1, operation: .health, deadlineNanoseconds: 0).write(to: &invoke)
        var unknownOperation = WireWriter()
        unknownOperation.u8(1)
        unknownOperation.u64(1)
        unknownOperation.u64(1)
        unknownOperation.string("no_such_operation")
        unknownOperation.u64(0)
        let cases: [(String, [UInt8])] = [
            ("unknown message", [99]),
            ("truncated", Array(invoke.bytes.dropLast(3))),
            ("trailing bytes", invoke.bytes + [0]),
            ("unknown operation", unknownOperation.bytes),
            ("a string longer than the header", [5] + Array(repeating: 0, count: 16) + [0xff, 0xff, 0xff, 0x7f]),
        ]
        for (what, header) in cases {
            let ends = try #require(WireChannel.pair())
            let receiver = WireChannel(descriptor: ends.child)
            var frame = [UInt8]()
            withUnsafeBytes(of: UInt32(header.count).littleEndian) { frame.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(0).littleEndian) { frame.append(contentsOf: $0) }
            frame += header
            #expect(Glibc.send(ends.parent, frame, frame.count, 0) == frame.count)
            #expect(receiver.receive(HostToDriverHost.self) == nil, "\(what)")
            close(ends.parent)
        }
    }

    @Test func theEndOfTheStreamInsideAFrameIsTheEnd() throws {
        let ends = try #require(WireChannel.pair())
        let receiver = WireChannel(descriptor: ends.child)
        // A frame that announces a 1 MiB body and stops after 10 bytes of it.
        var frame = [UInt8]()
        let header = Self.bytes(HostToDriverHost.planLaunch(call: 1))
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(1 << 20).littleEndian) { frame.append(contentsOf: $0) }
        frame += header + Array(repeating: 7, count: 10)
        #expect(Glibc.send(ends.parent, frame, frame.count, 0) == frame.count)
        close(ends.parent)
        #expect(receiver.receive(HostToDriverHost.self) == nil)
    }
}

import Logging
import NIOCore
import NIOHTTPTypes

/// Keeps one connection within the limits: its request must arrive within the request timeout
/// of its first byte (408 and close otherwise), and the registry always knows whether the
/// connection holds a complete request (never closed to make room, drained on shutdown) or not.
///
/// Two handlers share this state: `BytesSide` first in the pipeline, which sees a request's
/// first bytes before the HTTP decoder has a head (a client sending its head a byte a second
/// sends no HTTP part at all), and `MessageSide` after the decoder, which sees where requests
/// and responses end. Both run on the connection's event loop.
final class ConnectionGuard {
    private let registry: ConnectionRegistry
    private let requestTimeout: TimeAmount
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = ConnectionRegistry.Phase.idle
    /// The request being received has its head decoded (a route may be reading its body).
    private var headDecoded = false
    /// A response to the request being received has begun (a route answered before the body
    /// ended, like a 401): a timeout then closes without writing a second answer.
    private var answered = false
    /// That response has ended; the request's end marks the connection idle, not busy.
    private var answerEnded = false
    /// Requests that arrived whole while an earlier one was still answered (pipelining): the
    /// connection stays busy until their answers have left too.
    private var pipelined = 0
    private var timer: Scheduled<Void>?

    init(registry: ConnectionRegistry, requestTimeout: Duration, logger: Logger) {
        self.registry = registry
        self.requestTimeout = TimeAmount(requestTimeout)
        self.logger = logger
    }

    var bytesHandler: any ChannelHandler & RemovableChannelHandler { BytesSide(self) }
    var messageHandler: any ChannelHandler & RemovableChannelHandler { MessageSide(self) }

    // MARK: Events

    private func attached(_ context: ChannelHandlerContext) {
        self.context = context
        registry.opened(context.channel)
    }

    private func detached() {
        timer?.cancel()
        timer = nil
        if let channel = context?.channel { registry.closed(channel) }
        context = nil
    }

    private func bytesArrived() {
        guard phase == .idle, let context else { return }
        phase = .receiving
        headDecoded = false
        answered = false
        answerEnded = false
        _ = registry.enter(.receiving, context.channel)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: requestTimeout) { [self] in requestTimedOut() }
    }

    private func requestHeadDecoded() { headDecoded = true }

    private func requestEnded() {
        timer?.cancel()
        timer = nil
        if phase == .busy { pipelined += 1 }
        guard phase == .receiving, let context else { return }
        phase = answerEnded ? .idle : .busy
        if registry.enter(phase, context.channel) { context.close(promise: nil) }
    }

    private func responseBegan() {
        if phase == .receiving { answered = true }
    }

    private func responseEnded() {
        guard let context else { return }
        switch phase {
        case .busy where pipelined > 0:
            pipelined -= 1
        case .busy:
            phase = .idle
            if registry.enter(.idle, context.channel) { context.close(promise: nil) }
        case .receiving:
            answerEnded = true
        case .idle:
            break
        }
    }

    private func requestTimedOut() {
        timer = nil
        guard phase == .receiving, let context else { return }
        logger.info(
            "request not received in time; closing the connection",
            metadata: ["remote": "\(context.remoteAddress?.description ?? "?")", "head_received": "\(headDecoded)"])
        if answered {
            context.close(promise: nil)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeBytes(Self.timeoutAnswer(seconds: requestTimeout.nanoseconds / 1_000_000_000))
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func shouldQuiesce(_ context: ChannelHandlerContext, event: Any) {
        // A connection without a complete request closes now: a client sending its body
        // slowly must not hold shutdown. A busy one is left to Hummingbird, which closes it
        // after its response.
        if phase == .busy {
            context.fireUserInboundEventTriggered(event)
        } else {
            context.close(promise: nil)
        }
    }

    /// The raw 408: the HTTP encoder sits above the bytes side, and the request may not even
    /// have a head yet.
    static func timeoutAnswer(seconds: Int64) -> [UInt8] {
        let envelope = ErrorEnvelope(
            message: "the request did not arrive within \(seconds) s (ENGINE_RUNTIME_REQUEST_TIMEOUT)",
            type: ErrorKind.requestTimeout.envelopeType, code: 408)
        let body = (try? JSONCoding.encode(envelope)) ?? []
        let head = "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    // MARK: Handlers

    final class BytesSide: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private let owner: ConnectionGuard
        init(_ owner: ConnectionGuard) { self.owner = owner }

        func handlerAdded(context: ChannelHandlerContext) { owner.attached(context) }
        func handlerRemoved(context: ChannelHandlerContext) { owner.detached() }
        func channelInactive(context: ChannelHandlerContext) {
            owner.detached()
            context.fireChannelInactive()
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            owner.bytesArrived()
            context.fireChannelRead(data)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent {
                owner.shouldQuiesce(context, event: event)
            } else {
                context.fireUserInboundEventTriggered(event)
            }
        }
    }

    final class MessageSide: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        private let owner: ConnectionGuard
        init(_ owner: ConnectionGuard) { self.owner = owner }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: owner.requestHeadDecoded()
            case .body: break
            case .end: owner.requestEnded()
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let part = unwrapOutboundIn(data)
            switch part {
            case .head:
                owner.responseBegan()
                context.write(data, promise: promise)
            case .body:
                context.write(data, promise: promise)
            case .end:
                // Idle (and so closable to make room) only once the response has left: closing
                // earlier would drop the bytes still queued (a large /metrics body).
                let written = promise ?? context.eventLoop.makePromise()
                let owner = self.owner
                written.futureResult.assumeIsolated().whenComplete { _ in owner.responseEnded() }
                context.write(data, promise: written)
            }
        }
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

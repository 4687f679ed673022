import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 child channel with a `ConnectionGuard` around it: the guard's bytes
/// side goes first in the pipeline, its message side after the HTTP decoder.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let registry: ConnectionRegistry
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let connection = ConnectionGuard(registry: registry, requestTimeout: limits.requestTimeout, logger: self.logger)
        do {
            try channel.pipeline.syncOperations.addHandler(connection.bytesHandler, position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // Hummingbird asks for its extra handlers in a Sendable closure; it calls it right
        // away, on this event loop.
        let messageHandler = NIOLoopBound(connection.messageHandler, eventLoop: channel.eventLoop)
        let inner = HTTP1Channel(
            responder: responder,
            configuration: .init(additionalChannelHandlers: [messageHandler.value], idleTimeout: TimeAmount(limits.idleTimeout)))
        return inner.setup(channel: channel, logger: logger)
    }

    /// The connection's requests run on its event loop (`EventLoopTaskExecutor`), and so do
    /// the child tasks and `Task {}`s they start, unless a route moves off it (`offEventLoop`).
    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await handleHTTP(asyncChannel: value, logger: logger)
        }
    }

    /// The server builder for `Application(server:)`.
    static func builder(limits: ConnectionLimits, registry: ConnectionRegistry, logger: Logger) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, limits: limits, registry: registry, logger: logger)
        }
    }
}

/// The management API's connection limits (docs/operators.md, "Limits and failure behaviour").
public struct ConnectionLimits: Sendable {
    /// A keep-alive connection with no request for this long is closed.
    public var idleTimeout: Duration
    /// A request's head and body must arrive within this long of its first byte; otherwise the
    /// client gets 408 and the connection closes.
    public var requestTimeout: Duration
    /// Open connections at most. At the cap, the connection idle the longest (then the one
    /// slowest to send its request) is closed to make room, so probes still get through.
    public var maxConnections: Int
    /// On SIGTERM, requests already received get this long to finish before their connections
    /// are closed.
    public var drainTimeout: Duration

    public init(
        idleTimeout: Duration = .seconds(60), requestTimeout: Duration = .seconds(30), maxConnections: Int = 1024,
        drainTimeout: Duration = .seconds(10)
    ) {
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.maxConnections = maxConnections
        self.drainTimeout = drainTimeout
    }
}

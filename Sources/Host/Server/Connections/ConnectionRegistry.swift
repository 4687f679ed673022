import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Every open connection of the management API and what it is doing, so a full server closes
/// the connection that costs least (idle keep-alive first, then the one that has been sending
/// its request longest) and shutdown closes the connections with no complete request.
/// Thread-safe: connections live on different event loops.
public final class ConnectionRegistry: Sendable {
    enum Phase: Sendable {
        /// Between requests (keep-alive).
        case idle
        /// Bytes of a request arrived; its end has not.
        case receiving
        /// A whole request arrived and its response is not finished: never closed to make room.
        case busy
    }

    private struct Entry {
        let channel: any Channel
        var phase: Phase
        var since: NIODeadline
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// The server is full and nothing could be closed: the next connection to become idle
        /// is closed instead of kept alive.
        var starved = false
        var shuttingDown = false
    }

    private let state = Mutex(State())
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    func opened(_ channel: any Channel) {
        state.withLock { $0.entries[ObjectIdentifier(channel)] = Entry(channel: channel, phase: .idle, since: .now()) }
    }

    func closed(_ channel: any Channel) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Records a connection's new phase. Returns true when the connection, now idle, must be
    /// closed instead of kept alive (the server is full or shutting down).
    func enter(_ phase: Phase, _ channel: any Channel) -> Bool {
        state.withLock { state in
            state.entries[ObjectIdentifier(channel)]?.phase = phase
            state.entries[ObjectIdentifier(channel)]?.since = .now()
            guard phase == .idle, state.starved || state.shuttingDown else { return false }
            state.starved = false
            return true
        }
    }

    /// Closes the cheapest connections to make room: a batch (1/32 of the cap, as nginx frees
    /// reusable connections), so the accept loop is not held to one close per newcomer while a
    /// flood reconnects; when every connection is busy, the next one to become idle is closed.
    func makeRoom(limit: Int) {
        let batch = max(1, limit / 32)
        let victims: [any Channel] = state.withLock { state in
            let candidates = state.entries.values.filter { $0.phase != .busy }.sorted { a, b in
                // Idle first, then receiving; the longest in its phase first.
                a.phase == b.phase ? a.since < b.since : a.phase == .idle
            }
            guard !candidates.isEmpty else {
                state.starved = true
                return []
            }
            let chosen = candidates.prefix(batch).map(\.channel)
            for channel in chosen { state.entries[ObjectIdentifier(channel)]?.phase = .busy }  // not chosen twice
            return chosen
        }
        if !victims.isEmpty { logger.debug("connections closed to make room", metadata: ["count": "\(victims.count)"]) }
        for victim in victims { victim.close(promise: nil) }
    }

    /// Shutdown began: connections with no complete request close now; the others close once
    /// their response is written. Returns how many requests were cut short.
    @discardableResult
    func beginShutdown() -> (closedIncomplete: Int, draining: Int) {
        let (incomplete, idle, draining) = state.withLock { state in
            state.shuttingDown = true
            let entries = Array(state.entries.values)
            return (
                entries.filter { $0.phase == .receiving }.map(\.channel), entries.filter { $0.phase == .idle }.map(\.channel),
                entries.count { $0.phase == .busy }
            )
        }
        for channel in incomplete + idle { channel.close(promise: nil) }
        return (incomplete.count, draining)
    }

    /// The drain bound passed: closes every connection left. Returns how many were still busy.
    @discardableResult
    func closeAll() -> Int {
        let entries = state.withLock { Array($0.entries.values) }
        for entry in entries { entry.channel.close(promise: nil) }
        return entries.count { $0.phase == .busy }
    }
}

/// Hummingbird's accept gate: at the cap it stops accepting and makes room (the listening
/// socket's backlog holds the newcomer meanwhile), so a flood of idle connections cannot lock
/// out the probes, and descriptors never run out under the cap.
struct ConnectionCap: AvailableConnectionsDelegate {
    let limit: Int
    let registry: ConnectionRegistry
    private var open = 0

    init(limit: Int, registry: ConnectionRegistry) {
        self.limit = limit
        self.registry = registry
    }

    mutating func connectionOpened() { open += 1 }
    mutating func connectionClosed() { open -= 1 }

    func isAcceptingNewConnections() -> Bool {
        if open < limit { return true }
        registry.makeRoom(limit: limit)
        return false
    }
}

import FoundationEssentials
import Logging
import Synchronization

/// Credentials an issuer hands out for a while: fetched on first use, reused until they near
/// expiry, then fetched again by the first request that finds them stale while the others
/// wait for it. A failed renewal keeps the old credentials while they are still good (and
/// tries again a few seconds later); once they have expired, the failure is the request's.
/// Thread-safe.
final class RefreshingCredentials: CredentialSource {
    let description: String
    private let fetch: @Sendable (_ isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let state = Mutex<State>(State())
    /// Held while one thread fetches, so a burst of parts makes one call to the issuer.
    private let renewing = Mutex<Void>(())

    private struct State {
        var current: IssuedCredential?
        var renewAt = Date.distantPast
        var nextAttempt = Date.distantPast
    }

    /// Renewals after a failure wait this long, so a broken issuer is not asked once per part.
    static let retryDelay: TimeInterval = 5

    init(
        description: String, logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
        fetch: @escaping @Sendable (_ isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential
    ) {
        self.description = description
        self.logger = logger
        self.now = now
        self.fetch = fetch
    }

    /// When credentials good until `expires` (handed out at `issued`) are renewed: five
    /// minutes before they expire, as AWS's SDKs do, or a quarter of their life for short
    /// ones, so a 15-minute STS session is renewed at 11¼ minutes, not at 10.
    static func renewalTime(issued: Date, expires: Date) -> Date {
        let life = max(0, expires.timeIntervalSince(issued))
        return expires.addingTimeInterval(-min(300, life / 4))
    }

    func authorization(isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> RequestAuthorization {
        let fresh = state.withLock { state -> RequestAuthorization? in
            guard let current = state.current, now() < state.renewAt else { return nil }
            return current.authorization
        }
        if let fresh { return fresh }
        return try renewing.withLock { _ throws(RuntimeError) -> RequestAuthorization in try renew(isCancelled: isCancelled) }
    }

    private func renew(isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> RequestAuthorization {
        let (current, renewAt, nextAttempt) = state.withLock { ($0.current, $0.renewAt, $0.nextAttempt) }
        let started = now()
        // Another thread renewed them while this one waited for the lock.
        if let current, started < renewAt { return current.authorization }
        if let current, started < nextAttempt, started < current.expires { return current.authorization }
        do {
            let issued = try fetch(isCancelled)
            let renewal = Self.renewalTime(issued: started, expires: issued.expires)
            state.withLock { state in
                state.current = issued
                state.renewAt = renewal
                state.nextAttempt = .distantPast
            }
            logger.info(
                "credentials \(current == nil ? "obtained" : "renewed")",
                metadata: [
                    "credentials": "\(description)", "expires_in_s": "\(Int(issued.expires.timeIntervalSince(started).rounded()))",
                    "renew_in_s": "\(Int(renewal.timeIntervalSince(started).rounded()))",
                ])
            return issued.authorization
        } catch {
            if let current, now() < current.expires {
                state.withLock { $0.nextAttempt = started.addingTimeInterval(Self.retryDelay) }
                logger.warning(
                    "renewing credentials failed; the current ones are good for \(Int(current.expires.timeIntervalSince(started)))s more",
                    metadata: ["credentials": "\(description)", "error": "\(error.message)"])
                return current.authorization
            }
            throw error
        }
    }
}

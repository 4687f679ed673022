import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Every stop of an engine, whatever asked for it (deactivate, a restart, a boot timeout, the
/// sidecar's own shutdown): SIGTERM to its process group, the grace period for vLLM, SGLang
/// and kvcached to clean up (CUDA state, shared-memory segments), then SIGKILL. AIBrix sent
/// SIGTERM forever on deactivate and SIGKILL at once on restarts (model_runtime.py:1121-1148).
enum ProcessStopper {
    static func stop(_ identity: ProcessIdentity, grace: Duration, logger: Logger) async {
        _ = EngineSpawner.reap(identity.pid)
        guard identity.groupIsAlive else { return }
        identity.signalGroup(SIGTERM)
        let clock = ContinuousClock()
        let started = clock.now
        if await waitForExit(identity, until: started + grace) { return }
        logger.warning(
            "engine did not stop within the grace period; sending SIGKILL",
            metadata: ["pid": "\(identity.pid)", "grace_seconds": "\(grace.components.seconds)"])
        identity.signalGroup(SIGKILL)
        _ = await waitForExit(identity, until: clock.now + .seconds(5))
    }

    /// Polls until no process of the group is left (reaping our own child), or the deadline.
    private static func waitForExit(_ identity: ProcessIdentity, until deadline: ContinuousClock.Instant) async -> Bool {
        while ContinuousClock.now < deadline {
            _ = EngineSpawner.reap(identity.pid)
            if !identity.groupIsAlive { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        _ = EngineSpawner.reap(identity.pid)
        return !identity.groupIsAlive
    }
}

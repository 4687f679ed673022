/// Where a launched model is in its life. The first six are AIBrix's phases (the controller
/// reads `failed` and `sleeping`; everything else means "activating"); `downloading` is ours:
/// the artifact is being fetched and no engine runs yet.
public enum ModelPhase: String, Codable, Sendable, CaseIterable {
    case downloading, booting, active, sleeping, restarting, failed, stopping
}

/// AIBrix's `claim_ref`: the ModelClaim an activation is for.
public struct ClaimReference: Codable, Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var uid: String
}

/// An operation id the runtime has carried out, with a digest of its parameters: a replay
/// with the same parameters is a no-op, one with other parameters a conflict.
struct OperationRecord: Codable, Sendable, Equatable {
    var id: String
    var action: String
    var parameters: String
}

/// What the runtime knows of one model, persisted in the registry file so a restarted sidecar
/// finds its engines again. Field names follow AIBrix's registry records where they exist.
struct ModelRecord: Codable, Sendable, Equatable {
    var modelName: String
    var artifactURL: String
    var engine: String
    var port: Int
    var ipcName: String
    var args: [[String]]
    var claimRef: ClaimReference?
    var phase: ModelPhase
    var process: ProcessIdentity?
    /// Set in the engine's environment (`ENGINE_RUNTIME_LAUNCH_ID`) and written here before the
    /// spawn: an engine started just before the sidecar died is found by it and adopted, never
    /// started twice.
    var launchID: String
    var restartCount: Int = 0
    /// When the restarts counted against the budget happened (seconds since the epoch).
    var restartTimes: [Double] = []
    var lastError: String?
    var lastTransition: Double
    var nextRestartAt: Double?
    /// The local path the engine serves, once the artifact is resolved.
    var modelPath: String?
    /// The KV limit last applied, re-applied after an engine restart (kvcached resets it).
    var kvLimitBytes: Int64?
    /// The limit still has to reach the engine's (new) segment.
    var kvLimitPending = false
    var operations: [OperationRecord] = []
    var bootStartedAt: Double?
    var activeSince: Double?
    var unhealthySince: Double?

    enum CodingKeys: String, CodingKey {
        case modelName = "model_name", artifactURL = "artifact_url", engine, port, ipcName = "ipc_name", args
        case claimRef = "claim_ref", phase, process, launchID = "launch_id", restartCount = "restart_count"
        case restartTimes = "restart_times", lastError = "last_error", lastTransition = "last_transition"
        case nextRestartAt = "next_restart_at", modelPath = "model_path", kvLimitBytes = "kv_limit_bytes"
        case kvLimitPending = "kv_limit_pending", operations
        case bootStartedAt = "boot_started_at", activeSince = "active_since", unhealthySince = "unhealthy_since"
    }

    /// The parts of an activation that make it "the same" request: a repeat with these equal is
    /// idempotent, with any differing a conflict.
    var specification: [String] { Self.specification(artifactURL: artifactURL, engine: engine, args: args, claimUID: claimRef?.uid) }

    static func specification(artifactURL: String, engine: String, args: [[String]], claimUID: String?) -> [String] {
        [artifactURL, engine, args.map { $0.joined(separator: "\u{1}") }.joined(separator: "\u{2}"), claimUID ?? ""]
    }

    /// AIBrix keeps 128 ids per action.
    static let operationHistory = 128

    func operation(_ id: String, action: String) -> OperationRecord? {
        operations.last { $0.id == id && $0.action == action }
    }

    mutating func remember(_ operation: OperationRecord) {
        operations.append(operation)
        let sameAction = operations.indices.filter { operations[$0].action == operation.action }
        if sameAction.count > Self.operationHistory { operations.remove(at: sameAction[0]) }
    }
}

/// The registry file: `{"version":1,"engines":[record...]}`, written atomically and synced
/// (mode 0600, its directory 0700) at every change of state.
struct ModelRegistryFile: Sendable {
    let path: String

    private struct Document: Codable {
        var version: Int
        var engines: [ModelRecord]
    }

    /// The records, or none when the file is missing or unreadable (left in place, and said).
    func load() -> (records: [ModelRecord], problem: String?) {
        guard let bytes = ProcFile.read(path, limit: 64 << 20) else { return ([], nil) }
        do {
            let document = try JSONCoding.decode(Document.self, from: bytes)
            guard document.version == 1 else { return ([], "registry \(path) has version \(document.version), not 1; ignored") }
            return (document.engines, nil)
        } catch {
            return ([], "registry \(path) is not readable (\(error)); ignored and left in place")
        }
    }

    func save(_ records: [ModelRecord]) throws(RuntimeError) {
        let bytes: [UInt8]
        do { bytes = try JSONCoding.encode(Document(version: 1, engines: records)) } catch {
            throw RuntimeError(.internalError, "could not encode the registry: \(error)")
        }
        try StagingDirectory.writeAtomically(bytes, to: path, mode: 0o600, durable: true)
    }
}

/// The request and answer bodies of `/v1/runtime/...`, in AIBrix's shapes
/// (aibrix/openapi/protocol.py:120-268; see docs/model-runtime.md).

public struct ActivateRequest: Sendable, Equatable {
    public var modelName: String
    public var artifactURL: String
    public var engine: String
    public var port: Int
    public var ipcName: String?
    public var engineArgs: [(String, String)]
    public var claimRef: ClaimReference?

    public static func == (a: ActivateRequest, b: ActivateRequest) -> Bool {
        a.modelName == b.modelName && a.artifactURL == b.artifactURL && a.engine == b.engine && a.port == b.port
            && a.ipcName == b.ipcName && a.engineArgs.elementsEqual(b.engineArgs, by: ==) && a.claimRef == b.claimRef
    }

    public init(
        modelName: String, artifactURL: String, engine: String = "vllm", port: Int = 0, ipcName: String? = nil,
        engineArgs: [(String, String)] = [], claimRef: ClaimReference? = nil
    ) {
        self.modelName = modelName
        self.artifactURL = artifactURL
        self.engine = engine
        self.port = port
        self.ipcName = ipcName
        self.engineArgs = engineArgs
        self.claimRef = claimRef
    }
}

public struct ActivateAnswer: Codable, Sendable, Equatable {
    public var status: String
    public var model_name: String
    public var port: Int
    public var ipc_name: String
    public var message: String?
}

/// `{"status","model_name","operation_id","applied","phase"}` of kv-limit, sleep and wake.
public struct OperationAnswer: Codable, Sendable, Equatable {
    public var status = "success"
    public var model_name: String
    public var operation_id: String
    public var applied: Bool
    public var phase: ModelPhase

    public init(model_name: String, operation_id: String, applied: Bool, phase: ModelPhase) {
        self.model_name = model_name
        self.operation_id = operation_id
        self.applied = applied
        self.phase = phase
    }
}

/// One entry of `GET /v1/runtime/models`: AIBrix's fields, then ours.
public struct ModelListEntry: Codable, Sendable, Equatable {
    public var model_name: String
    public var port: Int
    public var ipc_name: String
    public var phase: ModelPhase
    public var ready: Bool
    public var kv_used_bytes: Int64
    public var kv_total_bytes: Int64
    public var engine: String
    public var artifact_url: String
    public var pid: Int32?
    public var restart_count: Int
    public var last_error: String?
    /// The artifact's download while the phase is `downloading` (and after, until the engine runs).
    public var download: DownloadJob.Snapshot?
    /// The engine's last output lines.
    public var log_tail: [String]
}

public struct RuntimeModelList: Codable, Sendable, Equatable {
    public var models: [ModelListEntry]
}

/// `GET /v1/runtime/snapshot`, key order as AIBrix's (protocol.py:224-268).
public struct RuntimeSnapshot: Codable, Sendable, Equatable {
    public struct Accelerator: Codable, Sendable, Equatable {
        public var id: String
        public var hbm_total_bytes: Int64
        public var hbm_free_bytes: Int64
    }

    public struct Model: Codable, Sendable, Equatable {
        public var model_name: String
        public var artifact_url: String
        public var claim_ref: ClaimReference?
        public var port: Int
        public var ipc_name: String
        public var phase: ModelPhase
        public var ready: Bool
        public var alive: Bool
        public var restart_count: Int
        public var last_error: String?
        public var last_transition: String?
        public var kv_used_bytes: Int64
        public var kv_capacity_bytes: Int64
        public var hbm_peak_bytes: Int64
        public var request_metrics_observed: Bool
        public var requests_running: Int64
        public var requests_waiting: Int64
        public var request_success_total: Int64?

        enum CodingKeys: String, CodingKey {
            case model_name, artifact_url, claim_ref, port, ipc_name, phase, ready, alive, restart_count, last_error, last_transition
            case kv_used_bytes, kv_capacity_bytes, hbm_peak_bytes, request_metrics_observed, requests_running, requests_waiting
            case request_success_total
        }

        // `claim_ref`, `last_error` and `request_success_total` are written as null, not left
        // out: AIBrix always sends every key.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(model_name, forKey: .model_name)
            try container.encode(artifact_url, forKey: .artifact_url)
            try container.encode(claim_ref, forKey: .claim_ref)
            try container.encode(port, forKey: .port)
            try container.encode(ipc_name, forKey: .ipc_name)
            try container.encode(phase, forKey: .phase)
            try container.encode(ready, forKey: .ready)
            try container.encode(alive, forKey: .alive)
            try container.encode(restart_count, forKey: .restart_count)
            try container.encode(last_error, forKey: .last_error)
            try container.encode(last_transition, forKey: .last_transition)
            try container.encode(kv_used_bytes, forKey: .kv_used_bytes)
            try container.encode(kv_capacity_bytes, forKey: .kv_capacity_bytes)
            try container.encode(hbm_peak_bytes, forKey: .hbm_peak_bytes)
            try container.encode(request_metrics_observed, forKey: .request_metrics_observed)
            try container.encode(requests_running, forKey: .requests_running)
            try container.encode(requests_waiting, forKey: .requests_waiting)
            try container.encode(request_success_total, forKey: .request_success_total)
        }
    }

    public var observed_at: String
    public var accelerators: [Accelerator]
    public var models: [Model]
    public var cached_artifacts: [String]
}

import EngineDriverKit
import PluginABI

/// The vLLM driver: management through vLLM's OpenAI-compatible server.
///
/// Routes and status codes follow vLLM's own server (see docs/drivers.md and the engine
/// reference): `/health`, `/version`, `/v1/models`, `/v1/load_lora_adapter`,
/// `/v1/unload_lora_adapter`.
final class VLLMInstance: EngineDriverInstance {
    static let info = DriverInfo(
        name: "vllm", version: "0.1.0", summary: "vLLM OpenAI-compatible server",
        engineKinds: ["vllm"],
        capabilities: UInt64(ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC | ERT_CAP_SLEEP | ERT_CAP_PROMETHEUS),
        configSchemaJSON: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        operations: [
            .health, .readiness, .engineInfo, .listModels, .loadLoRAAdapter, .unloadLoRAAdapter, .sleep, .wake, .resetCache,
        ],
        metricsPath: "/metrics", metricRules: metricRules)

    /// vLLM's metrics in the standard set (docs/metrics.md). vLLM's `engine` label is the
    /// data-parallel rank: counts are summed over it, ratios take the maximum.
    static let metricRules: [MetricRuleSpec] = [
        MetricRuleSpec(.gauge, "vllm:num_requests_running", "llm_engine_requests_running", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.gauge, "vllm:num_requests_waiting", "llm_engine_requests_waiting", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.gauge, "vllm:kv_cache_usage_perc", "llm_engine_kv_cache_usage_ratio", aggregate: .max, over: "engine"),
        // Older vLLM; absent from recent ones.
        MetricRuleSpec(.gauge, "vllm:gpu_cache_usage_perc", "llm_engine_kv_cache_usage_ratio", aggregate: .max, over: "engine"),
        MetricRuleSpec(
            .gauge, "vllm:cache_config_info", "llm_engine_kv_cache_config_info", aggregate: .max,
            over: "engine,cache_dtype", rename: "num_gpu_blocks=num_blocks"),
        MetricRuleSpec(.histogram, "vllm:time_to_first_token_seconds", "llm_engine_time_to_first_token_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:inter_token_latency_seconds", "llm_engine_inter_token_latency_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:time_per_output_token_seconds", "llm_engine_inter_token_latency_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:e2e_request_latency_seconds", "llm_engine_e2e_request_latency_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:request_queue_time_seconds", "llm_engine_request_queue_time_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:prompt_tokens_total", "llm_engine_prompt_tokens", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:generation_tokens_total", "llm_engine_generation_tokens", aggregate: .sum, over: "engine"),
        MetricRuleSpec(
            .counter, "vllm:request_success_total", "llm_engine_requests_finished", aggregate: .sum, over: "engine",
            rename: "finished_reason=reason"),
        MetricRuleSpec(.counter, "vllm:prefix_cache_queries_total", "llm_engine_prefix_cache_queries", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:prefix_cache_hits_total", "llm_engine_prefix_cache_hits", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:num_preemptions_total", "llm_engine_preemptions", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.gauge, "vllm:lora_requests_info", "llm_engine_lora_requests_info", aggregate: .newest),
        MetricRuleSpec(
            .gauge, "vllm:engine_sleep_state", "llm_engine_sleep_state", aggregate: .max, over: "engine",
            rename: "sleep_state=state", values: "state:weights_offloaded=sleeping,state:discard_all=sleeping"),
    ]

    private let engine: EngineClient

    init(settings: InstanceSettings, host: HostConnection) throws(DriverFailure) {
        engine = EngineClient(settings: settings, engineName: "vLLM")
    }

    func perform(_ operation: DriverOperation, request: DriverRequest, call: CallScope) throws(DriverFailure) -> [UInt8] {
        switch operation {
        case .health: return try health(call)
        case .readiness: return try readiness(call)
        case .engineInfo: return try engineInfo(call)
        case .listModels: return try listModels(call)
        case .loadLoRAAdapter: return try loadAdapter(try request.decode(LoadAdapterRequest.self), call)
        case .unloadLoRAAdapter: return try unloadAdapter(try request.decode(UnloadAdapterRequest.self), call)
        case .sleep: return try sleep(try request.decode(SleepRequest.self), call)
        case .wake: return try wake(try request.decode(WakeRequest.self), call)
        case .resetCache: return try resetPrefixCache(call)
        default: throw .unsupported("the vLLM driver does not implement this operation")
        }
    }

    // MARK: Health

    /// vLLM's `/health` is 200 with an empty body when the engine loop is alive, 503 when it
    /// died; the server does not listen until the model is loaded.
    private func health(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let (ok, reason) = try engine.probe("/health", in: call)
        return try DriverJSON.encode(HealthAnswer(healthy: ok, reason: reason))
    }

    private func readiness(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let (ok, reason) = try engine.probe("/health", in: call)
        return try DriverJSON.encode(ReadinessAnswer(ready: ok, reason: reason))
    }

    private func engineInfo(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Version: Decodable { var version: String }
        struct Sleeping: Decodable { var is_sleeping: Bool }
        struct Answer: Encodable {
            var engine = "vllm"
            var version: String?
            var endpoint: String
            /// nil when the development routes are off.
            var is_sleeping: Bool?
        }
        let reply = try engine.get("/version", in: call)
        guard reply.status == 200, let version = reply.decode(Version.self) else {
            throw .upstream("vLLM /version answered HTTP \(reply.status): \(EngineClient.errorMessage(reply))", status: Int32(reply.status))
        }
        let sleeping = try engine.get("/is_sleeping", in: call)
        return try DriverJSON.encode(
            Answer(
                version: version.version, endpoint: engine.endpoint,
                is_sleeping: sleeping.status == 200 ? sleeping.decode(Sleeping.self)?.is_sleeping : nil))
    }

    // MARK: Sleep, wake, cache (vLLM's development routes)

    private struct SleepRequest: Decodable { var level: Int? }
    private struct WakeRequest: Decodable { var tags: [String]? }

    private static let devModeHint = "start vLLM with VLLM_SERVER_DEV_MODE=1 (and --enable-sleep-mode for sleep and wake)"

    private func sleep(_ request: SleepRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let level = request.level ?? 1
        guard [1, 2].contains(level) else { throw .invalidArgument("vLLM sleep level must be 1 or 2") }
        let reply = try engine.post("/sleep?level=\(level)", in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "sleep", missingRoute: "vLLM has no /sleep route: \(Self.devModeHint)")
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM is asleep (level \(level))"))
    }

    private func wake(_ request: WakeRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let tags = request.tags ?? []
        if let bad = tags.first(where: { tag in tag.isEmpty || !tag.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F } }) {
            throw .invalidArgument("wake tag \"\(bad)\" must match [a-z_]+ (e.g. weights, kv_cache)")
        }
        let query = tags.isEmpty ? "" : "?" + tags.map { "tags=\($0)" }.joined(separator: "&")
        let reply = try engine.post("/wake_up" + query, in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "wake up", missingRoute: "vLLM has no /wake_up route: \(Self.devModeHint)")
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM is awake"))
    }

    /// `{"success":false}` means blocks are still in use by running requests: a conflict the
    /// caller can retry.
    private func resetPrefixCache(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Answer: Decodable { var success: Bool? }
        let reply = try engine.post("/reset_prefix_cache", in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "reset the prefix cache", missingRoute: "vLLM has no /reset_prefix_cache route: \(Self.devModeHint)")
        }
        if reply.decode(Answer.self)?.success == false {
            throw .conflict("vLLM did not reset the prefix cache: blocks are still in use by running requests; retry later", upstream: 200)
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM prefix cache reset"))
    }

    private func listModels(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let reply = try engine.get("/v1/models", in: call)
        guard reply.status == 200 else { throw failure(reply, doing: "list models") }
        return try DriverJSON.validated(reply.body, what: "vLLM /v1/models", httpStatus: reply.status)
    }

    // MARK: LoRA adapters

    private struct LoadAdapterRequest: Codable {
        var lora_name: String
        var lora_path: String
        var load_inplace: Bool?
    }

    private struct UnloadAdapterRequest: Codable {
        var lora_name: String
        var lora_int_id: Int?
    }

    private func loadAdapter(_ request: LoadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty, !request.lora_path.isEmpty else {
            throw .invalidArgument("lora_name and lora_path must not be empty")
        }
        let reply = try engine.post("/v1/load_lora_adapter", json: request, in: call)
        if reply.status == 200 { return try DriverJSON.encode(MessageAnswer(message: reply.text)) }
        let message = EngineClient.errorMessage(reply)
        if reply.status == 400, message.contains("already been loaded") {
            // A repeat of the same load is success; the same name with another path is a conflict.
            if try loadedAdapterPath(named: request.lora_name, call) == request.lora_path {
                return try DriverJSON.encode(
                    MessageAnswer(message: "LoRA adapter '\(request.lora_name)' is already loaded from '\(request.lora_path)'"))
            }
            throw .conflict(message, upstream: 400)
        }
        throw failure(reply, doing: "load LoRA adapter '\(request.lora_name)'")
    }

    private func unloadAdapter(_ request: UnloadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty else { throw .invalidArgument("lora_name must not be empty") }
        let reply = try engine.post("/v1/unload_lora_adapter", json: request, in: call)
        if reply.status == 200 { return try DriverJSON.encode(MessageAnswer(message: reply.text)) }
        throw failure(reply, doing: "unload LoRA adapter '\(request.lora_name)'")
    }

    /// The path an adapter was loaded from, per the LoRA cards of `/v1/models`.
    private func loadedAdapterPath(named name: String, _ call: CallScope) throws(DriverFailure) -> String? {
        let reply = try engine.get("/v1/models", in: call)
        guard reply.status == 200, let models = reply.decode(ModelList.self) else { return nil }
        return models.adapters.first { $0.id == name }?.root
    }

    private func failure(_ reply: CallScope.Reply, doing what: String) -> DriverFailure {
        engine.failure(
            reply, doing: what,
            missingRoute: "vLLM has no route to \(what): start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True")
    }
}

// MARK: C ABI export

let vllmExport = DriverExport(info: VLLMInstance.info) { config, out, error in
    DriverExport.createInstance(of: VLLMInstance.self, config: config, out: out, error: error)
}

@_cdecl("ert_driver_entry_v1")
public func ert_driver_entry_v1(
    _ host: UnsafePointer<ert_host_info>?, _ error: UnsafeMutablePointer<ert_error>?
) -> UnsafePointer<ert_driver_descriptor>? {
    vllmExport.entry(host: host, error: error)
}

/// Fails to compile if the exported function drifts from the header's typedef.
private let entrySignatureCheck: ert_driver_entry_v1_fn = ert_driver_entry_v1

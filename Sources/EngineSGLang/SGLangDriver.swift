import EngineDriverKit
import PluginABI

/// The SGLang driver: management through `sglang.launch_server`'s HTTP routes.
///
/// SGLang answers every LoRA failure with HTTP 400 and `{"success":false,"error_message"}`;
/// the driver reads the message to tell "not found" and "already loaded" apart.
final class SGLangInstance: EngineDriverInstance {
    static let info = DriverInfo(
        name: "sglang", version: "0.1.0", summary: "SGLang runtime server (sglang.launch_server)",
        engineKinds: ["sglang"],
        capabilities: UInt64(
            ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC | ERT_CAP_SLEEP | ERT_CAP_DEEP_HEALTH | ERT_CAP_PROMETHEUS),
        configSchemaJSON: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        operations: [
            .health, .readiness, .engineInfo, .listModels, .loadLoRAAdapter, .unloadLoRAAdapter, .sleep, .wake, .resetCache,
        ],
        metricsPath: "/metrics", metricRules: metricRules)

    /// SGLang's metrics in the standard set (docs/metrics.md). Scheduler series carry rank
    /// labels: only tp_rank 0 counts (other TP ranks repeat it); data-parallel ranks are summed
    /// for counts, maxed for ratios.
    static let metricRules: [MetricRuleSpec] = [
        MetricRuleSpec(
            .gauge, "sglang:num_running_reqs", "llm_engine_requests_running", aggregate: .sum,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", match: "tp_rank=0"),
        MetricRuleSpec(
            .gauge, "sglang:num_queue_reqs", "llm_engine_requests_waiting", aggregate: .sum,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", match: "tp_rank=0"),
        MetricRuleSpec(
            .gauge, "sglang:token_usage", "llm_engine_kv_cache_usage_ratio", aggregate: .max,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", match: "tp_rank=0"),
        MetricRuleSpec(
            .gauge, "sglang:cache_config_info", "llm_engine_kv_cache_config_info", aggregate: .max,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", rename: "page_size=block_size,num_pages=num_blocks",
            match: "tp_rank=0"),
        MetricRuleSpec(.histogram, "sglang:time_to_first_token_seconds", "llm_engine_time_to_first_token_seconds"),
        MetricRuleSpec(.histogram, "sglang:inter_token_latency_seconds", "llm_engine_inter_token_latency_seconds"),
        MetricRuleSpec(.histogram, "sglang:e2e_request_latency_seconds", "llm_engine_e2e_request_latency_seconds"),
        MetricRuleSpec(
            .histogram, "sglang:queue_time_seconds", "llm_engine_request_queue_time_seconds", aggregate: .sum,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", match: "tp_rank=0"),
        MetricRuleSpec(.counter, "sglang:prompt_tokens_total", "llm_engine_prompt_tokens"),
        MetricRuleSpec(.counter, "sglang:generation_tokens_total", "llm_engine_generation_tokens"),
        MetricRuleSpec(.counter, "sglang:num_requests_total", "llm_engine_requests_finished", set: "reason=completed"),
        MetricRuleSpec(.counter, "sglang:num_aborted_requests_total", "llm_engine_requests_finished", set: "reason=abort"),
        // SGLang has no prefix-cache query counter: every prompt token is a lookup.
        MetricRuleSpec(.counter, "sglang:prompt_tokens_total", "llm_engine_prefix_cache_queries"),
        MetricRuleSpec(.counter, "sglang:cached_tokens_total", "llm_engine_prefix_cache_hits"),
        MetricRuleSpec(
            .counter, "sglang:num_retracted_requests_total", "llm_engine_preemptions", aggregate: .sum,
            over: "dp_rank,tp_rank,pp_rank,engine_type,moe_ep_rank", match: "tp_rank=0"),
    ]

    private let engine: EngineClient

    init(settings: InstanceSettings, host: HostConnection) throws(DriverFailure) {
        engine = EngineClient(settings: settings, engineName: "SGLang")
    }

    func perform(_ operation: DriverOperation, request: DriverRequest, call: CallScope) throws(DriverFailure) -> [UInt8] {
        switch operation {
        case .health:
            struct HealthRequest: Decodable { var deep: Bool? }
            let deep = try request.decode(HealthRequest.self).deep ?? false
            let (ok, reason) = try engine.probe(deep ? "/health_generate" : "/health", in: call)
            return try DriverJSON.encode(HealthAnswer(healthy: ok, reason: reason))
        case .readiness:
            let (ok, reason) = try engine.probe("/health", in: call)
            return try DriverJSON.encode(ReadinessAnswer(ready: ok, reason: reason))
        case .engineInfo:
            return try engineInfo(call)
        case .listModels:
            let reply = try engine.get("/v1/models", in: call)
            guard reply.status == 200 else { throw failure(reply, doing: "list models") }
            return try DriverJSON.validated(reply.body, what: "SGLang /v1/models", httpStatus: reply.status)
        case .loadLoRAAdapter:
            return try loadAdapter(try request.decode(LoadAdapterRequest.self), call)
        case .unloadLoRAAdapter:
            return try unloadAdapter(try request.decode(UnloadAdapterRequest.self), call)
        case .sleep:
            struct Sleep: Decodable { var level: Int? }
            let level = try request.decode(Sleep.self).level ?? 1
            guard [1, 2].contains(level) else { throw .invalidArgument("sleep level must be 1 or 2") }
            return try memoryOccupation("/release_memory_occupation", tags: nil, done: "SGLang released its GPU memory", call)
        case .wake:
            struct Wake: Decodable { var tags: [String]? }
            let tags = try request.decode(Wake.self).tags
            return try memoryOccupation("/resume_memory_occupation", tags: tags, done: "SGLang resumed its GPU memory", call)
        case .resetCache:
            return try flushCache(call)
        default:
            throw .unsupported("the SGLang driver does not implement this operation")
        }
    }

    // SGLang's `/health` is 503 while the server starts and 200 once a one-token generation
    // went through (or at once when health generation is disabled).

    private func engineInfo(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct ServerInfo: Decodable { var version: String? }
        struct ModelInfo: Decodable {
            var model_path: String?
            var is_generation: Bool?
        }
        struct Answer: Encodable {
            var engine = "sglang"
            var version: String?
            var model_path: String?
            var is_generation: Bool?
            var endpoint: String
        }
        let server = try engine.get("/get_server_info", in: call)
        guard server.status == 200 else { throw failure(server, doing: "read server info") }
        let model = try engine.get("/get_model_info", in: call)
        guard model.status == 200 else { throw failure(model, doing: "read model info") }
        let modelInfo = model.decode(ModelInfo.self)
        return try DriverJSON.encode(
            Answer(
                version: server.decode(ServerInfo.self)?.version, model_path: modelInfo?.model_path,
                is_generation: modelInfo?.is_generation, endpoint: engine.endpoint))
    }

    private struct LoadAdapterRequest: Codable {
        var lora_name: String
        var lora_path: String
        var pinned: Bool?
    }

    private struct UnloadAdapterRequest: Codable { var lora_name: String }

    private struct LoRAUpdateOutput: Decodable {
        var success: Bool?
        var error_message: String?
        var loaded_adapters: [String: LoRARef]?
        struct LoRARef: Decodable { var lora_path: String? }
    }

    private func loadAdapter(_ request: LoadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty, !request.lora_path.isEmpty else {
            throw .invalidArgument("lora_name and lora_path must not be empty")
        }
        let reply = try engine.post("/load_lora_adapter", json: request, in: call)
        let output = reply.decode(LoRAUpdateOutput.self)
        if reply.status == 200, output?.success != false {
            return try DriverJSON.encode(MessageAnswer(message: "LoRA adapter '\(request.lora_name)' loaded from '\(request.lora_path)'"))
        }
        let message = output?.error_message ?? EngineClient.errorMessage(reply)
        let lowered = message.lowercased()
        if lowered.contains("already") {
            if output?.loaded_adapters?[request.lora_name]?.lora_path == request.lora_path {
                return try DriverJSON.encode(
                    MessageAnswer(message: "LoRA adapter '\(request.lora_name)' is already loaded from '\(request.lora_path)'"))
            }
            throw .conflict(message, upstream: Int32(reply.status))
        }
        if reply.status == 400 {
            if lowered.contains("not found") || lowered.contains("does not exist") || lowered.contains("no such file") {
                throw .notFound(message, upstream: 400)
            }
            throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, message, upstreamHTTPStatus: 400)
        }
        throw failure(reply, doing: "load LoRA adapter '\(request.lora_name)'")
    }

    private func unloadAdapter(_ request: UnloadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty else { throw .invalidArgument("lora_name must not be empty") }
        let reply = try engine.post("/unload_lora_adapter", json: request, in: call)
        let output = reply.decode(LoRAUpdateOutput.self)
        if reply.status == 200, output?.success != false {
            return try DriverJSON.encode(MessageAnswer(message: "LoRA adapter '\(request.lora_name)' unloaded"))
        }
        let message = output?.error_message ?? EngineClient.errorMessage(reply)
        let lowered = message.lowercased()
        if reply.status == 400, lowered.contains("not") && (lowered.contains("loaded") || lowered.contains("found") || lowered.contains("exist")) {
            throw .notFound(message, upstream: 400)
        }
        if reply.status == 400 { throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, message, upstreamHTTPStatus: 400) }
        throw failure(reply, doing: "unload LoRA adapter '\(request.lora_name)'")
    }

    /// Sleep and wake: release or resume GPU memory (weights, KV cache, CUDA graphs).
    private func memoryOccupation(_ path: String, tags: [String]?, done: String, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Body: Encodable { var tags: [String]? }
        let reply = try engine.post(path, json: Body(tags: tags), in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: path, missingRoute: "this SGLang build has no \(path) route")
        }
        return try DriverJSON.encode(MessageAnswer(message: done))
    }

    /// `/flush_cache` refuses (HTTP 400) while requests are running or waiting: a conflict the
    /// caller can retry.
    private func flushCache(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let reply = try engine.post("/flush_cache", json: [String: String](), in: call)
        if reply.status == 400 {
            throw .conflict("SGLang did not flush its cache: requests are running or waiting; retry later", upstream: 400)
        }
        guard reply.status == 200 else { throw failure(reply, doing: "flush the cache") }
        return try DriverJSON.encode(MessageAnswer(message: "SGLang cache flushed"))
    }

    private func failure(_ reply: CallScope.Reply, doing what: String) -> DriverFailure {
        engine.failure(reply, doing: what)
    }
}

// MARK: C ABI export

let sglangExport = DriverExport(info: SGLangInstance.info) { config, out, error in
    DriverExport.createInstance(of: SGLangInstance.self, config: config, out: out, error: error)
}

@_cdecl("ert_driver_entry_v1")
public func ert_driver_entry_v1(
    _ host: UnsafePointer<ert_host_info>?, _ error: UnsafeMutablePointer<ert_error>?
) -> UnsafePointer<ert_driver_descriptor>? {
    sglangExport.entry(host: host, error: error)
}

/// Fails to compile if the exported function drifts from the header's typedef.
private let entrySignatureCheck: ert_driver_entry_v1_fn = ert_driver_entry_v1

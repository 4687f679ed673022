import EngineDriverKit
import PluginABI

/// The SGLang driver: management through SGLang's HTTP server (`sglang serve`).
///
/// Follows SGLang 0.5.23 (routes, codes and bodies in the engine reference, cited below as
/// `sglang/...:line` of the released wheel; `hs` is `sglang/srt/entrypoints/http_server.py`)
/// and keeps working with 0.5.4: renamed routes fall back to their old names on a missing
/// route, and both shapes of `loaded_adapters` are read. SGLang answers every handled LoRA
/// failure with HTTP 400 and `{"success":false,"error_message"}`; the driver reads the message
/// to tell the cases apart.
final class SGLangInstance: EngineDriverInstance {
    static let info = DriverInfo(
        name: "sglang", version: "0.2.0", summary: "SGLang server (sglang serve), 0.5.4 to 0.5.23",
        engineKinds: ["sglang"],
        capabilities: UInt64(
            ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC | ERT_CAP_SLEEP | ERT_CAP_DEEP_HEALTH | ERT_CAP_PROMETHEUS),
        configSchemaJSON: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        operations: [
            .health, .readiness, .engineInfo, .listModels, .loadLoRAAdapter, .unloadLoRAAdapter, .sleep, .wake, .resetCache,
            .pause, .resume, .reloadWeights,
        ],
        metricsPath: "/metrics", metricRules: metricRules)

    /// Scheduler labels that split the work: data-parallel ranks and the engine type
    /// (unified, prefill or decode: one per instance). Summed for counts.
    private static let partitions = "dp_rank,engine_type"
    /// Scheduler labels whose series repeat one batch: with --enable-metrics-for-all-schedulers
    /// every TP rank of a DP group reports it, and under DP-attention the recording rank's
    /// `tp_rank` is the group leader's global rank, not 0 (`sglang/srt/observability/
    /// metrics_collector.py:1350-1410`): the maximum is taken over them, never a filter on 0.
    private static let replicas = "tp_rank,pp_rank,moe_ep_rank"
    /// With priority scheduling the request gauges add one series per priority beside the total
    /// (`priority=""`, `mc:1417-1426`): the total is their maximum, so `priority` is maxed too.
    private static let requestReplicas = replicas + ",priority"
    /// Tokenizer labels that split requests: summed.
    private static let requestSplits = "is_streaming,engine_type"

    /// SGLang's metrics in the standard set (docs/metrics.md).
    static let metricRules: [MetricRuleSpec] = [
        MetricRuleSpec(
            .gauge, "sglang:num_running_reqs", "llm_engine_requests_running", aggregate: .sum, over: partitions,
            duplicates: requestReplicas),
        MetricRuleSpec(
            .gauge, "sglang:num_queue_reqs", "llm_engine_requests_waiting", aggregate: .sum, over: partitions,
            duplicates: requestReplicas),
        MetricRuleSpec(.gauge, "sglang:token_usage", "llm_engine_kv_cache_usage_ratio", aggregate: .max, over: partitions + "," + replicas),
        // 0.5.4: one info series; 0.5.23 dropped it for two gauges, joined into one series.
        MetricRuleSpec(
            .gauge, "sglang:cache_config_info", "llm_engine_kv_cache_config_info", aggregate: .max,
            rename: "page_size=block_size,num_pages=num_blocks", keep: "block_size,num_blocks,model_name"),
        MetricRuleSpec(
            .gauge, "sglang:page_size", "llm_engine_kv_cache_config_info", aggregate: .max, keep: "model_name", valueLabel: "block_size"),
        MetricRuleSpec(
            .gauge, "sglang:num_pages", "llm_engine_kv_cache_config_info", aggregate: .max, keep: "model_name", valueLabel: "num_blocks"),
        MetricRuleSpec(
            .histogram, "sglang:time_to_first_token_seconds", "llm_engine_time_to_first_token_seconds", aggregate: .sum, over: requestSplits),
        MetricRuleSpec(
            .histogram, "sglang:inter_token_latency_seconds", "llm_engine_inter_token_latency_seconds", aggregate: .sum, over: requestSplits),
        MetricRuleSpec(
            .histogram, "sglang:e2e_request_latency_seconds", "llm_engine_e2e_request_latency_seconds", aggregate: .sum, over: requestSplits),
        MetricRuleSpec(
            .histogram, "sglang:queue_time_seconds", "llm_engine_request_queue_time_seconds", aggregate: .sum, over: partitions,
            duplicates: replicas),
        MetricRuleSpec(.counter, "sglang:prompt_tokens_total", "llm_engine_prompt_tokens", aggregate: .sum, over: requestSplits),
        MetricRuleSpec(.counter, "sglang:generation_tokens_total", "llm_engine_generation_tokens", aggregate: .sum, over: requestSplits),
        MetricRuleSpec(
            .counter, "sglang:num_requests_total", "llm_engine_requests_finished", aggregate: .sum, over: requestSplits,
            set: "reason=completed"),
        MetricRuleSpec(
            .counter, "sglang:num_aborted_requests_total", "llm_engine_requests_finished", aggregate: .sum, over: requestSplits,
            set: "reason=abort"),
        // SGLang has no prefix-cache query counter: every prompt token is a lookup.
        MetricRuleSpec(.counter, "sglang:prompt_tokens_total", "llm_engine_prefix_cache_queries", aggregate: .sum, over: requestSplits),
        // Per request one source (device, host, storage, or total without a breakdown).
        MetricRuleSpec(
            .counter, "sglang:cached_tokens_total", "llm_engine_prefix_cache_hits", aggregate: .sum, over: "cache_source,engine_type"),
        MetricRuleSpec(
            .counter, "sglang:num_retracted_requests_total", "llm_engine_preemptions", aggregate: .sum, over: partitions,
            duplicates: replicas),
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
            let (ok, reason) = try deep ? engine.probe("/health_generate", in: call) : liveness(call)
            return try DriverJSON.encode(HealthAnswer(healthy: ok, reason: reason))
        case .readiness:
            let (ok, reason) = try readiness(call)
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
            return try sleep(try request.decode(SleepRequest.self), call)
        case .wake:
            struct Wake: Decodable { var tags: [String]? }
            let tags = try Self.checkedTags(try request.decode(Wake.self).tags)
            return try memoryOccupation("/resume_memory_occupation", tags: tags, done: "SGLang resumed its GPU memory", call)
        case .resetCache:
            struct Reset: Decodable { var cache: String? }
            return try flushCache(try request.decode(Reset.self).cache ?? "prefix", call)
        case .pause:
            return try pause(try request.decode(PauseRequest.self), call)
        case .resume:
            let reply = try engine.post("/continue_generation", json: [String: String](), in: call, management: true)
            guard reply.status == 200 else { throw failure(reply, doing: "continue generation") }
            return try DriverJSON.encode(MessageAnswer(message: "SGLang continued generation"))
        case .reloadWeights:
            return try reloadWeights(try request.decode(ReloadRequest.self), call)
        default:
            throw .unsupported("the SGLang driver does not implement this operation")
        }
    }

    // MARK: Probes and information

    /// Liveness without a generation: 0.5.23's `/ping` is 200 while healthy, paused included,
    /// and needs the API key (`hs:2190-2199`); `/health` generates one token by default
    /// (`hs:721-798`) and times out while paused. Before 0.5.23 `/health` is the only probe.
    private func liveness(_ call: CallScope) throws(DriverFailure) -> (ok: Bool, reason: String?) {
        try engine.probe("/ping", orIfMissing: "/health", in: call)
    }

    /// Readiness: 0.5.23's `/ready` is 200 once started and not paused, without a generation
    /// (`hs:714-718`).
    private func readiness(_ call: CallScope) throws(DriverFailure) -> (ok: Bool, reason: String?) {
        try engine.probe("/ready", orIfMissing: "/health", in: call)
    }

    /// GET of a renamed route: the 0.5.23 name, then the old one on a missing route.
    private func get(_ path: String, old: String, _ call: CallScope) throws(DriverFailure) -> CallScope.Reply {
        let reply = try engine.get(path, in: call)
        return EngineClient.isMissingRoute(reply) ? try engine.get(old, in: call) : reply
    }

    private func engineInfo(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct ServerInfo: Decodable { var version: String? }
        struct ModelInfo: Decodable {
            var model_path: String?
            var served_model_name: String?
            var is_generation: Bool?
            var weight_version: String?
        }
        struct Answer: Encodable {
            var engine = "sglang"
            var version: String?
            var model_path: String?
            var served_model_name: String?
            var is_generation: Bool?
            var weight_version: String?
            var endpoint: String
            /// `GET /v1/loads?include=core` (0.5.23): per data-parallel rank running and
            /// waiting requests, token usage, throughput. nil on engines without it.
            var load: JSONValue?
        }
        let server = try get("/server_info", old: "/get_server_info", call)
        guard server.status == 200 else { throw failure(server, doing: "read server info") }
        let model = try get("/model_info", old: "/get_model_info", call)
        guard model.status == 200 else { throw failure(model, doing: "read model info") }
        let loads = try engine.get("/v1/loads?include=core", in: call)
        let modelInfo = model.decode(ModelInfo.self)
        return try DriverJSON.encode(
            Answer(
                version: server.decode(ServerInfo.self)?.version, model_path: modelInfo?.model_path,
                served_model_name: modelInfo?.served_model_name, is_generation: modelInfo?.is_generation,
                weight_version: modelInfo?.weight_version, endpoint: engine.endpoint,
                load: loads.status == 200 ? loads.decode(JSONValue.self) : nil))
    }

    // MARK: LoRA adapters

    private struct LoadAdapterRequest: Codable {
        var lora_name: String
        var lora_path: String
        var pinned: Bool?
    }

    private struct UnloadAdapterRequest: Codable { var lora_name: String }

    private struct LoRAUpdateOutput: Decodable {
        var success: Bool?
        var error_message: String?
        /// name -> path: a string since 0.5.x (`sglang/srt/lora/lora_manager.py:267-277`), an
        /// object `{lora_name, lora_path, pinned}` before.
        var loaded_adapters: [String: String]?

        enum Keys: String, CodingKey { case success, error_message, loaded_adapters }
        private struct Reference: Decodable { var lora_path: String? }
        private enum PathOrReference: Decodable {
            case path(String), reference(Reference)
            init(from decoder: any Decoder) throws {
                if let path = try? decoder.singleValueContainer().decode(String.self) { self = .path(path) } else {
                    self = .reference(try Reference(from: decoder))
                }
            }
            var path: String? {
                switch self {
                case .path(let path): path
                case .reference(let reference): reference.lora_path
                }
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            success = try? container.decodeIfPresent(Bool.self, forKey: .success)
            error_message = try? container.decodeIfPresent(String.self, forKey: .error_message)
            loaded_adapters = (try? container.decodeIfPresent([String: PathOrReference].self, forKey: .loaded_adapters))?
                .compactMapValues(\.path)
        }
    }

    private static let loraOffHint = "SGLang was started without LoRA: add --enable-lora (or --lora-paths)"

    private func loadAdapter(_ request: LoadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty, !request.lora_path.isEmpty else {
            throw .invalidArgument("lora_name and lora_path must not be empty")
        }
        let reply = try engine.post("/load_lora_adapter", json: request, in: call, management: true)
        let output = reply.decode(LoRAUpdateOutput.self)
        if reply.status == 200, output?.success != false {
            return try DriverJSON.encode(MessageAnswer(message: "LoRA adapter '\(request.lora_name)' loaded from '\(request.lora_path)'"))
        }
        let message = output?.error_message ?? EngineClient.errorMessage(reply)
        let lowered = message.lowercased()
        if lowered.contains("lora is not enabled") { throw .unsupported("\(Self.loraOffHint): \(message)", upstream: Int32(reply.status)) }
        if lowered.contains("already loaded") || lowered.contains("already been loaded") {
            // The failed answer still lists what is loaded: the same path is a repeat (success).
            if output?.loaded_adapters?[request.lora_name] == request.lora_path {
                return try DriverJSON.encode(
                    MessageAnswer(message: "LoRA adapter '\(request.lora_name)' is already loaded from '\(request.lora_path)'"))
            }
            throw .conflict(message, upstream: Int32(reply.status))
        }
        if lowered.contains("incomplete unload") { throw .conflict(message, upstream: Int32(reply.status)) }
        if reply.status == 400 {
            // A path that is not a directory is tried as a Hugging Face repo id
            // (`sglang/srt/lora/lora_config.py:79-80`), so a missing local path reads as a bad
            // repo id or an unknown repository.
            let missing = ["not found", "does not exist", "no such file", "repo id must be", "repository not found", "is not a directory"]
            if missing.contains(where: lowered.contains) {
                throw .notFound("SGLang cannot find adapter '\(request.lora_name)' at \(request.lora_path): \(message)", upstream: 400)
            }
            throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, "SGLang refused the adapter: \(message)", upstreamHTTPStatus: 400)
        }
        throw failure(reply, doing: "load LoRA adapter '\(request.lora_name)'")
    }

    private func unloadAdapter(_ request: UnloadAdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty else { throw .invalidArgument("lora_name must not be empty") }
        let reply = try engine.post("/unload_lora_adapter", json: request, in: call, management: true)
        let output = reply.decode(LoRAUpdateOutput.self)
        if reply.status == 200, output?.success != false {
            return try DriverJSON.encode(MessageAnswer(message: "LoRA adapter '\(request.lora_name)' unloaded"))
        }
        let message = output?.error_message ?? EngineClient.errorMessage(reply)
        let lowered = message.lowercased()
        if lowered.contains("lora is not enabled") { throw .unsupported("\(Self.loraOffHint): \(message)", upstream: Int32(reply.status)) }
        if reply.status == 400, lowered.contains("not") && (lowered.contains("loaded") || lowered.contains("found") || lowered.contains("exist")) {
            throw .notFound(message, upstream: 400)
        }
        if reply.status == 400 { throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, message, upstreamHTTPStatus: 400) }
        throw failure(reply, doing: "unload LoRA adapter '\(request.lora_name)'")
    }

    // MARK: Memory, pause, cache, weights

    private struct SleepRequest: Decodable {
        var level: Int?
        var mode: String?
        var tags: [String]?
    }

    private static let memoryTags: Set<String> = ["weights", "kv_cache", "cuda_graph"]

    private static func checkedTags(_ tags: [String]?) throws(DriverFailure) -> [String]? {
        guard let tags else { return nil }
        if let bad = tags.first(where: { !memoryTags.contains($0) }) {
            throw .invalidArgument("SGLang memory tag \"\(bad)\" must be weights, kv_cache or cuda_graph")
        }
        return tags
    }

    /// SGLang has no sleep levels: a sleep releases the tagged memory (all of it without
    /// tags), and the scheduler requires the server to be idle or paused.
    private func sleep(_ request: SleepRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        if request.level == 0 {
            throw .unsupported("SGLang has no sleep level 0 (pause without freeing memory): use POST /v1/pause")
        }
        if let level = request.level, ![1, 2].contains(level) { throw .invalidArgument("sleep level must be 0, 1 or 2") }
        if request.mode != nil {
            throw .unsupported("SGLang's release_memory_occupation has no mode (it needs an idle or paused server): pause first with POST /v1/pause")
        }
        return try memoryOccupation(
            "/release_memory_occupation", tags: try Self.checkedTags(request.tags), done: "SGLang released its GPU memory", call)
    }

    /// Sleep and wake: release or resume GPU memory (weights, KV cache, CUDA graphs).
    private func memoryOccupation(_ path: String, tags: [String]?, done: String, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Body: Encodable { var tags: [String]? }
        let reply = try engine.post(path, json: Body(tags: tags), in: call, management: true)
        guard reply.status == 200 else {
            if reply.status == 400 {
                throw .conflict(
                    "SGLang did not change its memory: it must be idle or paused (POST /v1/pause first): \(EngineClient.errorMessage(reply))",
                    upstream: 400)
            }
            throw engine.failure(reply, doing: path, missingRoute: "this SGLang build has no \(path) route")
        }
        return try DriverJSON.encode(MessageAnswer(message: done + (tags.map { " (\($0.joined(separator: ", ")))" } ?? "")))
    }

    private struct PauseRequest: Decodable { var mode: String? }

    /// `mode`: abort (drop requests in flight), retract (back to the queue, the default here so
    /// nothing is dropped unless asked) or in_place (`sglang/srt/managers/io_struct.py:1927-1946`).
    /// While paused new requests are held, not refused, and `/ready` is 503.
    private func pause(_ request: PauseRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let mode = request.mode ?? "retract"
        guard ["abort", "retract", "in_place"].contains(mode) else {
            throw .invalidArgument("SGLang pause mode \"\(mode)\" must be abort, retract or in_place")
        }
        struct Body: Encodable { var mode: String }
        let reply = try engine.post("/pause_generation", json: Body(mode: mode), in: call, management: true)
        guard reply.status == 200 else { throw failure(reply, doing: "pause generation") }
        return try DriverJSON.encode(MessageAnswer(message: "SGLang paused generation (mode \(mode))"))
    }

    /// `/flush_cache` empties the radix (prefix) cache and refuses (HTTP 400) while requests are
    /// running or waiting: a conflict the caller can retry. SGLang has no route for the other
    /// caches.
    private func flushCache(_ cache: String, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        switch cache {
        case "prefix", "all": break
        case "multimodal", "encoder": throw .unsupported("SGLang has no route to reset its \(cache) cache; only the prefix cache (/flush_cache)")
        default: throw .invalidArgument("cache \"\(cache)\" must be prefix, multimodal, encoder or all")
        }
        let reply = try engine.post("/flush_cache", json: [String: String](), in: call, management: true)
        if reply.status == 400 {
            throw .conflict("SGLang did not flush its cache: requests are running or waiting; retry later", upstream: 400)
        }
        guard reply.status == 200 else { throw failure(reply, doing: "flush the cache") }
        return try DriverJSON.encode(MessageAnswer(message: "SGLang cache flushed"))
    }

    private struct ReloadRequest: Decodable {
        var model_path: String?
        var load_format: String?
        var weight_version: String?
    }

    /// `/update_weights_from_disk` (`hs:1300-1326`): the path given, or the model's own path
    /// (a reload of changed files). Requests in flight are not aborted (the engine pauses and
    /// resumes them).
    private func reloadWeights(_ request: ReloadRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct ModelInfo: Decodable { var model_path: String? }
        var path = request.model_path
        if path == nil {
            let model = try get("/model_info", old: "/get_model_info", call)
            path = model.decode(ModelInfo.self)?.model_path
        }
        guard let path, !path.isEmpty else { throw .invalidArgument("model_path is required: the engine did not say which path it serves") }
        struct Body: Encodable {
            var model_path: String
            var load_format: String?
            var weight_version: String?
            var abort_all_requests = false
        }
        struct Output: Decodable {
            var success: Bool?
            var message: String?
        }
        let reply = try engine.post(
            "/update_weights_from_disk", json: Body(model_path: path, load_format: request.load_format, weight_version: request.weight_version),
            in: call, management: true)
        let output = reply.decode(Output.self)
        if reply.status == 200, output?.success != false {
            return try DriverJSON.encode(MessageAnswer(message: "SGLang reloaded its weights from \(path)"))
        }
        let message = output?.message ?? EngineClient.errorMessage(reply)
        if reply.status == 400 { throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, "SGLang did not reload its weights: \(message)", upstreamHTTPStatus: 400) }
        throw failure(reply, doing: "reload weights")
    }

    private func failure(_ reply: CallScope.Reply, doing what: String) -> DriverFailure {
        engine.failure(reply, doing: what)
    }
}

// MARK: C ABI export

let sglangExport = DriverExport(
    info: SGLangInstance.info,
    create: { config, out, error in DriverExport.createInstance(of: SGLangInstance.self, config: config, out: out, error: error) },
    planLaunch: sglangPlanLaunch)

@_cdecl("ert_driver_entry_v1")
public func ert_driver_entry_v1(
    _ host: UnsafePointer<ert_host_info>?, _ error: UnsafeMutablePointer<ert_error>?
) -> UnsafePointer<ert_driver_descriptor>? {
    sglangExport.entry(host: host, error: error)
}

/// Fails to compile if the exported function drifts from the header's typedef.
private let entrySignatureCheck: ert_driver_entry_v1_fn = ert_driver_entry_v1

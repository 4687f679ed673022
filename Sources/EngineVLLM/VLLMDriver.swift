import EngineDriverKit
import PluginABI

/// The vLLM driver: management through vLLM's OpenAI-compatible server.
///
/// Follows vLLM 0.33 (routes, codes and bodies in the engine reference, cited below as
/// `vllm/...:line` of the released wheel) and keeps working with 0.11: where a route or body
/// changed, both forms are read.
final class VLLMInstance: EngineDriverInstance {
    static let info = DriverInfo(
        name: "vllm", version: "0.2.0", summary: "vLLM OpenAI-compatible server (vllm serve), 0.11 to 0.33",
        engineKinds: ["vllm"],
        capabilities: UInt64(ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC | ERT_CAP_SLEEP | ERT_CAP_PROMETHEUS),
        configSchemaJSON: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        operations: [
            .health, .readiness, .engineInfo, .listModels, .loadLoRAAdapter, .unloadLoRAAdapter, .sleep, .wake, .resetCache,
            .pause, .resume, .reloadWeights,
        ],
        metricsPath: "/metrics", metricRules: metricRules)

    /// vLLM's metrics in the standard set (docs/metrics.md). vLLM's `engine` label is the
    /// data-parallel rank (one EngineCore per DP rank reports for its whole TP x PP group, so
    /// there is no replica label): counts are summed over it, ratios take the maximum. Names
    /// removed before 0.33 (`gpu_cache_usage_perc`, `time_per_output_token_seconds`) were
    /// already hidden in 0.11 and have no rule.
    static let metricRules: [MetricRuleSpec] = [
        MetricRuleSpec(.gauge, "vllm:num_requests_running", "llm_engine_requests_running", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.gauge, "vllm:num_requests_waiting", "llm_engine_requests_waiting", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.gauge, "vllm:kv_cache_usage_perc", "llm_engine_kv_cache_usage_ratio", aggregate: .max, over: "engine"),
        // An info series with every CacheConfig field as a label (~40 in 0.33,
        // `vllm/v1/metrics/loggers.py:1114-1138`): only the two the standard set names stay.
        MetricRuleSpec(
            .gauge, "vllm:cache_config_info", "llm_engine_kv_cache_config_info", aggregate: .max,
            rename: "num_gpu_blocks=num_blocks", keep: "block_size,num_blocks"),
        MetricRuleSpec(.histogram, "vllm:time_to_first_token_seconds", "llm_engine_time_to_first_token_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:inter_token_latency_seconds", "llm_engine_inter_token_latency_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:e2e_request_latency_seconds", "llm_engine_e2e_request_latency_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.histogram, "vllm:request_queue_time_seconds", "llm_engine_request_queue_time_seconds", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:prompt_tokens_total", "llm_engine_prompt_tokens", aggregate: .sum, over: "engine"),
        MetricRuleSpec(.counter, "vllm:generation_tokens_total", "llm_engine_generation_tokens", aggregate: .sum, over: "engine"),
        // finished_reason: stop, length, abort, and since 0.33 error and repetition.
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
        case .resetCache: return try resetCache(try request.decode(ResetRequest.self), call)
        case .pause: return try pause(try request.decode(PauseRequest.self), call)
        case .resume: return try resume(call)
        case .reloadWeights:
            // The weight routes of 0.33 (`vllm/entrypoints/rl/online/api_router.py:162-214`) take
            // tensors from a trainer over a transfer engine, not a path on disk.
            throw .unsupported(
                "vLLM has no route that reloads weights from a disk path (its weight-update routes take tensors from an RL trainer); restart the engine with the new weights, or use SGLang's update_weights_from_disk")
        default: throw .unsupported("the vLLM driver does not implement this operation")
        }
    }

    // MARK: Health

    /// vLLM's `/health` is cheap (no generation): 200 with an empty body while the engine loop
    /// lives, 503 when it died; the server does not listen until the model is loaded
    /// (`vllm/entrypoints/serve/instrumentator/health.py:22-33`). It stays 200 while asleep or
    /// paused, which is right for both probes: the engine is alive and can be woken.
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
        struct Paused: Decodable { var is_paused: Bool }
        struct Answer: Encodable {
            var engine = "vllm"
            var version: String?
            var endpoint: String
            /// nil when the development routes are off. True while paused too (0.33).
            var is_sleeping: Bool?
            /// nil when the development routes are off or the engine predates /is_paused.
            var is_paused: Bool?
            /// `GET /load`: `{"server_load": in-flight requests}` (it only moves with
            /// --enable-server-load-tracking); nil when the engine has no /load.
            var load: JSONValue?
        }
        let reply = try engine.get("/version", in: call)
        guard reply.status == 200, let version = reply.decode(Version.self) else {
            throw .upstream("vLLM /version answered HTTP \(reply.status): \(EngineClient.errorMessage(reply))", status: Int32(reply.status))
        }
        let sleeping = try engine.get("/is_sleeping", in: call)
        let paused = try engine.get("/is_paused", in: call)
        let load = try engine.get("/load", in: call)
        return try DriverJSON.encode(
            Answer(
                version: version.version, endpoint: engine.endpoint,
                is_sleeping: sleeping.status == 200 ? sleeping.decode(Sleeping.self)?.is_sleeping : nil,
                is_paused: paused.status == 200 ? paused.decode(Paused.self)?.is_paused : nil,
                load: load.status == 200 ? load.decode(JSONValue.self) : nil))
    }

    // MARK: Sleep, wake, pause, cache (vLLM's development routes)

    private struct SleepRequest: Decodable {
        var level: Int?
        var mode: String?
        var tags: [String]?
    }
    private struct WakeRequest: Decodable { var tags: [String]? }
    private struct PauseRequest: Decodable { var mode: String? }
    private struct ResetRequest: Decodable { var cache: String? }

    /// What `/sleep` and `/wake_up` answer since 0.33 (they were empty before).
    private struct SleepState: Decodable {
        var status: String?
        var level: Int?
        var tags: [String]?
    }

    /// The answer of sleep and wake: the engine's own state, and a line for humans.
    private struct StateAnswer: Encodable {
        var message: String
        var status: String
        var level: Int?
        var tags: [String]?
    }

    private static let devModeHint = "start vLLM with VLLM_SERVER_DEV_MODE=1 (and --enable-sleep-mode for sleep and wake)"

    /// vLLM's modes for what happens to requests in flight (`/sleep` and `/pause`): the engine
    /// defaults to `abort`; the driver to `wait`, so no request is dropped unless asked.
    private static let modes: Set<String> = ["abort", "wait", "keep"]

    private static func checkedMode(_ mode: String?) throws(DriverFailure) -> String {
        let mode = mode ?? "wait"
        guard modes.contains(mode) else { throw .invalidArgument("vLLM mode \"\(mode)\" must be abort, wait or keep") }
        return mode
    }

    private static func checkedTags(_ tags: [String]) throws(DriverFailure) -> [String] {
        if let bad = tags.first(where: { tag in tag.isEmpty || !tag.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F } }) {
            throw .invalidArgument("tag \"\(bad)\" must match [a-z_]+ (vLLM's are weights, kv_cache, scheduling)")
        }
        return tags
    }

    /// Level 0 pauses scheduling only, 1 offloads weights and drops the KV cache, 2 drops all
    /// (`vllm/v1/engine/core.py:993-1029`). `tags: ["kv_cache"]` frees only the KV cache
    /// (`/release_kv_cache_memory`, 0.33), which the engine allows only after a pause.
    private func sleep(_ request: SleepRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        if let tags = request.tags {
            guard try Self.checkedTags(tags) == ["kv_cache"], request.level == nil, request.mode == nil else {
                throw .invalidArgument("vLLM frees memory by tag only as tags [\"kv_cache\"] alone (release_kv_cache_memory); use level 0-2 otherwise")
            }
            let reply = try engine.post("/release_kv_cache_memory", in: call)
            guard reply.status == 200 else {
                if reply.status == 500 {
                    throw .conflict(
                        "vLLM did not release its KV cache: it does so only once generation is paused and all memory is resident (POST /v1/pause first): \(EngineClient.errorMessage(reply))",
                        upstream: 500)
                }
                throw engine.failure(reply, doing: "release the KV cache", missingRoute: "this vLLM has no /release_kv_cache_memory route (0.33 and later, with VLLM_SERVER_DEV_MODE=1)")
            }
            return try DriverJSON.encode(StateAnswer(message: "vLLM released its KV-cache memory", status: "sleeping", tags: ["kv_cache"]))
        }
        let level = request.level ?? 1
        guard (0...2).contains(level) else { throw .invalidArgument("vLLM sleep level must be 0, 1 or 2") }
        let mode = try Self.checkedMode(request.mode)
        let reply = try engine.post("/sleep?level=\(level)&mode=\(mode)", in: call)
        guard reply.status == 200 else {
            if reply.status == 400 || reply.status == 422, level == 0 {
                // 0.11 knows levels 1 and 2 only.
                throw .unsupported("this vLLM has no sleep level 0 (0.33 and later): \(EngineClient.errorMessage(reply))", upstream: Int32(reply.status))
            }
            throw engine.failure(reply, doing: "sleep", missingRoute: "vLLM has no /sleep route: \(Self.devModeHint)")
        }
        let state = reply.decode(SleepState.self)
        let what = level == 0 ? "paused its scheduler (level 0)" : "is asleep (level \(level))"
        return try DriverJSON.encode(
            StateAnswer(message: "vLLM \(what), mode \(mode)", status: state?.status ?? "sleeping", level: state?.level ?? level))
    }

    /// A wake with some tags leaves the engine partly asleep: 0.33 answers
    /// `{"status":"sleeping"}` until every tag is resident and the scheduler resumed
    /// (`vllm/v1/engine/core.py:1031-1056`); that is reported as it is.
    private func wake(_ request: WakeRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let tags = try Self.checkedTags(request.tags ?? [])
        let query = tags.isEmpty ? "" : "?" + tags.map { "tags=\($0)" }.joined(separator: "&")
        let reply = try engine.post("/wake_up" + query, in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "wake up", missingRoute: "vLLM has no /wake_up route: \(Self.devModeHint)")
        }
        let state = reply.decode(SleepState.self)
        let status = state?.status ?? "awake"
        let message =
            status == "awake"
            ? "vLLM is awake"
            : "vLLM is still sleeping: \(tags.joined(separator: ", ")) resident, the rest is not (wake the remaining tags, or wake without tags)"
        return try DriverJSON.encode(StateAnswer(message: message, status: status, tags: state?.tags ?? (tags.isEmpty ? nil : tags)))
    }

    /// `POST /pause?mode=`: in abort and wait modes new requests get 503 until resumed; keep
    /// queues them (`vllm/entrypoints/rl/online/api_router.py:31-75`).
    private func pause(_ request: PauseRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let mode = try Self.checkedMode(request.mode)
        let reply = try engine.post("/pause?mode=\(mode)", in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "pause generation", missingRoute: "this vLLM has no /pause route (0.33 has it with VLLM_SERVER_DEV_MODE=1)")
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM paused generation (mode \(mode))"))
    }

    private func resume(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let reply = try engine.post("/resume", in: call)
        guard reply.status == 200 else {
            throw engine.failure(reply, doing: "resume generation", missingRoute: "this vLLM has no /resume route (0.33 has it with VLLM_SERVER_DEV_MODE=1)")
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM resumed generation"))
    }

    /// `cache`: prefix (default), multimodal, encoder or all. `{"success":false}` from the
    /// prefix reset means blocks are still in use by running requests: a conflict the caller
    /// can retry.
    private func resetCache(_ request: ResetRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let routes: [(cache: String, path: String)] = [
            ("prefix", "/reset_prefix_cache"), ("multimodal", "/reset_mm_cache"), ("encoder", "/reset_encoder_cache"),
        ]
        let cache = request.cache ?? "prefix"
        let chosen = cache == "all" ? routes : routes.filter { $0.cache == cache }
        guard !chosen.isEmpty else { throw .invalidArgument("cache \"\(cache)\" must be prefix, multimodal, encoder or all") }
        for (name, path) in chosen {
            struct Answer: Decodable { var success: Bool? }
            let reply = try engine.post(path, in: call)
            guard reply.status == 200 else {
                throw engine.failure(reply, doing: "reset the \(name) cache", missingRoute: "vLLM has no \(path) route: \(Self.devModeHint)")
            }
            if reply.decode(Answer.self)?.success == false {
                throw .conflict("vLLM did not reset the \(name) cache: blocks are still in use by running requests; retry later", upstream: 200)
            }
        }
        return try DriverJSON.encode(MessageAnswer(message: "vLLM \(chosen.map(\.cache).joined(separator: ", ")) cache reset"))
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
        if reply.status == 400, message.contains("conflicts with a served base model") {
            throw .conflict(message, upstream: 400)
        }
        if reply.status == 500 {
            // 0.33 answers every engine-side failure with 500 InternalServerError
            // (`vllm/entrypoints/openai/models/serving.py:209-213`), LoRA switched off included.
            if message.contains("LoRA is not enabled") {
                throw .unsupported("vLLM was started without LoRA: add --enable-lora (and VLLM_ALLOW_RUNTIME_LORA_UPDATING=1): \(message)", upstream: 500)
            }
            // The worker's checks of the adapter itself (rank, target modules, shapes) name it.
            let lowered = message.lowercased()
            if lowered.contains("lora") || lowered.contains("adapter") || lowered.contains("rank") {
                throw DriverFailure(ERT_STATUS_INVALID_ARGUMENT, "vLLM refused the adapter: \(message)", upstreamHTTPStatus: 500)
            }
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
            missingRoute: "vLLM has no route to \(what): start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=1")
    }
}

// MARK: C ABI export

let vllmExport = DriverExport(
    info: VLLMInstance.info,
    create: { config, out, error in DriverExport.createInstance(of: VLLMInstance.self, config: config, out: out, error: error) },
    planLaunch: vllmPlanLaunch)

@_cdecl("ert_driver_entry_v1")
public func ert_driver_entry_v1(
    _ host: UnsafePointer<ert_host_info>?, _ error: UnsafeMutablePointer<ert_error>?
) -> UnsafePointer<ert_driver_descriptor>? {
    vllmExport.entry(host: host, error: error)
}

/// Fails to compile if the exported function drifts from the header's typedef.
private let entrySignatureCheck: ert_driver_entry_v1_fn = ert_driver_entry_v1

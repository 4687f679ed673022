/// The vendor-neutral metric set (docs/metrics.md): names, types and help, in output order.
enum StandardMetrics {
    struct Definition {
        let name: String
        let type: String
        let help: String
    }

    static let definitions: [Definition] = [
        Definition(name: "llm_engine_up", type: "gauge", help: "1 if the last scrape of the engine succeeded, else 0."),
        Definition(name: "llm_engine_scrape_duration_seconds", type: "gauge", help: "Duration of the last scrape of the engine."),
        Definition(name: "llm_engine_requests_running", type: "gauge", help: "Requests being served now."),
        Definition(name: "llm_engine_requests_waiting", type: "gauge", help: "Requests queued."),
        Definition(name: "llm_engine_kv_cache_usage_ratio", type: "gauge", help: "KV-cache utilisation, 0..1."),
        Definition(name: "llm_engine_kv_cache_config_info", type: "gauge", help: "KV-cache configuration (labels block_size, num_blocks); value 1."),
        Definition(name: "llm_engine_time_to_first_token_seconds", type: "histogram", help: "Time to first token."),
        Definition(name: "llm_engine_inter_token_latency_seconds", type: "histogram", help: "Time between output tokens."),
        Definition(name: "llm_engine_e2e_request_latency_seconds", type: "histogram", help: "End-to-end request latency."),
        Definition(name: "llm_engine_request_queue_time_seconds", type: "histogram", help: "Time requests spent waiting."),
        Definition(name: "llm_engine_prompt_tokens", type: "counter", help: "Prompt tokens processed."),
        Definition(name: "llm_engine_generation_tokens", type: "counter", help: "Tokens generated."),
        Definition(name: "llm_engine_requests_finished", type: "counter", help: "Finished requests by reason."),
        Definition(name: "llm_engine_prefix_cache_queries", type: "counter", help: "Prefix-cache lookups, in tokens."),
        Definition(name: "llm_engine_prefix_cache_hits", type: "counter", help: "Prefix-cache hits, in tokens."),
        Definition(name: "llm_engine_preemptions", type: "counter", help: "Preempted or retracted requests."),
        Definition(name: "llm_engine_lora_requests_info", type: "gauge", help: "Running and waiting LoRA adapters (value: last update, unix seconds)."),
        Definition(name: "llm_engine_lora_adapters_loaded", type: "gauge", help: "LoRA adapters currently loaded."),
        Definition(name: "llm_engine_sleep_state", type: "gauge", help: "Sleep state (label state: awake, sleeping), 0 or 1."),
    ]

    static let byName: [String: Definition] = Dictionary(uniqueKeysWithValues: definitions.map { ($0.name, $0) })
    static let order: [String: Int] = Dictionary(uniqueKeysWithValues: definitions.enumerated().map { ($1.name, $0) })
}

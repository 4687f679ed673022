/// The names the AIBrix Python sidecar exposed, for `ENGINE_RUNTIME_METRICS_MODE=aibrix`: its
/// renames of the engine's series (aibrix/metrics/engine_rules.py, aibrix-contract.md §3.2)
/// beside the originals and the standard set, so a migration keeps its AIBrix dashboards.
///
/// Renames are sample by sample: a counter rule names the sample (`vllm:prompt_tokens_total`),
/// a histogram rule the family, whose `_bucket`, `_sum` and `_count` samples follow. The Python
/// sidecar keyed counter rules by the `_total` name but matched them against the family name
/// its parser had stripped `_total` from, so they never fired there; here they do.
enum AIBrixMetrics {
    /// (engine's name, AIBrix's name), per engine kind. Passthrough rules add nothing (the
    /// originals are in the output anyway) and are left out.
    static let renames: [String: [(String, String)]] = [
        "vllm": [
            ("vllm:num_requests_waiting", "aibrix:queue_size"),
            ("vllm:gpu_cache_usage_perc", "aibrix:gpu_cache_usage_perc"),
            ("vllm:kv_cache_usage_perc", "aibrix:kv_cache_usage_perc"),
            ("vllm:prompt_tokens_total", "aibrix:prompt_tokens_total"),
            ("vllm:generation_tokens_total", "aibrix:generation_tokens_total"),
            ("vllm:time_to_first_token_seconds", "aibrix:time_to_first_token_seconds"),
            ("vllm:time_per_output_token_seconds", "aibrix:time_per_output_token_seconds"),
            ("vllm:e2e_request_latency_seconds", "aibrix:e2e_request_latency_seconds"),
            ("vllm:request_success_total", "aibrix:request_success_total"),
        ],
        "sglang": [
            ("sglang:num_queue_reqs", "aibrix:queue_size"),
            ("sglang:gen_throughput", "aibrix:generation_throughput"),
            ("sglang:prompt_tokens_total", "aibrix:prompt_tokens_total"),
            ("sglang:generation_tokens_total", "aibrix:generation_tokens_total"),
            ("sglang:time_to_first_token_seconds", "aibrix:time_to_first_token_seconds"),
            ("sglang:time_per_output_token_seconds", "aibrix:time_per_output_token_seconds"),
            ("sglang:e2e_request_latency_seconds", "aibrix:e2e_request_latency_seconds"),
            ("sglang:cache_hit_rate", "aibrix:cache_hit_rate"),
            ("sglang:token_usage", "aibrix:token_usage"),
        ],
    ]

    private static let histogramSuffixes = ["_bucket", "_sum", "_count"]

    /// The renamed families of one engine's exposition, labels kept as they are.
    static func renamed(_ exposition: PrometheusExposition, kind: String) -> [MetricStandardizer.Family] {
        guard let rules = renames[kind] else { return [] }
        var families: [MetricStandardizer.Family] = []
        for (source, target) in rules {
            var family: MetricStandardizer.Family?
            for sample in exposition.samples {
                let name = exposition.text(sample.name)
                let (wire, type) = exposition.wireFamily(of: sample)
                let suffix: String
                if name == source {
                    suffix = ""
                } else if type == "histogram", exposition.text(wire) == source,
                    let found = histogramSuffixes.first(where: { name == source + $0 })
                {
                    suffix = found
                } else {
                    continue
                }
                if family == nil { family = MetricStandardizer.Family(name: target, type: type, samples: []) }
                let labels = exposition.labels(of: sample).map { (exposition.text($0.name), exposition.unescapedValue($0)) }
                family!.samples.append((target + suffix, labels, sample.value))
            }
            if let family { families.append(family) }
        }
        return families
    }

    /// `aibrix:info_info{version, engine, engine_version} 1` (a prometheus_client Info).
    static func info(engines: [(kind: String, version: String?)]) -> MetricStandardizer.Family {
        MetricStandardizer.Family(
            name: "aibrix:info_info", type: "gauge",
            samples: engines.map { engine in
                ("aibrix:info_info", [("engine", engine.kind), ("engine_version", engine.version ?? ""), ("version", EngineRuntimeVersion.current)], 1)
            })
    }
}

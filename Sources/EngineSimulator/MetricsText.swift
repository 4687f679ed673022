/// Prometheus expositions shaped like the real engines' (names, types, labels, `_created`
/// samples, histograms). Values come from the knobs; `metrics_bytes` adds data-parallel ranks
/// (whose gauges and counters are zero, so sums stay equal to the knobs) until the text is
/// that large.
enum MetricsText {
    // MARK: vLLM (vllm/v1/metrics/loggers.py of 0.33.0, cited as lg:line)

    static func vllm(settings: SimulatorSettings, state: SimulatorState) -> String {
        let knobs = state.knobs
        let (sleep, adapters) = state.withEngine { (($0.sleepLevel, $0.asleep), $0.adapterOrder) }
        var out = Exposition()
        var rank = 0
        repeat {
            vllmRank(&out, settings: settings, rank: rank, knobs: rank < settings.dataParallelSize ? knobs : nil, sleep: sleep)
            rank += 1
        } while rank < settings.dataParallelSize || out.byteCount < knobs.metrics_bytes
        if settings.profile == .vllmCurrent {
            // Labels model_name and reason only, no engine (lg:847-858).
            for reason in ["max_num_queued_reqs", "max_num_queued_tokens"] {
                counter(&out, "vllm:admission_rejections", "Requests rejected at admission.",
                        "model_name=\"\(settings.model)\",reason=\"\(reason)\"", 0)
            }
        }
        // Not per rank, and without model_name, as in vLLM; the stale series keeps an older timestamp.
        let info = "Running stats on lora requests."
        out.add("vllm:lora_requests_info", info, "gauge",
            #"vllm:lora_requests_info{max_lora="4",running_lora_adapters="",waiting_lora_adapters=""} 1.7643744e+09"#)
        out.add("vllm:lora_requests_info", info, "gauge",
            "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"\(adapters.joined(separator: ","))\",waiting_lora_adapters=\"\"} 1.7643745e+09")
        out.add("http_requests_total", "Total number of requests by method, status and handler.", "counter",
            #"http_requests_total{handler="/v1/completions",method="POST",status="2xx"} 42.0"#)
        return out.text
    }

    private static func vllmRank(
        _ out: inout Exposition, settings: SimulatorSettings, rank: Int, knobs: Knobs?, sleep: (level: Int, asleep: Set<String>)
    ) {
        let current = settings.profile == .vllmCurrent
        let labels = "engine=\"\(rank)\",model_name=\"\(settings.model)\""
        let running = knobs?.running_requests ?? 0
        let waiting = knobs?.waiting_requests ?? 0
        let prompt = knobs?.prompt_tokens_total ?? 0
        let generation = knobs?.generation_tokens_total ?? 0
        let finished = prompt > 0 ? max(1, prompt / 100) : 0
        gauge(&out, "vllm:num_requests_running", "Number of requests in model execution batches.", labels, Double(running))
        gauge(&out, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, Double(waiting))
        if current {
            for reason in ["capacity", "deferred"] {
                gauge(&out, "vllm:num_requests_waiting_by_reason", "Number of requests waiting, by reason.",
                      labels + ",reason=\"\(reason)\"", Double(reason == "capacity" ? waiting : 0))
            }
        }
        gauge(&out, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, running > 0 ? 0.25 : 0)
        // Level 0 sets all three to 0 (lg:1335-1350).
        let awake = sleep.asleep.isEmpty
        for (state, level) in [("awake", 0), ("discard_all", 2), ("weights_offloaded", 1)] {
            let on = state == "awake" ? awake : (!awake && sleep.level == level)
            gauge(&out, "vllm:engine_sleep_state", "Engine sleep state; awake = 1 means the engine is awake.",
                  labels + ",sleep_state=\"\(state)\"", on ? 1 : 0)
        }
        counter(&out, "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, Double(prompt))
        if current {
            counter(&out, "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).", labels, Double(prompt / 2))
        }
        counter(&out, "vllm:generation_tokens", "Number of generation tokens processed.", labels, Double(generation))
        counter(&out, "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", labels, Double(prompt))
        counter(&out, "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", labels, Double(prompt / 2))
        counter(&out, "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, 0)
        // All reasons pre-created; error and repetition are new in 0.33 (lg:807-819).
        for reason in current ? ["abort", "error", "length", "repetition", "stop"] : ["abort", "length", "stop"] {
            counter(&out, "vllm:request_success", "Count of successfully processed requests.",
                    labels + ",finished_reason=\"\(reason)\"", Double(reason == "stop" ? finished : 0))
        }
        histogram(&out, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
            buckets: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0],
            count: finished, mean: 0.05)
        histogram(&out, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels,
            buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0],
            count: generation, mean: 0.02)
        let latencyBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]
        histogram(&out, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", labels,
            buckets: latencyBuckets, count: finished, mean: 1.2)
        histogram(&out, "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", labels,
            buckets: latencyBuckets, count: finished, mean: 0.01)
        // Every CacheConfig.metrics_info() key is a label (lg:1114-1138): many in 0.33.
        let cacheLabels =
            current
            ? "block_size=\"16\",cache_dtype=\"auto\",calculate_kv_scales=\"False\",cpu_kvcache_space_bytes=\"None\",cpu_offload_gb=\"0\",enable_prefix_caching=\"True\",engine=\"\(rank)\",gpu_memory_utilization=\"0.9\",is_attention_free=\"False\",kv_cache_memory_bytes=\"None\",kv_offloading_backend=\"None\",kv_offloading_size=\"None\",kv_sharing_fast_prefill=\"False\",mamba_block_size=\"None\",mamba_cache_dtype=\"auto\",mamba_page_size_padded=\"None\",mamba_ssm_cache_dtype=\"auto\",num_cpu_blocks=\"None\",num_gpu_blocks=\"8192\",num_gpu_blocks_override=\"None\",prefix_caching_hash_algo=\"sha256\",sliding_window=\"None\",swap_space=\"4\",swap_space_bytes=\"4294967296\""
            : "block_size=\"16\",cache_dtype=\"auto\",engine=\"\(rank)\",num_gpu_blocks=\"8192\""
        gauge(&out, "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", cacheLabels, 1)
    }

    // MARK: SGLang (sglang/srt/observability/metrics_collector.py of 0.5.23, cited as mc:line)

    static func sglang(settings: SimulatorSettings, state: SimulatorState) -> String {
        settings.profile == .sglangCurrent ? sglangCurrent(settings: settings, state: state) : sglangPrevious(settings: settings, state: state)
    }

    /// Scheduler series carry engine_type, tp_rank, pp_rank, moe_ep_rank, and dp_rank when the
    /// scheduler has one (mc:1350-1410). Only attention-TP rank 0 of each DP group records,
    /// labelled with its global TP rank, unless every scheduler records (then each TP rank
    /// repeats its group's values). Tokenizer series carry engine_type and, on request-level
    /// series, is_streaming; cached tokens a cache_source (mc:1804-1944).
    private static func sglangCurrent(settings: SimulatorSettings, state: SimulatorState) -> String {
        let knobs = state.knobs
        var out = Exposition()
        let prompt = knobs.prompt_tokens_total
        let finished = prompt > 0 ? max(1, prompt / 100) : 0
        let tp = settings.tensorParallelSize
        var dp = 0
        repeat {
            let active = dp < settings.dataParallelSize
            for t in settings.metricsForAllSchedulers ? Array(0..<tp) : [0] {
                var labels = "engine_type=\"unified\",model_name=\"\(settings.model)\",moe_ep_rank=\"0\",pp_rank=\"0\",tp_rank=\"\(dp * tp + t)\""
                if settings.dataParallelSize > 1 || !active { labels = "dp_rank=\"\(dp)\"," + labels }
                sglangSchedulerGauges(&out, labels, active ? knobs : nil, priorities: settings.priorityScheduling)
                // Constants set once at start-up (mc:1289-1347): cache_config_info is gone.
                gauge(&out, "sglang:page_size", "The page size of the KV cache.", labels, 1)
                gauge(&out, "sglang:num_pages", "The number of pages of the KV cache.", labels, 65536)
                gauge(&out, "sglang:max_total_num_tokens", "The maximum number of tokens in the KV cache.", labels, 65536)
                counter(&out, "sglang:num_retracted_requests", "The number of retracted requests.", labels, 0, created: false)
                histogram(&out, "sglang:queue_time_seconds", "Histogram of queueing time in seconds.", labels,
                    buckets: [0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 1200.0, 1400.0, 1600.0, 1800.0, 2000.0, 2500.0, 3000.0],
                    count: active ? finished : 0, mean: 0.05)
            }
            dp += 1
        } while dp < settings.dataParallelSize || out.byteCount < knobs.metrics_bytes
        let base = "engine_type=\"unified\",model_name=\"\(settings.model)\""
        /// A quarter of everything is non-streaming: the two series sum to the knob.
        func split(_ total: Int) -> [(String, Int)] { [("false", total / 4), ("true", total - total / 4)] }
        for (streaming, value) in split(prompt) {
            counter(&out, "sglang:prompt_tokens", "Number of prefill tokens processed.", base + ",is_streaming=\"\(streaming)\"", Double(value), created: false)
        }
        for (streaming, value) in split(knobs.generation_tokens_total) {
            counter(&out, "sglang:generation_tokens", "Number of generation tokens processed.", base + ",is_streaming=\"\(streaming)\"", Double(value), created: false)
        }
        // Recorded only for requests with cached tokens (mc:2113-2133).
        let cached = prompt / 2
        for (source, value) in [("device", cached - cached / 4), ("host", cached / 4)] where value > 0 {
            counter(&out, "sglang:cached_tokens", "Number of cached prompt tokens.", base + ",cache_source=\"\(source)\"", Double(value), created: false)
        }
        for (streaming, value) in split(finished) {
            counter(&out, "sglang:num_requests", "Number of requests processed.", base + ",is_streaming=\"\(streaming)\"", Double(value), created: false)
        }
        counter(&out, "sglang:num_aborted_requests", "Number of requests aborted.", base, 0, created: false)
        for (streaming, value) in split(finished) {
            histogram(&out, "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", base + ",is_streaming=\"\(streaming)\"",
                buckets: [0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0],
                count: value, mean: 0.2)
        }
        histogram(&out, "sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", base,
            buckets: [0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0],
            count: knobs.generation_tokens_total, mean: 0.02)
        for (streaming, value) in split(finished) {
            histogram(&out, "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", base + ",is_streaming=\"\(streaming)\"",
                buckets: [0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0, 800.0, 1200.0, 2400.0],
                count: value, mean: 1.5)
        }
        return out.text
    }

    /// The request gauges every recording scheduler reports (mc:364-404); zeros for the extra
    /// ranks that only grow the text (`knobs` nil).
    /// With priority scheduling the two request gauges have a total (`priority=""`) and one
    /// series per priority (mc:1417-1426).
    private static func sglangSchedulerGauges(_ out: inout Exposition, _ labels: String, _ knobs: Knobs?, priorities: Bool = false) {
        let running = knobs?.running_requests ?? 0
        let waiting = knobs?.waiting_requests ?? 0
        for (name, help, value) in [
            ("sglang:num_running_reqs", "The number of running requests.", running),
            ("sglang:num_queue_reqs", "The number of requests in the waiting queue.", waiting),
        ] {
            guard priorities else {
                gauge(&out, name, help, labels, Double(value))
                continue
            }
            for (priority, part) in [("", value), ("0", value / 2), ("1", value - value / 2)] {
                gauge(&out, name, help, labels + ",priority=\"\(priority)\"", Double(part))
            }
        }
        gauge(&out, "sglang:token_usage", "The token usage.", labels, running > 0 ? 0.3 : 0)
        gauge(&out, "sglang:cache_hit_rate", "The prefix cache hit rate.", labels, 0.5)
        gauge(&out, "sglang:gen_throughput", "The generation throughput (token/s).", labels, 0)
    }

    /// SGLang 0.5.4: rank labels without moe_ep_rank, cache_config_info, tokenizer series
    /// with model_name only.
    private static func sglangPrevious(settings: SimulatorSettings, state: SimulatorState) -> String {
        let knobs = state.knobs
        var out = Exposition()
        var rank = 0
        repeat {
            let active = rank < settings.dataParallelSize
            let labels = "dp_rank=\"\(rank)\",engine_type=\"unified\",model_name=\"\(settings.model)\",pp_rank=\"0\",tp_rank=\"0\""
            sglangSchedulerGauges(&out, labels, active ? knobs : nil)
            gauge(&out, "sglang:cache_config_info", "Information of the cache config.", labels + ",num_pages=\"65536\",page_size=\"1\"", 1)
            counter(&out, "sglang:num_retracted_requests", "The number of retracted requests.", labels, 0)
            rank += 1
        } while rank < settings.dataParallelSize || out.byteCount < knobs.metrics_bytes
        let labels = "model_name=\"\(settings.model)\""
        let prompt = knobs.prompt_tokens_total
        let finished = prompt > 0 ? max(1, prompt / 100) : 0
        counter(&out, "sglang:prompt_tokens", "Number of prefill tokens processed.", labels, Double(prompt))
        counter(&out, "sglang:generation_tokens", "Number of generation tokens processed.", labels, Double(knobs.generation_tokens_total))
        counter(&out, "sglang:cached_tokens", "Number of cached prompt tokens.", labels, Double(prompt / 2))
        counter(&out, "sglang:num_requests", "Number of requests processed.", labels, Double(finished))
        counter(&out, "sglang:num_aborted_requests", "Number of requests aborted.", labels, 0)
        histogram(&out, "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
            buckets: [0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0],
            count: finished, mean: 0.2)
        histogram(&out, "sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels,
            buckets: [0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0],
            count: knobs.generation_tokens_total, mean: 0.02)
        histogram(&out, "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", labels,
            buckets: [0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0, 800.0, 1200.0, 2400.0],
            count: finished, mean: 1.5)
        return out.text
    }

    /// A prometheus_client counter: `_total` plus the `_created` gauge family (SGLang's
    /// multiprocess registry writes no `_created`).
    private static func counter(
        _ out: inout Exposition, _ name: String, _ help: String, _ labels: String, _ value: Double, created: Bool = true
    ) {
        out.add("\(name)_total", help, "counter", "\(name)_total{\(labels)} \(value)")
        if created { out.add("\(name)_created", help, "gauge", "\(name)_created{\(labels)} 1.7643744e+09") }
    }

    private static func gauge(_ out: inout Exposition, _ name: String, _ help: String, _ labels: String, _ value: Double) {
        out.add(name, help, "gauge", "\(name){\(labels)} \(value)")
    }

    /// A histogram whose `count` observations all sit at `mean` (so buckets are consistent).
    private static func histogram(
        _ out: inout Exposition, _ name: String, _ help: String, _ labels: String, buckets: [Double], count: Int, mean: Double
    ) {
        for edge in buckets {
            out.add(name, help, "histogram", "\(name)_bucket{\(labels),le=\"\(edge)\"} \(Double(mean <= edge ? count : 0))")
        }
        out.add(name, help, "histogram", "\(name)_bucket{\(labels),le=\"+Inf\"} \(Double(count))")
        out.add(name, help, "histogram", "\(name)_count{\(labels)} \(Double(count))")
        out.add(name, help, "histogram", "\(name)_sum{\(labels)} \(Double(count) * mean)")
    }
}

/// Samples grouped by family, so every family has one HELP and one TYPE line however many
/// ranks contribute samples.
struct Exposition {
    private var order: [String] = []
    private var families: [String: (help: String, type: String, samples: [String])] = [:]
    private(set) var byteCount = 0

    mutating func add(_ name: String, _ help: String, _ type: String, _ sample: String) {
        if families[name] == nil {
            order.append(name)
            families[name] = (help, type, [])
            byteCount += name.utf8.count * 2 + help.utf8.count + type.utf8.count + 16
        }
        families[name]!.samples.append(sample)
        byteCount += sample.utf8.count + 1
    }

    var text: String {
        var text = ""
        text.reserveCapacity(byteCount)
        for name in order {
            let family = families[name]!
            text += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.type)\n"
            for sample in family.samples { text += sample + "\n" }
        }
        return text
    }
}

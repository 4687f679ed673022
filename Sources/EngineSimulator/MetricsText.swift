/// Prometheus expositions shaped like the real engines' (names, types, labels, `_created`
/// samples, histograms). Values come from the knobs; `metrics_bytes` adds data-parallel ranks
/// (whose gauges and counters are zero, so sums stay equal to the knobs) until the text is
/// that large.
enum MetricsText {
    static func vllm(model: String, state: SimulatorState) -> String {
        let knobs = state.knobs
        let (sleepLevel, adapters) = state.withEngine { ($0.sleepLevel, $0.adapterOrder) }
        var out = Exposition()
        var rank = 0
        repeat {
            vllmRank(&out, model: model, rank: rank, knobs: rank == 0 ? knobs : nil, sleepLevel: sleepLevel)
            rank += 1
        } while out.byteCount < knobs.metrics_bytes
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

    private static func vllmRank(_ out: inout Exposition, model: String, rank: Int, knobs: Knobs?, sleepLevel: Int) {
        let labels = "engine=\"\(rank)\",model_name=\"\(model)\""
        let running = knobs?.running_requests ?? 0
        let prompt = knobs?.prompt_tokens_total ?? 0
        let generation = knobs?.generation_tokens_total ?? 0
        let finished = prompt > 0 ? max(1, prompt / 100) : 0
        gauge(&out, "vllm:num_requests_running", "Number of requests in model execution batches.", labels, Double(running))
        gauge(&out, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, Double(knobs?.waiting_requests ?? 0))
        gauge(&out, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, running > 0 ? 0.25 : 0)
        for (state, level) in [("awake", 0), ("discard_all", 2), ("weights_offloaded", 1)] {
            gauge(&out, "vllm:engine_sleep_state", "Engine sleep state; awake = 1 means the engine is awake.",
                  labels + ",sleep_state=\"\(state)\"", sleepLevel == level ? 1 : 0)
        }
        counter(&out, "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, Double(prompt))
        counter(&out, "vllm:generation_tokens", "Number of generation tokens processed.", labels, Double(generation))
        counter(&out, "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", labels, Double(prompt))
        counter(&out, "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", labels, Double(prompt / 2))
        counter(&out, "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, 0)
        for reason in ["abort", "length", "stop"] {
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
        gauge(&out, "vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
              "block_size=\"16\",cache_dtype=\"auto\",engine=\"\(rank)\",num_gpu_blocks=\"8192\"", 1)
    }

    static func sglang(model: String, state: SimulatorState) -> String {
        let knobs = state.knobs
        var out = Exposition()
        var rank = 0
        repeat {
            let rankKnobs: Knobs? = rank == 0 ? knobs : nil
            let labels = "dp_rank=\"\(rank)\",engine_type=\"unified\",model_name=\"\(model)\",pp_rank=\"0\",tp_rank=\"0\""
            let running = rankKnobs?.running_requests ?? 0
            gauge(&out, "sglang:num_running_reqs", "The number of running requests.", labels, Double(running))
            gauge(&out, "sglang:num_queue_reqs", "The number of requests in the waiting queue.", labels, Double(rankKnobs?.waiting_requests ?? 0))
            gauge(&out, "sglang:token_usage", "The token usage.", labels, running > 0 ? 0.3 : 0)
            gauge(&out, "sglang:cache_hit_rate", "The prefix cache hit rate.", labels, 0.5)
            gauge(&out, "sglang:gen_throughput", "The generation throughput (token/s).", labels, 0)
            gauge(&out, "sglang:cache_config_info", "Information of the cache config.", labels + ",num_pages=\"65536\",page_size=\"1\"", 1)
            counter(&out, "sglang:num_retracted_requests", "The number of retracted requests.", labels, 0)
            rank += 1
        } while out.byteCount < knobs.metrics_bytes
        let labels = "model_name=\"\(model)\""
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

    /// A prometheus_client counter: `_total` plus the `_created` gauge family.
    private static func counter(_ out: inout Exposition, _ name: String, _ help: String, _ labels: String, _ value: Double) {
        out.add("\(name)_total", help, "counter", "\(name)_total{\(labels)} \(value)")
        out.add("\(name)_created", help, "gauge", "\(name)_created{\(labels)} 1.7643744e+09")
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

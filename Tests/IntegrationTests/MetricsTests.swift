import Foundation
@testable import Host
import TestSupport
import Testing

/// Standardization rules on engine-shaped expositions, and /metrics of the real binary checked
/// by Prometheus's own tools.
@Suite struct MetricStandardizerTests {
    private func standard(_ text: String, _ rules: [MetricRule]) -> String {
        let exposition = PrometheusExposition(bytes: Array(text.utf8))
        let result = MetricStandardizer(rules: rules, constantLabels: [("engine", "x")]).standardize(exposition)
        var writer = PrometheusWriter()
        MetricStandardizer.write([result], into: &writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func vllmRanksAreSummedOrMaxedAndCountersMatchBySampleName() {
        let output = standard(
            EngineExpositions.vllmShaped,
            [
                MetricRule(sourceType: .gauge, sourceName: "vllm:num_requests_running", standardName: "llm_engine_requests_running", aggregate: .sum, aggregateLabels: ["engine"]),
                MetricRule(sourceType: .gauge, sourceName: "vllm:kv_cache_usage_perc", standardName: "llm_engine_kv_cache_usage_ratio", aggregate: .max, aggregateLabels: ["engine"]),
                MetricRule(sourceType: .counter, sourceName: "vllm:prompt_tokens_total", standardName: "llm_engine_prompt_tokens", aggregate: .sum, aggregateLabels: ["engine"]),
                MetricRule(
                    sourceType: .counter, sourceName: "vllm:request_success_total", standardName: "llm_engine_requests_finished", aggregate: .sum,
                    aggregateLabels: ["engine"], labelRenames: ["finished_reason": "reason"]),
                MetricRule(sourceType: .histogram, sourceName: "vllm:time_to_first_token_seconds", standardName: "llm_engine_time_to_first_token_seconds", aggregate: .sum, aggregateLabels: ["engine"]),
                MetricRule(sourceType: .gauge, sourceName: "vllm:lora_requests_info", standardName: "llm_engine_lora_requests_info", aggregate: .newest),
                MetricRule(
                    sourceType: .gauge, sourceName: "vllm:engine_sleep_state", standardName: "llm_engine_sleep_state", aggregate: .max,
                    aggregateLabels: ["engine"], labelRenames: ["sleep_state": "state"],
                    labelValues: ["state": ["weights_offloaded": "sleeping", "discard_all": "sleeping"]]),
            ])
        #expect(output.contains("llm_engine_requests_running{engine=\"x\",model_name=\"m\"} 5\n"))
        #expect(output.contains("llm_engine_kv_cache_usage_ratio{engine=\"x\",model_name=\"m\"} 0.5\n"))
        #expect(output.contains("# TYPE llm_engine_prompt_tokens_total counter\nllm_engine_prompt_tokens_total{engine=\"x\",model_name=\"m\"} 123\n"))
        #expect(output.contains("llm_engine_requests_finished_total{engine=\"x\",model_name=\"m\",reason=\"stop\"} 7\n"))
        #expect(output.contains("llm_engine_requests_finished_total{engine=\"x\",model_name=\"m\",reason=\"length\"} 1\n"))
        #expect(output.contains("llm_engine_time_to_first_token_seconds_bucket{engine=\"x\",le=\"0.1\",model_name=\"m\"} 4\n"))
        #expect(output.contains("llm_engine_time_to_first_token_seconds_count{engine=\"x\",model_name=\"m\"} 6\n"))
        #expect(output.contains("llm_engine_time_to_first_token_seconds_sum{engine=\"x\",model_name=\"m\"} 0.8\n"))
        #expect(output.contains("llm_engine_lora_requests_info{engine=\"x\",max_lora=\"4\",running_lora_adapters=\"a,b\",waiting_lora_adapters=\"c\"} 1710000000\n"))
        #expect(output.components(separatedBy: "llm_engine_lora_requests_info{").count == 2, "one series: the newest")
        #expect(output.contains("llm_engine_sleep_state{engine=\"x\",model_name=\"m\",state=\"sleeping\"} 1\n"))
        #expect(output.contains("llm_engine_sleep_state{engine=\"x\",model_name=\"m\",state=\"awake\"} 0\n"))
    }

    @Test func sglangCountsTPRankZeroOnlyAndDerivesReasons() {
        let rank = "dp_rank,tp_rank,pp_rank,engine_type"
        let output = standard(
            EngineExpositions.sglangShaped,
            [
                MetricRule(sourceType: .gauge, sourceName: "sglang:num_running_reqs", standardName: "llm_engine_requests_running", aggregate: .sum, aggregateLabels: Set(rank.split(separator: ",").map(String.init)), matchLabels: ["tp_rank": "0"]),
                MetricRule(sourceType: .gauge, sourceName: "sglang:token_usage", standardName: "llm_engine_kv_cache_usage_ratio", aggregate: .max, aggregateLabels: Set(rank.split(separator: ",").map(String.init)), matchLabels: ["tp_rank": "0"]),
                MetricRule(sourceType: .counter, sourceName: "sglang:num_requests_total", standardName: "llm_engine_requests_finished", setLabels: [("reason", "completed")]),
                MetricRule(sourceType: .counter, sourceName: "sglang:num_aborted_requests_total", standardName: "llm_engine_requests_finished", setLabels: [("reason", "abort")]),
                MetricRule(sourceType: .counter, sourceName: "sglang:prompt_tokens_total", standardName: "llm_engine_prefix_cache_queries"),
            ])
        #expect(output.contains("llm_engine_requests_running{engine=\"x\",model_name=\"m\"} 10\n"), "tp_rank 1 is not summed")
        #expect(output.contains("llm_engine_kv_cache_usage_ratio{engine=\"x\",model_name=\"m\"} 0.7\n"))
        #expect(output.contains("llm_engine_requests_finished_total{engine=\"x\",model_name=\"m\",reason=\"completed\"} 40\n"))
        #expect(output.contains("llm_engine_requests_finished_total{engine=\"x\",model_name=\"m\",reason=\"abort\"} 2\n"))
        #expect(output.contains("llm_engine_prefix_cache_queries_total{engine=\"x\",model_name=\"m\"} 900\n"))
        #expect(output.components(separatedBy: "# TYPE llm_engine_requests_finished_total").count == 2)
    }
}

extension MetricStandardizerTests {
    /// ABI 1.2's rule fields: replicas maxed before partitions are summed, labels kept by name,
    /// two gauges' values joined into one info series.
    @Test func duplicatesKeepAndValueLabels() {
        let text = """
            # TYPE sglang:num_running_reqs gauge
            sglang:num_running_reqs{dp_rank="0",engine_type="unified",model_name="m",tp_rank="0"} 4.0
            sglang:num_running_reqs{dp_rank="0",engine_type="unified",model_name="m",tp_rank="1"} 4.0
            sglang:num_running_reqs{dp_rank="1",engine_type="unified",model_name="m",tp_rank="2"} 6.0
            sglang:num_running_reqs{dp_rank="1",engine_type="unified",model_name="m",tp_rank="3"} 6.0
            # TYPE sglang:page_size gauge
            sglang:page_size{dp_rank="0",model_name="m",tp_rank="0"} 16.0
            sglang:page_size{dp_rank="1",model_name="m",tp_rank="2"} 16.0
            # TYPE sglang:num_pages gauge
            sglang:num_pages{dp_rank="0",model_name="m",tp_rank="0"} 4096.0
            sglang:num_pages{dp_rank="1",model_name="m",tp_rank="2"} 4096.0
            # TYPE vllm:cache_config_info gauge
            vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",num_gpu_blocks="900",swap_space="4"} 1.0

            """
        let output = standard(
            text,
            [
                MetricRule(
                    sourceType: .gauge, sourceName: "sglang:num_running_reqs", standardName: "llm_engine_requests_running", aggregate: .sum,
                    aggregateLabels: ["dp_rank", "engine_type"], duplicateLabels: ["tp_rank"]),
                MetricRule(
                    sourceType: .gauge, sourceName: "sglang:page_size", standardName: "llm_engine_kv_cache_config_info", aggregate: .max,
                    keepLabels: ["model_name"], valueLabel: "block_size"),
                MetricRule(
                    sourceType: .gauge, sourceName: "sglang:num_pages", standardName: "llm_engine_kv_cache_config_info", aggregate: .max,
                    keepLabels: ["model_name"], valueLabel: "num_blocks"),
                MetricRule(
                    sourceType: .gauge, sourceName: "vllm:cache_config_info", standardName: "llm_engine_kv_cache_config_info", aggregate: .max,
                    labelRenames: ["num_gpu_blocks": "num_blocks"], keepLabels: ["block_size", "num_blocks"]),
            ])
        #expect(output.contains("llm_engine_requests_running{engine=\"x\",model_name=\"m\"} 10\n"), "\(output)")
        #expect(output.contains("llm_engine_kv_cache_config_info{block_size=\"16\",engine=\"x\",model_name=\"m\",num_blocks=\"4096\"} 1\n"), "\(output)")
        #expect(output.contains("llm_engine_kv_cache_config_info{block_size=\"16\",engine=\"x\",num_blocks=\"900\"} 1\n"), "\(output)")
        #expect(output.components(separatedBy: "llm_engine_kv_cache_config_info{").count == 3)
    }

    /// A counter rule whose source lacks `_total` can only match a mislabelled gauge, and a
    /// standard name outside the set reaches no consumer: both are reported.
    @Test func rulesThatCannotWorkAreReported() {
        let bare = MetricRule(sourceType: .counter, sourceName: "vllm:prompt_tokens", standardName: "llm_engine_prompt_tokens")
        #expect(bare.warnings.first?.contains("write vllm:prompt_tokens_total") == true)
        let unknown = MetricRule(sourceType: .gauge, sourceName: "x:y", standardName: "llm_engine_made_up")
        #expect(unknown.warnings.first?.contains("not in the standard set") == true)
        let histogram = MetricRule(sourceType: .gauge, sourceName: "x:y", standardName: "llm_engine_time_to_first_token_seconds")
        #expect(histogram.warnings.first?.contains("a gauge source for a standard histogram") == true)
        let fine = MetricRule(sourceType: .counter, sourceName: "vllm:prompt_tokens_total", standardName: "llm_engine_prompt_tokens")
        #expect(fine.warnings.isEmpty)
    }
}

@Suite struct MetricsEndpointTests {
    /// `promtool check metrics` on the runtime's /metrics: no parse error, and lint problems
    /// only for the engines' own colon names, never for llm_engine_* or engine_runtime_*.
    @Test(arguments: EngineProfiles.all)
    func promtoolAcceptsTheOutput(profile: String) async throws {
        let flavor = profile.engineKind
        let engine = try await ServerProcess.simulator(profile, ["--metrics-bytes", "200000"])
        try await engine.configure(#"{"running_requests":3,"waiting_requests":2,"prompt_tokens_total":500,"generation_tokens_total":900}"#)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: profile)
        _ = try await runtime.get("/v1/models")  // so request metrics exist
        let metrics = try await runtime.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("llm_engine_up{engine=\"\(flavor)\"} 1\n"))
        #expect(metrics.text.contains("llm_engine_requests_running{engine=\"\(flavor)\",model_name=\"sim-model\"} 3\n"))
        #expect(metrics.text.contains("llm_engine_requests_waiting{engine=\"\(flavor)\",model_name=\"sim-model\"} 2\n"))
        #expect(metrics.text.contains("llm_engine_prompt_tokens_total{engine=\"\(flavor)\",model_name=\"sim-model\"} 500\n"))
        #expect(metrics.text.contains("engine_runtime_requests_total{route=\"/v1/models\",method=\"GET\",status=\"200\"}"))
        #expect(metrics.text.contains("# TYPE \(flavor):num_\(flavor == "vllm" ? "requests_running" : "running_reqs") gauge"), "originals kept")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/metrics.txt"
        try metrics.body.withUnsafeBufferPointer { try Data(buffer: $0).write(to: URL(fileURLWithPath: file)) }
        let check = try await Program.run("/bin/sh", ["-c", "promtool check metrics < \(file)"])
        // promtool exits 3 for lint problems, 1 for parse errors.
        #expect(check.status == 0 || check.status == 3, "\(check.stdout)\(check.stderr)")
        let problems = (check.stdout + check.stderr).split(separator: "\n")
        #expect(!problems.contains { $0.contains("error") && !$0.contains(":") })
        for line in problems {
            #expect(!line.hasPrefix("llm_engine_") && !line.hasPrefix("engine_runtime_"), "\(line)")
            #expect(line.hasPrefix("\(flavor):"), "only the engine's colon names may be flagged: \(line)")
        }
    }

    @Test func engineDownIsUpZeroAndOwnMetricsStay() async throws {
        let runtime = try await ServerProcess.runtime(for: nil, flavor: "vllm", endpoint: "http://127.0.0.1:9")
        let metrics = try await runtime.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("llm_engine_up{engine=\"vllm\"} 0\n"))
        #expect(metrics.text.contains("engine_runtime_build_info{version=\"\(EngineRuntimeVersion.current)\"}"))
        #expect(metrics.text.contains("engine_runtime_scrape_errors_total{engine_name=\"default\"} 1"))
        #expect(!metrics.text.contains("llm_engine_requests_running"), "absent, never a fake zero")
    }

    /// With the cache off (`--metrics-cache-ms 0`, every request sees a fresh scrape) requests
    /// that arrive together still share the one scrape in flight.
    @Test func withTheCacheOffConcurrentScrapesStillShareOneFetch() async throws {
        let engine = try await ServerProcess.simulator("vllm", ["--latency-ms", "1000"])
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm", arguments: ["--metrics-cache-ms", "0"])
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await runtime.get("/metrics").status } }
            for try await status in group { #expect(status == 200) }
        }
        let shared = try await engine.requestCount("GET /metrics")
        #expect(shared >= 1 && shared <= 4, "8 concurrent requests share scrapes: \(shared) engine scrapes (8 without sharing)")
        _ = try await runtime.get("/metrics")
        #expect(try await engine.requestCount("GET /metrics") == shared + 1, "a later request scrapes again: nothing is cached")
    }

    @Test func concurrentScrapesShareOneEngineFetchAndModesSelectSeries() async throws {
        let engine = try await ServerProcess.simulator("vllm", ["--latency-ms", "200"])
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm")
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await runtime.get("/metrics").status } }
            for try await status in group { #expect(status == 200) }
        }
        #expect(try await engine.requestCount("GET /metrics") == 1)

        let standard = try await ServerProcess.runtime(for: engine, flavor: "vllm", arguments: ["--metrics-mode", "standard"])
        let standardText = try await standard.get("/metrics").text
        #expect(standardText.contains("llm_engine_requests_running"))
        #expect(!standardText.contains("vllm:"))
        let original = try await ServerProcess.runtime(for: engine, flavor: "vllm", environment: ["ENGINE_RUNTIME_METRICS_MODE": "original"])
        let originalText = try await original.get("/metrics").text
        #expect(originalText.contains("vllm:num_requests_running"))
        #expect(!originalText.contains("llm_engine_"))
    }

    /// Issue 12 #13: a hung engine costs /metrics one scrape timeout, not one for the metrics
    /// and another for the model list after it.
    @Test func aHungEngineCostsOneScrapeTimeout() async throws {
        let engine = try await ServerProcess.simulator("vllm")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "vllm", arguments: ["--probe-timeout", "2"])
        try await engine.configure(#"{"latency_ms":60000}"#)
        let (metrics, took) = try await runtime.timedRequest("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("llm_engine_up{engine=\"vllm\"} 0\n"))
        #expect(took < .milliseconds(3500), "answered after \(took) with a 2 s scrape timeout")
        engine.kill()
    }

    /// Issue 12 #9: sixteen concurrent scrapers of an 8 MiB exposition share one rendered body;
    /// the peak grows by a few expositions, not sixteen, and the memory goes back afterwards.
    @Test func concurrentScrapersShareOneBodyAndTheMemoryGoesBack() async throws {
        let exposition = 8 << 20
        let engine = try await ServerProcess.simulator("vllm")
        try await engine.configure(#"{"metrics_bytes":\#(exposition)}"#)
        // Its buffers are kept for the next render for one second, then let go.
        let runtime = try await ServerProcess.runtime(
            for: engine, flavor: "vllm", arguments: ["--probe-timeout", "30", "--metrics-buffer-ms", "1000"])
        _ = try await runtime.get("/healthz")
        let before = runtime.memoryKiB("VmRSS")
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 { group.addTask { try await runtime.request("GET", "/metrics", timeout: 60).body.count } }
            for try await size in group { #expect(size > exposition) }
        }
        let peakGrowth = (runtime.memoryKiB("VmHWM") - before) * 1024
        #expect(peakGrowth < 6 * exposition, "peak grew by \(peakGrowth >> 20) MiB for a \(exposition >> 20) MiB exposition")
        let held = (runtime.memoryKiB("VmRSS") - before) * 1024
        try await Task.sleep(for: .seconds(2.5))
        let after = (runtime.memoryKiB("VmRSS") - before) * 1024
        #expect(after < 2 * exposition, "\(after >> 20) MiB still held after the cache and buffer times (\(held >> 20) MiB before)")
    }

    /// Series the host makes: adapters loaded (from the model list) and, for SGLang, the sleep
    /// state it set (absent until it did).
    @Test func hostMadeSeries() async throws {
        let engine = try await ServerProcess.simulator("sglang")
        let runtime = try await ServerProcess.runtime(for: engine, flavor: "sglang", arguments: ["--metrics-cache-ms", "0"])
        let before = try await runtime.get("/metrics").text
        #expect(before.contains("llm_engine_lora_adapters_loaded{engine=\"sglang\"} 0\n"))
        #expect(!before.contains("llm_engine_sleep_state"))
        let adapter = try TemporaryDirectory()
        defer { adapter.remove() }
        #expect(try await runtime.post("/v1/lora_adapter/load", #"{"lora_name":"a1","lora_path":"\#(adapter.path)"}"#).status == 200)
        #expect(try await runtime.post("/v1/sleep", #"{"level":1}"#).status == 200)
        let after = try await runtime.get("/metrics").text
        #expect(after.contains("llm_engine_lora_adapters_loaded{engine=\"sglang\"} 1\n"))
        #expect(after.contains("llm_engine_sleep_state{engine=\"sglang\",state=\"sleeping\"} 1\n"))
        #expect(after.contains("llm_engine_sleep_state{engine=\"sglang\",state=\"awake\"} 0\n"))
    }

    /// A real Prometheus server scrapes the runtime (in front of the simulator) on loopback, and
    /// PromQL returns the simulator's values.
    @Test(arguments: EngineProfiles.all)
    func aRealPrometheusScrapesTheRuntime(profile: String) async throws {
        let engine = try await ServerProcess.simulator(profile)
        try await engine.configure(#"{"running_requests":7,"prompt_tokens_total":4242}"#)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: profile)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: engine-runtime
            static_configs:
              - targets: ["127.0.0.1:\(runtime.port)"]
        """.write(toFile: directory.path + "/prometheus.yml", atomically: true, encoding: .utf8)
        let port = try await freePort()
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = [
            "--config.file=\(directory.path)/prometheus.yml", "--storage.tsdb.path=\(directory.path)/data",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ]
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = FileHandle.nullDevice
        try prometheus.run()
        defer {
            prometheus.terminate()
            prometheus.waitUntilExit()
        }
        func query(_ promql: String) async throws -> String? {
            let client = CurlHTTPClient()
            let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
            let request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)")
            guard let response = try? await TestThreadPool.shared.runIfActive({ client.perform(request) }).get(), response.status == 200 else {
                return nil
            }
            struct Answer: Decodable {
                struct Data: Decodable {
                    struct Result: Decodable { var value: [JSONValue] }
                    var result: [Result]
                }
                var data: Data
            }
            guard let answer = try? JSONCoding.decode(Answer.self, from: response.body), let first = answer.data.result.first,
                first.value.count == 2, case .string(let value) = first.value[1]
            else { return nil }
            return value
        }
        var running: String?
        var prompt: String?
        for _ in 0..<60 where running == nil || prompt == nil {
            try await Task.sleep(for: .milliseconds(500))
            running = try await query("llm_engine_requests_running")
            prompt = try await query("llm_engine_prompt_tokens_total")
        }
        #expect(running == "7")
        #expect(prompt == "4242")
        // One series per model: SGLang 0.5.23's is_streaming halves are summed away.
        #expect(try await query("count(llm_engine_prompt_tokens_total)") == "1")
        #expect(try await query("count(llm_engine_kv_cache_config_info)") == "1")
    }

    private func freePort() async throws -> Int {
        let probe = try await ServerProcess.simulator("vllm")
        let port = probe.port
        probe.terminate()
        return port
    }
}

/// `ENGINE_RUNTIME_METRICS_MODE=aibrix`: the AIBrix Python sidecar's names beside the standard
/// set and the originals, compared name by name with aibrix-contract.md §3.2-3.3.
@Suite struct AIBrixMetricsModeTests {
    /// The contract's rename rules (engine_rules.py), written out here on their own.
    static let contract: [String: [(String, String)]] = [
        "vllm": [
            ("vllm:num_requests_waiting", "aibrix:queue_size"), ("vllm:gpu_cache_usage_perc", "aibrix:gpu_cache_usage_perc"),
            ("vllm:kv_cache_usage_perc", "aibrix:kv_cache_usage_perc"), ("vllm:prompt_tokens_total", "aibrix:prompt_tokens_total"),
            ("vllm:generation_tokens_total", "aibrix:generation_tokens_total"),
            ("vllm:time_to_first_token_seconds", "aibrix:time_to_first_token_seconds"),
            ("vllm:time_per_output_token_seconds", "aibrix:time_per_output_token_seconds"),
            ("vllm:e2e_request_latency_seconds", "aibrix:e2e_request_latency_seconds"),
            ("vllm:request_success_total", "aibrix:request_success_total"),
        ],
        "sglang": [
            ("sglang:num_queue_reqs", "aibrix:queue_size"), ("sglang:gen_throughput", "aibrix:generation_throughput"),
            ("sglang:prompt_tokens_total", "aibrix:prompt_tokens_total"), ("sglang:generation_tokens_total", "aibrix:generation_tokens_total"),
            ("sglang:time_to_first_token_seconds", "aibrix:time_to_first_token_seconds"),
            ("sglang:time_per_output_token_seconds", "aibrix:time_per_output_token_seconds"),
            ("sglang:e2e_request_latency_seconds", "aibrix:e2e_request_latency_seconds"), ("sglang:cache_hit_rate", "aibrix:cache_hit_rate"),
            ("sglang:token_usage", "aibrix:token_usage"),
        ],
    ]

    @Test(arguments: ["vllm", "sglang"])
    func theSidecarsNamesBesideTheStandardSet(flavor: String) async throws {
        let engine = try await ServerProcess.simulator(flavor)
        try await engine.configure(#"{"running_requests":3,"waiting_requests":2,"prompt_tokens_total":500,"generation_tokens_total":900}"#)
        let runtime = try await ServerProcess.runtime(for: engine, flavor: flavor, environment: ["ENGINE_RUNTIME_METRICS_MODE": "aibrix"])
        _ = try await runtime.get("/v1/models")
        let text = try await runtime.get("/metrics").text
        let lines = text.split(separator: "\n")
        func samples(_ name: String) -> [Substring] {
            lines.filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") || $0.hasPrefix(name + "_bucket{") || $0.hasPrefix(name + "_count{") }
        }
        var renamed = 0
        for (source, target) in Self.contract[flavor]! where !samples(source).isEmpty {
            #expect(samples(target).count == samples(source).count, "\(source) -> \(target)")
            renamed += 1
        }
        #expect(renamed >= 6, "most of the contract's renames apply to the simulated \(flavor)")
        // The counter renames that never fired in the Python sidecar do here, with the values.
        func total(_ name: String) -> Double { samples(name).compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +) }
        #expect(total("aibrix:prompt_tokens_total") == 500, "\(samples("aibrix:prompt_tokens_total"))")
        #expect(total("aibrix:queue_size") == 2)
        #expect(text.contains("# TYPE aibrix:prompt_tokens_total counter"))
        // The sidecar's own series, with the route template (not the raw path) as endpoint.
        #expect(text.contains(#"aibrix:info_info{engine="\#(flavor)",engine_version="",version="\#(EngineRuntimeVersion.current)"} 1"#))
        #expect(text.contains(#"aibrix:api_request_total{method="GET",endpoint="/v1/models",status="200"} 1"#))
        #expect(text.contains("# TYPE aibrix:api_request_latency histogram"))
        // Additive: the standard set and the originals stay.
        #expect(text.contains("llm_engine_requests_waiting{") && text.contains("# TYPE \(flavor):"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try text.write(toFile: directory.path + "/metrics.txt", atomically: true, encoding: .utf8)
        let check = try await Program.run("/bin/sh", ["-c", "promtool check metrics < \(directory.path)/metrics.txt"])
        #expect(check.status == 0 || check.status == 3, "parse errors: \(check.stdout)\(check.stderr)")
        for line in (check.stdout + check.stderr).split(separator: "\n") {
            #expect(line.hasPrefix("\(flavor):") || line.hasPrefix("aibrix:"), "only colon names may be flagged: \(line)")
        }
    }
}

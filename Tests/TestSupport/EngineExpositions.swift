/// Engine expositions shaped like vLLM's and SGLang's, shared by the parser, standardizer and
/// `/metrics` tests.
package enum EngineExpositions {
    package static let vllmShaped = """
        # HELP vllm:num_requests_running Number of requests in model execution batches.
        # TYPE vllm:num_requests_running gauge
        vllm:num_requests_running{engine="0",model_name="m"} 2.0
        vllm:num_requests_running{engine="1",model_name="m"} 3.0
        # HELP vllm:prompt_tokens_total Number of prefill tokens processed.
        # TYPE vllm:prompt_tokens_total counter
        vllm:prompt_tokens_total{engine="0",model_name="m"} 100.0
        vllm:prompt_tokens_total{engine="1",model_name="m"} 23.0
        # HELP vllm:prompt_tokens_created Number of prefill tokens processed.
        # TYPE vllm:prompt_tokens_created gauge
        vllm:prompt_tokens_created{engine="0",model_name="m"} 1.7e+09
        # HELP vllm:request_success_total Count of successfully processed requests.
        # TYPE vllm:request_success_total counter
        vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 5.0
        vllm:request_success_total{engine="1",finished_reason="stop",model_name="m"} 2.0
        vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
        # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
        # TYPE vllm:kv_cache_usage_perc gauge
        vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
        vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
        # HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
        # TYPE vllm:time_to_first_token_seconds histogram
        vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 1.0
        vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0
        vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 2.0
        vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.3
        vllm:time_to_first_token_seconds_bucket{engine="1",le="0.1",model_name="m"} 3.0
        vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="m"} 4.0
        vllm:time_to_first_token_seconds_count{engine="1",model_name="m"} 4.0
        vllm:time_to_first_token_seconds_sum{engine="1",model_name="m"} 0.5
        # HELP vllm:lora_requests_info Running stats on lora requests.
        # TYPE vllm:lora_requests_info gauge
        vllm:lora_requests_info{max_lora="4",running_lora_adapters="",waiting_lora_adapters=""} 1.70e+09
        vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters="c"} 1.71e+09
        # HELP vllm:engine_sleep_state Engine sleep state.
        # TYPE vllm:engine_sleep_state gauge
        vllm:engine_sleep_state{engine="0",model_name="m",sleep_state="awake"} 0.0
        vllm:engine_sleep_state{engine="0",model_name="m",sleep_state="weights_offloaded"} 1.0
        vllm:engine_sleep_state{engine="0",model_name="m",sleep_state="discard_all"} 0.0

        """

    package static let sglangShaped = """
        # HELP sglang:num_running_reqs The number of running requests.
        # TYPE sglang:num_running_reqs gauge
        sglang:num_running_reqs{dp_rank="0",engine_type="unified",model_name="m",pp_rank="0",tp_rank="0"} 4.0
        sglang:num_running_reqs{dp_rank="0",engine_type="unified",model_name="m",pp_rank="0",tp_rank="1"} 4.0
        sglang:num_running_reqs{dp_rank="1",engine_type="unified",model_name="m",pp_rank="0",tp_rank="0"} 6.0
        # HELP sglang:token_usage The token usage.
        # TYPE sglang:token_usage gauge
        sglang:token_usage{dp_rank="0",engine_type="unified",model_name="m",pp_rank="0",tp_rank="0"} 0.2
        sglang:token_usage{dp_rank="1",engine_type="unified",model_name="m",pp_rank="0",tp_rank="0"} 0.7
        # HELP sglang:num_requests_total Number of requests processed.
        # TYPE sglang:num_requests_total counter
        sglang:num_requests_total{model_name="m"} 40.0
        # HELP sglang:num_aborted_requests_total Number of requests aborted.
        # TYPE sglang:num_aborted_requests_total counter
        sglang:num_aborted_requests_total{model_name="m"} 2.0
        # HELP sglang:prompt_tokens_total Number of prefill tokens processed.
        # TYPE sglang:prompt_tokens_total counter
        sglang:prompt_tokens_total{model_name="m"} 900.0

        """
}

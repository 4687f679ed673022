#!/usr/bin/env python3
"""/metrics through engine-runtime vs the engine's own /metrics, for a large exposition.

Usage: scripts/bench_metrics.py [--build .build/release] [--bytes 2000000] [--requests 200]

Starts the simulator (vLLM flavor) with an exposition of about --bytes, and the runtime twice:
with the scrape cache off (every /metrics request fetches, parses, standardizes and renders:
the worst case) and with the default 1 s cache. Reports, on loopback:
- the median latency of --requests sequential requests: engine directly, runtime without
  cache, runtime with cache, and the ratio runtime/direct;
- the runtime's CPU time per scrape without cache (user + system, from /proc);
- throughput with 16 concurrent scrapers for 5 s, and the runtime's peak RSS.
"""
import argparse
import http.client
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lora import start  # noqa: E402


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET {path} answered {response.status}")
    return len(body)


def sequential(port, path, count):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        size = get(connection, path)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), size


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


def concurrent(port, seconds=5, workers=16):
    done = [0] * workers
    stop = time.time() + seconds

    def worker(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.time() < stop:
            get(connection, "/metrics")
            done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=".build/release")
    parser.add_argument("--bytes", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    simulator, engine_port = start(
        [f"{args.build}/engine-simulator", "--port", "0", "--metrics-bytes", str(args.bytes), "--log-level", "info"],
        "engine-simulator listening")
    env = dict(os.environ, INFERENCE_ENGINE="vllm", INFERENCE_ENGINE_ENDPOINT=f"http://127.0.0.1:{engine_port}")
    runtimes = []
    try:
        uncached, uncached_port = start(
            [f"{args.build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-cache-ms", "0",
             "--log-level", "info"], "engine-runtime listening", env=env)
        runtimes.append(uncached)
        cached, cached_port = start(
            [f"{args.build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"],
            "engine-runtime listening", env=env)
        runtimes.append(cached)

        sequential(engine_port, "/metrics", 5)
        sequential(uncached_port, "/metrics", 5)
        direct, direct_size = sequential(engine_port, "/metrics", args.requests)
        cpu_before = cpu_seconds(uncached.pid)
        through, through_size = sequential(uncached_port, "/metrics", args.requests)
        cpu_per_scrape = (cpu_seconds(uncached.pid) - cpu_before) / args.requests * 1000
        with_cache, _ = sequential(cached_port, "/metrics", args.requests)
        throughput_uncached = concurrent(uncached_port)
        throughput_cached = concurrent(cached_port)
        print(f"engine exposition {direct_size / 1e6:.2f} MB; runtime answer {through_size / 1e6:.2f} MB (standard set + originals + own)")
        print(f"median of {args.requests} sequential requests, ms: engine direct {direct:.2f}, "
              f"runtime (no cache) {through:.2f} ({through / direct:.2f}x), runtime (1 s cache) {with_cache:.2f} ({with_cache / direct:.2f}x)")
        print(f"runtime CPU per scrape (no cache): {cpu_per_scrape:.2f} ms")
        print(f"16 concurrent scrapers: {throughput_uncached:.0f} req/s (no cache), {throughput_cached:.0f} req/s (1 s cache)")
        print(f"runtime peak RSS: {peak_rss_mib(uncached.pid):.1f} MiB (no cache), {peak_rss_mib(cached.pid):.1f} MiB (1 s cache)")
    finally:
        for process in runtimes:
            process.terminate()
        simulator.terminate()


if __name__ == "__main__":
    main()

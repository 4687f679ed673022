#!/usr/bin/env python3
"""/metrics through engine-runtime against its limits, for a large exposition.

Usage: scripts/bench_metrics.py [--build .build/release] [--baseline OTHER_BUILD]
                                [--bytes 2000000] [--requests 200] [--rounds 3]

Starts the simulator (vLLM flavor) with an exposition of about --bytes and, per build, the
runtime twice: with the scrape cache off (every request fetches, parses, standardizes and
renders: the worst case) and with the default 1 s cache. The runtime's answer is saved and
served by nginx as a static file: the limit of the cached path. Rounds alternate the servers
(nginx, engine, then each build) and the figures are medians over the rounds:
- cached /metrics latency, median of --requests sequential requests, and its ratio to nginx
  serving the same bytes;
- uncached latency, and the runtime's CPU time per uncached scrape (user + system, /proc):
  of the simulator's text as it is (an idle engine: the same values each time), and with new
  values before each scrape (the simulator's knobs changed, as an engine under load changes
  them; the runtime then reads the scrape as the last with new values, see docs/metrics.md);
- throughput with 16 concurrent scrapers for 5 s, cached and uncached, and of nginx serving
  the same bytes to the same 16 clients (the limit: with a static file, what this client and
  machine can take);
- RSS after the sequential uncached scrapes (VmRSS and anonymous), and peak RSS (VmHWM).
The uncached CPU is compared with its floor, measured in the same rounds: the CPU nginx spends
passing the engine's text through as a reverse proxy (the HTTP read and write), plus
`metrics-bench`'s floor over the same text (every line found, every value read, the text
copied once).
With --baseline, the same figures for another build, side by side, in the same rounds.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_download import free_port, start_nginx  # noqa: E402
from bench_lora import start, start_proxy  # noqa: E402
from bench_startup import activity, memory  # noqa: E402


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET {path} answered {response.status}")
    return body


def sequential(port, path, count):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        get(connection, path)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def post_knobs(port, knobs):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/_sim/config", body=json.dumps(knobs), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        sys.exit(f"the simulator refused its knobs: HTTP {response.status}")


def changing_cpu(pid, port, engine_port, count):
    """The runtime's CPU per uncached scrape when the engine's values change before each one."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    spent = 0.0
    for index in range(count):
        post_knobs(engine_port, {"running_requests": index % 17, "waiting_requests": (index * 7) % 1000,
                                 "prompt_tokens_total": 1000 + index * 37, "generation_tokens_total": 99 + index * 3})
        before = activity(pid)[0]
        get(connection, "/metrics")
        spent += activity(pid)[0] - before
    post_knobs(engine_port, {"running_requests": 0, "waiting_requests": 0, "prompt_tokens_total": 0, "generation_tokens_total": 0})
    return spent / count * 1000


def cpu_nanoseconds(pid):
    """Time on a CPU of a single-threaded process, in ns (/proc's stat counts 10 ms ticks)."""
    with open(f"/proc/{pid}/schedstat") as schedstat:
        return int(schedstat.read().split()[0])


def proxy_cpu(proxy, port, count):
    """CPU of the nginx worker per request through it, in ms."""
    with open(f"/proc/{proxy.pid}/task/{proxy.pid}/children") as children:
        worker = int(children.read().split()[0])
    sequential(port, "/metrics", 5)
    before = cpu_nanoseconds(worker)
    sequential(port, "/metrics", count)
    return (cpu_nanoseconds(worker) - before) / count / 1e6


def parse_floor(build, text_path):
    """metrics-bench's floor over the engine's text, in ms."""
    output = subprocess.run([f"{build}/metrics-bench", text_path, "--driver", f"{build}/libEngineVLLM.so"],
                            capture_output=True, text=True, check=True).stdout
    match = re.search(r"^floor.*: ([0-9.]+) ms", output, re.MULTILINE)
    if not match:
        sys.exit(f"metrics-bench printed no floor:\n{output}")
    return float(match.group(1))


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


class Build:
    """The two runtimes of one build, in front of the same engine."""

    def __init__(self, build, env, engine_port):
        self.name = build
        self.engine_port = engine_port
        self.uncached, self.uncached_port = start(
            [f"{build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-cache-ms", "0",
             "--driver-dir", build, "--log-level", "info"], "engine-runtime listening", env=env)
        self.cached, self.cached_port = start(
            [f"{build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--driver-dir", build,
             "--log-level", "info"], "engine-runtime listening", env=env)
        self.figures = {}

    def record(self, key, value):
        self.figures.setdefault(key, []).append(value)

    def measure(self, requests):
        sequential(self.uncached_port, "/metrics", 5)
        sequential(self.cached_port, "/metrics", 5)
        before = activity(self.uncached.pid)[0]
        self.record("uncached_ms", sequential(self.uncached_port, "/metrics", requests))
        self.record("cpu_ms", (activity(self.uncached.pid)[0] - before) / requests * 1000)
        self.record("cpu_changing_ms", changing_cpu(self.uncached.pid, self.uncached_port, self.engine_port, requests))
        after = memory(self.uncached.pid)
        self.record("rss_after", after["VmRSS"])
        self.record("anon_after", after.get("RssAnon", 0))
        self.record("cached_ms", sequential(self.cached_port, "/metrics", requests))
        self.record("uncached_rps", concurrent(self.uncached_port))
        self.record("cached_rps", concurrent(self.cached_port))
        self.record("peak_uncached", memory(self.uncached.pid)["VmHWM"])
        self.record("peak_cached", memory(self.cached.pid)["VmHWM"])

    def stop(self):
        for process in (self.uncached, self.cached):
            process.terminate()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=".build/release")
    parser.add_argument("--baseline", help="another build directory, measured in the same rounds")
    parser.add_argument("--bytes", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    simulator, engine_port = start(
        [f"{args.build}/engine-simulator", "--port", "0", "--metrics-bytes", str(args.bytes), "--log-level", "info"],
        "engine-simulator listening")
    env = dict(os.environ, INFERENCE_ENGINE="vllm", INFERENCE_ENGINE_ENDPOINT=f"http://127.0.0.1:{engine_port}")
    work = tempfile.mkdtemp(prefix="bench-metrics-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    builds, nginx, proxy = [], None, None
    try:
        builds = [Build(args.build, env, engine_port)] + ([Build(args.baseline, env, engine_port)] if args.baseline else [])
        # The static file: what the runtime answers, byte for byte.
        body = get(http.client.HTTPConnection("127.0.0.1", builds[0].cached_port, timeout=30), "/metrics")
        os.makedirs(f"{work}/www", exist_ok=True)
        with open(f"{work}/www/metrics", "wb") as f:
            f.write(body)
        os.chmod(f"{work}/www", 0o755)
        os.chmod(f"{work}/www/metrics", 0o644)
        nginx_port = free_port()
        nginx = start_nginx(work, nginx_port)
        # The floor of an uncached scrape: the engine's text read and written by nginx as a
        # proxy (buffers for the whole text: no temporary file), and read by metrics-bench.
        with open(f"{work}/engine.prom", "wb") as f:
            f.write(get(http.client.HTTPConnection("127.0.0.1", engine_port, timeout=30), "/metrics"))
        proxy_port = free_port()
        os.makedirs(f"{work}/proxy", exist_ok=True)
        proxy = start_proxy(f"{work}/proxy", proxy_port, engine_port,
                            "proxy_buffer_size 256k; proxy_buffers 16 256k; proxy_busy_buffers_size 512k; "
                            "proxy_max_temp_file_size 0;")
        static, static_rps, direct, proxied, floor = [], [], [], [], []
        for _ in range(args.rounds):
            sequential(nginx_port, "/metrics", 5)
            static.append(sequential(nginx_port, "/metrics", args.requests))
            static_rps.append(concurrent(nginx_port))
            direct.append(sequential(engine_port, "/metrics", args.requests))
            proxied.append(proxy_cpu(proxy, proxy_port, args.requests))
            floor.append(parse_floor(args.build, f"{work}/engine.prom"))
            for build in builds:
                build.measure(args.requests)
        static_ms, direct_ms = statistics.median(static), statistics.median(direct)
        print(f"runtime answer {len(body) / 1e6:.2f} MB; medians over {args.rounds} alternating rounds of {args.requests} requests")
        proxy_ms, floor_ms = statistics.median(proxied), statistics.median(floor)
        cpu_floor = proxy_ms + floor_ms
        static_throughput = statistics.median(static_rps)
        print(f"limits: nginx serving the same bytes {static_ms:.2f} ms, {static_throughput:.0f} req/s to 16 scrapers; "
              f"the engine's own /metrics {direct_ms:.2f} ms")
        print(f"floor of an uncached scrape's CPU: {cpu_floor:.2f} ms (nginx passing the engine's text through as a "
              f"proxy {proxy_ms:.2f} ms, every line found and value read and the text copied {floor_ms:.2f} ms)")
        for build in builds:
            f = {key: statistics.median(values) for key, values in build.figures.items()}
            print(f"{build.name}: cached /metrics {f['cached_ms']:.2f} ms ({f['cached_ms'] / static_ms:.2f}x nginx); "
                  f"uncached {f['uncached_ms']:.2f} ms ({f['uncached_ms'] / direct_ms:.2f}x the engine direct)")
            print(f"{build.name}: CPU per uncached scrape {f['cpu_ms']:.2f} ms ({f['cpu_ms'] / cpu_floor:.2f}x the floor), "
                  f"{f['cpu_changing_ms']:.2f} ms with new values each time ({f['cpu_changing_ms'] / cpu_floor:.2f}x); "
                  f"16 scrapers {f['cached_rps']:.0f} req/s cached ({f['cached_rps'] / static_throughput:.2f}x nginx), "
                  f"{f['uncached_rps']:.0f} req/s uncached")
            print(f"{build.name}: RSS after {args.requests} uncached scrapes {f['rss_after']:.1f} MiB "
                  f"({f['anon_after']:.1f} MiB anonymous); peak {f['peak_uncached']:.1f} MiB uncached, "
                  f"{f['peak_cached']:.1f} MiB cached (16 scrapers included)")
    finally:
        for build in builds:
            build.stop()
        for server in (nginx, proxy):
            if server:
                server.terminate()
                server.wait()
        simulator.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""LoRA load/unload latency through engine-runtime vs directly against the engine.

Usage: scripts/bench_lora.py [--build .build/release] [--rounds 500] [--flavor vllm] [--isolated]
                             [--baseline OTHER_BUILD_DIR]

Starts the engine simulator and engine-runtime (release builds, loopback only), then runs
`rounds` rounds; each round loads and unloads one adapter directly on the simulator, through
nginx as a plain reverse proxy in front of the simulator (the limit: what one more HTTP hop
costs on this machine), and through the runtime's AIBrix-compatible routes, in turn so all see
the same machine noise. Every client keeps one HTTP connection open. Prints the median and p90
of each, the latency each adds over the direct call at the median, and the runtime's ratio to
the proxy's; and each runtime's CPU time and context switches per request (from /proc: the
machine's noise moves them much less than latency). With --baseline, another build's runtime
takes part in the same rounds. With --isolated, a runtime whose driver runs in a host process
of its own (--isolated-drivers) takes part too, and the latency isolation adds over the
in-process driver is printed.
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_download import free_port, run_nginx  # noqa: E402
from bench_startup import activity, wakeups  # noqa: E402


def start(command, marker, env=None):
    """Starts a server logging to a temporary file (a pipe nobody drains would fill up and
    stall it) and returns it with the port from its "listening" line."""
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env)
    deadline = time.time() + 30
    while time.time() < deadline and process.poll() is None:
        log.seek(0)
        for line in log.read().splitlines():
            match = re.search(r"port=(\d+)", line)
            if marker in line and match:
                return process, int(match.group(1))
        time.sleep(0.02)
    process.kill()
    sys.exit(f"{command[0]} did not start")


def start_proxy(directory, port, engine_port, directives=""):
    """nginx as a reverse proxy in front of the engine, with kept-alive upstream connections:
    the cost of one more HTTP hop, done by a server built for it. `directives` go in its
    location."""
    os.makedirs(f"{directory}/tmp", exist_ok=True)
    conf = f"""
daemon off; worker_processes 1; error_log {directory}/error.log; pid {directory}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {directory}/tmp; proxy_temp_path {directory}/tmp; fastcgi_temp_path {directory}/tmp;
  uwsgi_temp_path {directory}/tmp; scgi_temp_path {directory}/tmp;
  upstream engine {{ server 127.0.0.1:{engine_port}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://engine; proxy_http_version 1.1; proxy_set_header Connection ""; {directives} }}
  }}
}}"""
    return run_nginx(directory, port, conf)


def timed_post(connection, path, body):
    payload = json.dumps(body)
    start = time.perf_counter()
    connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status != 200:
        sys.exit(f"POST {path} answered {response.status}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=".build/release")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--flavor", default="vllm", choices=["vllm", "sglang"])
    parser.add_argument("--isolated", action="store_true", help="also measure the driver isolated")
    parser.add_argument("--baseline", help="another build's directory, measured in the same rounds")
    args = parser.parse_args()
    simulator, engine_port = start(
        [f"{args.build}/engine-simulator", "--flavor", args.flavor, "--port", "0", "--log-level", "info"],
        "engine-simulator listening")
    env = dict(os.environ, INFERENCE_ENGINE=args.flavor, INFERENCE_ENGINE_ENDPOINT=f"http://127.0.0.1:{engine_port}")
    variants = [("runtime", args.build, [])]
    if args.baseline:
        variants.append(("baseline", args.baseline, []))
    if args.isolated:
        variants.append(("isolated", args.build, ["--isolated-drivers", args.flavor]))
    runtimes = {}
    for label, build, extra in variants:
        runtimes[label] = start(
            [f"{build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"] + extra,
            "engine-runtime listening", env=env)
    proxy_dir = tempfile.mkdtemp(prefix="bench-lora-proxy-")
    os.chmod(proxy_dir, 0o755)  # nginx workers run as an unprivileged user
    proxy_port = free_port()
    proxy = start_proxy(proxy_dir, proxy_port, engine_port)
    adapter = tempfile.mkdtemp(prefix="bench-adapter-")
    load_path, unload_path = (("/v1/load_lora_adapter", "/v1/unload_lora_adapter") if args.flavor == "vllm"
                              else ("/load_lora_adapter", "/unload_lora_adapter"))
    direct = http.client.HTTPConnection("127.0.0.1", engine_port)
    proxied = http.client.HTTPConnection("127.0.0.1", proxy_port)
    through = {label: http.client.HTTPConnection("127.0.0.1", port) for label, (_, port) in runtimes.items()}
    results = {f"{label} {op}": [] for label in ["direct", "proxy"] + list(runtimes) for op in ("load", "unload")}
    counters = {}
    try:
        for round in range(args.rounds + 20):
            if round == 20:  # warm-up rounds are not counted
                counters = {label: activity(process.pid) for label, (process, _) in runtimes.items()}
            name = f"bench-{round}"
            timings = {"direct load": timed_post(direct, load_path, {"lora_name": name, "lora_path": adapter}),
                       "direct unload": timed_post(direct, unload_path, {"lora_name": name})}
            timings["proxy load"] = timed_post(proxied, load_path, {"lora_name": name + "-p", "lora_path": adapter})
            timings["proxy unload"] = timed_post(proxied, unload_path, {"lora_name": name + "-p"})
            # The runtimes take turns to go first, so neither always runs on the cache the other warmed.
            order = list(through.items())
            if round % 2:
                order.reverse()
            for label, connection in order:
                timings[f"{label} load"] = timed_post(connection, "/v1/lora_adapter/load", {"lora_name": name, "lora_path": adapter})
                timings[f"{label} unload"] = timed_post(connection, "/v1/lora_adapter/unload", {"lora_name": name})
            if round >= 20:
                for key, value in timings.items():
                    results[key].append(value)
        for label, (process, _) in runtimes.items():
            (cpu_before, switches_before, _), (cpu, switches, _) = counters[label], activity(process.pid)
            requests = 2 * args.rounds
            counters[label] = ((cpu - cpu_before) * 1000 / requests, wakeups(switches_before, switches) / requests)
    finally:
        for process, _ in runtimes.values():
            process.terminate()
        proxy.terminate()
        proxy.wait()
        shutil.rmtree(proxy_dir, ignore_errors=True)
        simulator.terminate()
        os.rmdir(adapter)

    def p90(values):
        return sorted(values)[int(len(values) * 0.9)]

    print(f"{args.flavor}, {args.rounds} rounds, milliseconds:")
    for key, values in results.items():
        print(f"  {key:15s} median {statistics.median(values):.3f}  p90 {p90(values):.3f}")
    for label, (cpu_ms, switches) in counters.items():
        print(f"  {label}: {cpu_ms * 1000:.0f} us of CPU and {switches:.2f} context switches per request (loads and unloads)")
    for op in ("load", "unload"):
        direct_ms = statistics.median(results[f"direct {op}"])
        hop = statistics.median(results[f"proxy {op}"]) - direct_ms
        print(f"  added by nginx as a proxy (the limit) to {op}: {hop:.3f} ms at the median")
        for label in [label for label in runtimes if label != "isolated"]:
            added = statistics.median(results[f"{label} {op}"]) - direct_ms
            ratio = f"{added / hop:.2f}x the proxy's" if hop > 0 else "the proxy added nothing measurable: rerun with more rounds"
            print(f"  added by the {label} to {op}: {added:.3f} ms at the median ({ratio})")
        if "isolated" in runtimes:
            isolation = statistics.median(results[f"isolated {op}"]) - statistics.median(results[f"runtime {op}"])
            print(f"  added by isolation to {op}: {isolation:.3f} ms at the median (isolated over in-process)")


if __name__ == "__main__":
    main()

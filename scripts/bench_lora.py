#!/usr/bin/env python3
"""LoRA load/unload latency through engine-runtime vs directly against the engine.

Usage: scripts/bench_lora.py [--build .build/release] [--rounds 500] [--flavor vllm] [--isolated]

Starts the engine simulator and engine-runtime (release builds, loopback only), then runs
`rounds` rounds; each round loads and unloads one adapter directly on the simulator and the
same through the runtime's AIBrix-compatible routes, alternating so both see the same machine
noise. Both clients keep one HTTP connection open. Prints the median and p90 of each, and the
runtime's added latency at the median. With --isolated, a second runtime whose driver runs in a
host process of its own (--isolated-drivers) takes part in the same rounds, and the latency
isolation adds over the in-process driver is printed too.
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


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
    args = parser.parse_args()
    simulator, engine_port = start(
        [f"{args.build}/engine-simulator", "--flavor", args.flavor, "--port", "0", "--log-level", "info"],
        "engine-simulator listening")
    env = dict(os.environ, INFERENCE_ENGINE=args.flavor, INFERENCE_ENGINE_ENDPOINT=f"http://127.0.0.1:{engine_port}")
    variants = [("runtime", [])] + ([("isolated", ["--isolated-drivers", args.flavor])] if args.isolated else [])
    runtimes = {}
    for label, extra in variants:
        runtimes[label] = start(
            [f"{args.build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"] + extra,
            "engine-runtime listening", env=env)
    adapter = tempfile.mkdtemp(prefix="bench-adapter-")
    load_path, unload_path = (("/v1/load_lora_adapter", "/v1/unload_lora_adapter") if args.flavor == "vllm"
                              else ("/load_lora_adapter", "/unload_lora_adapter"))
    direct = http.client.HTTPConnection("127.0.0.1", engine_port)
    through = {label: http.client.HTTPConnection("127.0.0.1", port) for label, (_, port) in runtimes.items()}
    results = {f"{label} {op}": [] for label in ["direct"] + list(runtimes) for op in ("load", "unload")}
    try:
        for round in range(args.rounds + 20):
            name = f"bench-{round}"
            timings = {"direct load": timed_post(direct, load_path, {"lora_name": name, "lora_path": adapter}),
                       "direct unload": timed_post(direct, unload_path, {"lora_name": name})}
            for label, connection in through.items():
                timings[f"{label} load"] = timed_post(connection, "/v1/lora_adapter/load", {"lora_name": name, "lora_path": adapter})
                timings[f"{label} unload"] = timed_post(connection, "/v1/lora_adapter/unload", {"lora_name": name})
            if round >= 20:  # warm-up rounds are not counted
                for key, value in timings.items():
                    results[key].append(value)
    finally:
        for process, _ in runtimes.values():
            process.terminate()
        simulator.terminate()
        os.rmdir(adapter)

    def p90(values):
        return sorted(values)[int(len(values) * 0.9)]

    print(f"{args.flavor}, {args.rounds} rounds, milliseconds:")
    for key, values in results.items():
        print(f"  {key:15s} median {statistics.median(values):.3f}  p90 {p90(values):.3f}")
    for op in ("load", "unload"):
        added = statistics.median(results[f"runtime {op}"]) - statistics.median(results[f"direct {op}"])
        print(f"  added by the runtime to {op}: {added:.3f} ms at the median")
        if "isolated" in runtimes:
            isolation = statistics.median(results[f"isolated {op}"]) - statistics.median(results[f"runtime {op}"])
            print(f"  added by isolation to {op}: {isolation:.3f} ms at the median (isolated over in-process)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Start-up time to the first /healthz 200, and idle RSS, of an engine-runtime binary.

Usage: scripts/bench_startup.py [--binary .build/release/engine-runtime] [--runs 30]

Each run starts `engine-runtime serve` on a free loopback port with the in-tree drivers (the
binary's own directory), polls GET /healthz over a raw socket every millisecond from the moment
of spawn, and records the time to the first 200. After the last run it waits a second with the
server idle and reads VmRSS and VmHWM from /proc. Prints the median, min and max.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def memory(pid):
    """VmRSS and VmHWM from status; Pss and private (USS) from smaps_rollup, in MiB."""
    fields = {}
    for name in ("status", "smaps_rollup"):
        with open(f"/proc/{pid}/{name}") as source:
            for line in source:
                key, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[key] = int(parts[0]) / 1024
    fields["USS"] = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/engine-runtime")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: build it with `swift build -c release`")

    times = []
    idle = None
    for run in range(args.runs):
        port = free_port()
        start = time.perf_counter()
        process = subprocess.Popen(
            [args.binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not healthz_ok(port):
                if process.poll() is not None:
                    sys.exit(f"engine-runtime exited with {process.returncode}")
                if time.perf_counter() - start > 10:
                    sys.exit("no /healthz 200 within 10 s")
                time.sleep(0.001)
            times.append((time.perf_counter() - start) * 1000)
            if run == args.runs - 1:
                time.sleep(1.0)
                idle = memory(process.pid)
        finally:
            process.terminate()
            process.wait()

    print(f"start-up to first /healthz 200 over {args.runs} runs: median {statistics.median(times):.1f} ms "
          f"(min {min(times):.1f}, max {max(times):.1f})")
    print(f"idle RSS after 1 s: {idle['VmRSS']:.1f} MiB (peak {idle['VmHWM']:.1f} MiB); "
          f"anonymous {idle['RssAnon']:.1f} MiB, file-backed {idle['RssFile']:.1f} MiB; "
          f"PSS {idle['Pss']:.1f} MiB; private (USS) {idle['USS']:.1f} MiB")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Soak: hostile and heavy clients against engine-runtime while probes are timed.

Usage: scripts/soak.py [--build .build/release] [--seconds 180] [--idle 3000] [--slow 500]
                       [--scrapers 16] [--bytes 20000000] [--nofile 8192] [--runtime-nofile N] [-- runtime flags]

Starts the simulator (vLLM flavor, an exposition of about --bytes) and the runtime, then for
--seconds keeps up, all at once, on loopback:
- --idle connections that connect and send nothing (reopened when the runtime closes them);
- --slow connections that send a request head one line a second, or a body a byte a second;
- --scrapers threads fetching /metrics in a loop;
- one probe: GET /healthz every 100 ms (a fresh connection each time, as kubelet does).
Reports probe latency (median, p99, max) and failures, the runtime's peak and final RSS, its
most open file descriptors, and its CPU use. Run it against two builds (say, main and a
baseline worktree) to compare; the figures are in docs/operators.md and the issue notes.
"""
import argparse
import collections
import http.client
import os
import resource
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lora import start  # noqa: E402
from bench_startup import activity, memory  # noqa: E402


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Pressure:
    def __init__(self, port, stop):
        self.port = port
        self.stop = stop
        self.reopened = 0
        self.refused = 0

    def connect(self):
        try:
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            connection.setblocking(False)
            return connection
        except OSError:
            self.refused += 1
            return None

    def closed(self, connection):
        try:
            return connection.recv(65536, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def idle(self, count):
        sockets = [self.connect() for _ in range(count)]
        while not self.stop.is_set():
            for index, connection in enumerate(sockets):
                if connection is None or self.closed(connection):
                    if connection is not None:
                        connection.close()
                    sockets[index] = self.connect()
                    self.reopened += 1
            self.stop.wait(1)
        for connection in sockets:
            if connection is not None:
                connection.close()

    def slow(self, count):
        heads = [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"] + [b"X-Pad-%d: y\r\n" % i for i in range(1000)]
        body_head = (b"POST /v1/lora_adapter/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000\r\n\r\n")
        sockets = [[self.connect(), 0, index % 2] for index in range(count)]
        while not self.stop.is_set():
            for entry in sockets:
                connection, step, kind = entry
                if connection is None or self.closed(connection):
                    if connection is not None:
                        connection.close()
                    entry[0], entry[1] = self.connect(), 0
                    self.reopened += 1
                    continue
                try:
                    if kind == 0:
                        connection.send(heads[step % len(heads)])
                    else:
                        connection.send(body_head if step == 0 else b" ")
                    entry[1] += 1
                except OSError:
                    entry[0] = None
            self.stop.wait(1)

    def scrape(self, results):
        while not self.stop.is_set():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                response.read()
                results.append(response.status)
                connection.close()
            except (OSError, http.client.HTTPException) as error:
                # The kind says who gave up: a reset or close by the runtime (its connection
                # cap making room), a refused connect, or this client's own timeout.
                results.append(type(error).__name__)


def probe(port, stop, latencies, failures):
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failures.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            failures.append(str(error))
        stop.wait(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=".build/release")
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--idle", type=int, default=3000)
    parser.add_argument("--slow", type=int, default=500)
    parser.add_argument("--scrapers", type=int, default=16)
    parser.add_argument("--bytes", type=int, default=20_000_000)
    parser.add_argument("--nofile", type=int, default=8192, help="open-files limit for this script and the runtime")
    parser.add_argument("--runtime-nofile", type=int, help="run the runtime under this open-files limit (soft and hard)")
    parser.add_argument("extra", nargs="*", help="more runtime flags (after --)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(args.nofile, hard), hard))

    simulator, engine_port = start(
        [f"{args.build}/engine-simulator", "--flavor", "vllm", "--port", "0", "--log-level", "info"], "engine-simulator listening")
    connection = http.client.HTTPConnection("127.0.0.1", engine_port)
    connection.request("POST", "/_sim/config", body='{"metrics_bytes": %d}' % args.bytes, headers={"Content-Type": "application/json"})
    connection.getresponse().read()
    env = dict(os.environ, INFERENCE_ENGINE="vllm", INFERENCE_ENGINE_ENDPOINT=f"http://127.0.0.1:{engine_port}")
    limit = ["prlimit", f"--nofile={args.runtime_nofile}:{args.runtime_nofile}"] if args.runtime_nofile else []
    runtime, port = start(
        limit + [f"{args.build}/engine-runtime", "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info",
         "--probe-timeout", "30"] + args.extra,
        "engine-runtime listening", env=env)
    try:
        stop = threading.Event()
        pressure = Pressure(port, stop)
        latencies, failures, scrapes = [], [], []
        threads = [threading.Thread(target=pressure.idle, args=(args.idle,)),
                   threading.Thread(target=pressure.slow, args=(args.slow,)),
                   threading.Thread(target=probe, args=(port, stop, latencies, failures))]
        threads += [threading.Thread(target=pressure.scrape, args=(scrapes,)) for _ in range(args.scrapers)]
        cpu_before = activity(runtime.pid)[0]
        started = time.time()
        for thread in threads:
            thread.start()
        most_fds = 0
        while time.time() - started < args.seconds and runtime.poll() is None:
            most_fds = max(most_fds, open_fds(runtime.pid))
            time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
        elapsed = time.time() - started
        cpu = (activity(runtime.pid)[0] - cpu_before) / elapsed * 100 if runtime.poll() is None else float("nan")
        time.sleep(3)
        final = memory(runtime.pid)["VmRSS"] if runtime.poll() is None else float("nan")
        ordered = sorted(latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else float("nan")
        print(f"build {args.build}: {args.seconds} s, {args.idle} idle + {args.slow} slow connections, "
              f"{args.scrapers} scrapers of {args.bytes / 1e6:.0f} MB")
        print(f"  probes: {len(latencies)} ok, {len(failures)} failed"
              + (f" (first: {failures[0]})" if failures else ""))
        if ordered:
            print(f"  probe latency: median {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms")
        failed = collections.Counter(str(s) for s in scrapes if s != 200)
        print(f"  scrapes: {sum(1 for s in scrapes if s == 200)} ok, {sum(failed.values())} failed"
              + (" (" + ", ".join(f"{count} {kind}" for kind, count in failed.most_common()) + ")" if failed else ""))
        print(f"  runtime: peak RSS {memory(runtime.pid)['VmHWM']:.0f} MiB, RSS 3 s after {final:.0f} MiB, "
              f"most open fds {most_fds}, CPU {cpu:.0f}%")
        print(f"  connections the runtime closed (reopened by the script): {pressure.reopened}; connects refused: {pressure.refused}")
        if runtime.poll() is not None:
            print(f"  the runtime exited with {runtime.returncode}")
    finally:
        for process in (runtime, simulator):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()

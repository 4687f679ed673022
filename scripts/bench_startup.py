#!/usr/bin/env python3
"""Start-up time to the first /healthz 200, idle RSS, threads, wake-ups and CPU of engine-runtime.

Usage: scripts/bench_startup.py [--binary .build/release/engine-runtime] [--baseline OTHER] [--runs 30]

Each run starts `engine-runtime serve` on a free loopback port with the in-tree drivers (the
binary's own directory), polls GET /healthz over a raw socket every millisecond from the moment
of spawn, and records the time to the first 200. The limit, measured in the same rounds: the
spawn of /bin/true to its exit. With --baseline, the two binaries alternate run by run.

After the last run it leaves the server idle: after a second it reads VmRSS and VmHWM, then
counts over --idle-seconds the CPU time and the context switches of all its threads (each
switch is a wake-up), and the thread count. Prints medians, min and max.

The limit of the idle figures: a real llama-server (the engine most like a sidecar in size: one
C++ process) idling with a tiny model, measured the same way in the same run, with the
runtime's ratio to it. --llama-server PATH names the binary; by default it is the one the tests
use (ENGINE_RUNTIME_LLAMA_SERVER, else .build/tools/bin/llama-server from scripts/setup.sh), and
the comparison is left out when there is none.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
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


def activity(pid):
    """CPU seconds, context switches per thread id, and the thread count of `pid`."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = {}
    tasks = os.listdir(f"/proc/{pid}/task")
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches[task] = switches.get(task, 0) + int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return cpu, switches, len(tasks)


def wakeups(before, after):
    """Context switches between two `activity` readings: of the threads alive at the end, what
    they did since the first reading (or since they started). A thread that ended in between
    takes its count with it, so it is left out of both (a plain difference of sums went
    negative when an idle pool thread exited)."""
    return sum(count - before.get(task, 0) for task, count in after.items())


def idle_figures(pid, idle_seconds):
    """A second after start: memory; then over idle_seconds CPU, wake-ups and threads."""
    time.sleep(1.0)
    idle = memory(pid)
    cpu0, switches0, _ = activity(pid)
    time.sleep(idle_seconds)
    cpu1, switches1, threads = activity(pid)
    idle.update(cpu_ms_per_s=(cpu1 - cpu0) * 1000 / idle_seconds,
                wakeups_per_s=wakeups(switches0, switches1) / idle_seconds, threads=threads)
    return idle


def start_once(binary, idle_seconds=None):
    """One start to the first /healthz 200, in ms; with idle_seconds, also the idle figures."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not healthz_ok(port):
            if process.poll() is not None:
                sys.exit(f"{binary} exited with {process.returncode}")
            if time.perf_counter() - start > 10:
                sys.exit("no /healthz 200 within 10 s")
            time.sleep(0.001)
        elapsed = (time.perf_counter() - start) * 1000
        return elapsed, idle_figures(process.pid, idle_seconds) if idle_seconds else None
    finally:
        process.terminate()
        process.wait()


def llama_idle(binary, idle_seconds):
    """llama-server idle with a tiny model (scripts/tiny_gguf.py): the same idle figures."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python = os.path.join(root, ".build/tools/venv/bin/python")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        model = os.path.join(scratch, "tiny.gguf")
        subprocess.run([python, os.path.join(root, "scripts/tiny_gguf.py"), "model", model], check=True)
        port = free_port()
        process = subprocess.Popen(
            [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-c", "256", "-t", "1", "--log-disable"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        if s.recv(64).startswith(b"HTTP/1.1 200"):
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.time() > deadline:
                    sys.exit(f"{binary} did not answer /health with 200")
                time.sleep(0.01)
            return idle_figures(process.pid, idle_seconds)
        finally:
            process.terminate()
            process.wait()


def installed_llama_server():
    """The llama-server the tests use (ENGINE_RUNTIME_LLAMA_SERVER, else the link scripts/setup.sh
    makes in .build/tools/bin), or None when there is none."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("ENGINE_RUNTIME_LLAMA_SERVER") or os.path.join(root, ".build/tools/bin/llama-server")
    return path if os.access(path, os.X_OK) else None


def spawn_true():
    start = time.perf_counter()
    subprocess.run(["/bin/true"])
    return (time.perf_counter() - start) * 1000


def summary(values):
    return f"median {statistics.median(values):.1f} ms (min {min(values):.1f}, max {max(values):.1f})"


def report(name, times, idle, limit, engine=None):
    print(f"{name}: start-up to first /healthz 200 over {len(times)} runs: {summary(times)}; "
          f"{statistics.median(times) / limit:.1f}x the spawn of /bin/true")
    print(f"{name}: idle RSS after 1 s: {idle['VmRSS']:.1f} MiB (peak {idle['VmHWM']:.1f} MiB); "
          f"anonymous {idle['RssAnon']:.1f} MiB, file-backed {idle['RssFile']:.1f} MiB; "
          f"PSS {idle['Pss']:.1f} MiB; private (USS) {idle['USS']:.1f} MiB")
    print(f"{name}: idle: {idle['threads']} threads, {idle['wakeups_per_s']:.1f} wake-ups/s, "
          f"{idle['cpu_ms_per_s']:.2f} ms CPU per s")
    if engine:
        print(f"{name}: against llama-server idle: RSS {idle['VmRSS'] / engine['VmRSS']:.2f}x, "
              f"private (USS) {idle['USS'] / engine['USS']:.2f}x, threads {idle['threads'] / engine['threads']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/engine-runtime")
    parser.add_argument("--baseline", help="another engine-runtime binary, measured in alternating runs")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--llama-server", help="llama-server binary for the idle limit (default: the tests' one, from scripts/setup.sh)")
    args = parser.parse_args()
    llama = args.llama_server or installed_llama_server()
    binaries = [args.binary] + ([args.baseline] if args.baseline else [])
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} not found: build it with `swift build -c release`")

    times = {binary: [] for binary in binaries}
    idle = {}
    limits = []
    for run in range(args.runs):
        limits.append(spawn_true())
        for binary in binaries:
            last = run == args.runs - 1
            elapsed, figures = start_once(binary, args.idle_seconds if last else None)
            times[binary].append(elapsed)
            if figures:
                idle[binary] = figures
    limit = statistics.median(limits)
    print(f"limit: spawn of /bin/true to its exit: {summary(limits)}")
    engine = None
    if llama:
        engine = llama_idle(llama, args.idle_seconds)
        print(f"limit: llama-server idle with a tiny model: RSS {engine['VmRSS']:.1f} MiB (anonymous "
              f"{engine['RssAnon']:.1f}, file-backed {engine['RssFile']:.1f}); private (USS) {engine['USS']:.1f} MiB; "
              f"{engine['threads']} threads, {engine['wakeups_per_s']:.1f} wake-ups/s, {engine['cpu_ms_per_s']:.2f} ms CPU per s")
    else:
        print("limit: no llama-server (scripts/setup.sh builds one): the idle figures are not compared")
    for binary in binaries:
        report(binary, times[binary], idle[binary], limit, engine)


if __name__ == "__main__":
    main()

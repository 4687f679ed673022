#!/usr/bin/env python3
"""The model runtime under load: activate N models at once, time each to ready, time the
snapshot the controller polls, the sidecar's memory, and its SIGTERM stop of every engine.

Usage: scripts/bench_model_runtime.py [--binary .build/release/engine-runtime] [--models 8]
       [--llama-server PATH]   (with it, half the models are tiny GGUFs on a real llama-server)

The engines are the engine simulator started as `vllm serve` (a link named vllm), so the
figures are the runtime's own costs (spawn, supervision, probes, snapshot), not an engine's
load time. Everything runs on loopback in a scratch directory that is removed afterwards.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/engine-runtime"))
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--llama-server", default=None)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    build = os.path.dirname(binary)
    simulator = os.path.join(build, "engine-simulator")
    for path in (binary, simulator):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is missing: swift build -c release first")

    scratch = tempfile.mkdtemp(prefix="bench-model-runtime-")
    try:
        for name in ("bin", "models", "state", "cache"):
            os.makedirs(os.path.join(scratch, name))
        os.symlink(simulator, os.path.join(scratch, "bin", "vllm"))
        gguf = None
        if args.llama_server:
            gguf = os.path.join(scratch, "models", "tiny.gguf")
            python = os.path.join(ROOT, ".build/tools/venv/bin/python")
            subprocess.run([python, os.path.join(ROOT, "scripts/tiny_gguf.py"), "model", gguf], check=True)
        for index in range(args.models):
            os.makedirs(os.path.join(scratch, "models", f"m{index}"))
        port = free_port()
        base = 24000 + (os.getpid() % 40) * 100
        environment = {
            "PATH": "/usr/bin:/bin", "HOME": scratch,
            "ENGINE_RUNTIME_MODEL_STATE_DIR": os.path.join(scratch, "state"),
            "DOWNLOADER_LOCAL_DIR": os.path.join(scratch, "models"),
            "ENGINE_RUNTIME_MODEL_ENGINE_PATH": os.path.join(scratch, "bin") + ":/usr/bin:/bin",
            "ENGINE_RUNTIME_MODEL_ENGINE_HOST": "127.0.0.1", "ENGINE_RUNTIME_MODEL_PORTS": f"{base}-{base + 99}",
            "AIBRIX_WEIGHT_CACHE_DIR": os.path.join(scratch, "cache"),
            "ENGINE_RUNTIME_MODEL_MAX_MODELS": str(max(16, args.models)),
            "ENGINE_RUNTIME_MODEL_SUPERVISOR_INTERVAL_MS": "200",
        }
        if args.llama_server:
            environment["ENGINE_RUNTIME_MODEL_LLAMACPP_COMMAND"] = os.path.abspath(args.llama_server)
        log = open(os.path.join(scratch, "runtime.log"), "w")
        runtime = subprocess.Popen(
            [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--driver-dir", build, "--model-runtime"],
            env=environment, stderr=log, stdout=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if call(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.01)
        idle_rss = rss_mib(runtime.pid)

        started = {}
        activate_ms = []
        for index in range(args.models):
            name = f"m{index}"
            llama = gguf is not None and index % 2 == 1
            body = {"model_name": name, "artifact_url": gguf if llama else os.path.join(scratch, "models", name),
                    "engine": "llamacpp" if llama else "vllm"}
            began = time.monotonic()
            status, answer = call(port, "POST", "/v1/runtime/models/activate", body)
            activate_ms.append((time.monotonic() - began) * 1000)
            if status != 200:
                sys.exit(f"activate {name}: {status} {answer}")
            started[name] = began
        ready_ms = {}
        snapshot_ms = []
        while len(ready_ms) < args.models and time.monotonic() - min(started.values()) < 120:
            began = time.monotonic()
            status, snapshot = call(port, "GET", "/v1/runtime/snapshot")
            snapshot_ms.append((time.monotonic() - began) * 1000)
            for model in snapshot["models"]:
                if model["ready"] and model["model_name"] not in ready_ms:
                    ready_ms[model["model_name"]] = (time.monotonic() - started[model["model_name"]]) * 1000
            time.sleep(0.02)
        if len(ready_ms) < args.models:
            _, listed = call(port, "GET", "/v1/runtime/models")
            runtime.kill()
            for model in listed["models"]:
                if model["model_name"] not in ready_ms:
                    print(model["model_name"], model["phase"], model.get("last_error"), model["log_tail"][-3:], file=sys.stderr)
            sys.exit(f"only {len(ready_ms)} of {args.models} models got ready")
        steady = []
        for _ in range(50):
            began = time.monotonic()
            call(port, "GET", "/v1/runtime/snapshot")
            steady.append((time.monotonic() - began) * 1000)
        busy_rss = rss_mib(runtime.pid)
        began = time.monotonic()
        runtime.send_signal(signal.SIGTERM)
        runtime.wait(timeout=120)
        stop_s = time.monotonic() - began

        def line(label, values, unit="ms"):
            print(f"{label:<44} median {statistics.median(values):8.1f} {unit}  min {min(values):8.1f}  max {max(values):8.1f}")

        kinds = "vLLM simulator" + (" + llama-server" if gguf else "")
        print(f"{args.models} models ({kinds}), binary {binary}")
        line("activate answer", activate_ms)
        line("activate to ready (snapshot says ready)", list(ready_ms.values()))
        line(f"snapshot with {args.models} ready models", steady)
        print(f"{'sidecar RSS idle / with the models':<44} {idle_rss:.1f} MiB / {busy_rss:.1f} MiB")
        print(f"{'SIGTERM to exit, every engine stopped':<44} {stop_s:.2f} s (exit status {runtime.returncode})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Download throughput of `engine-runtime download` against curl, from the same nginx on loopback.

Usage: scripts/bench_download.py [--build .build/release] [--big-mib 1024] [--small 200]
                                 [--small-kib 256] [--s3-files 3] [--s3-mib 96] [--rounds 3]

Serves one large file and a Hugging Face-style mirror of many small files from nginx (a
temporary directory, loopback only), then, round by round so both see the same machine noise:
  - big file:    curl -o (one stream)          vs engine-runtime download (ranged parts)
  - small files: curl --parallel (32 at once)  vs engine-runtime download hf://bench/many
  - S3 (moto_server from the test venv, --s3-files 0 to skip): curl --parallel of the objects
    vs engine-runtime download s3://bench/weights/ (listing, ranged parts, ETag check)
  - the disk's durable write limit: dd of the big file's size with conv=fsync, the bound of any
    download that flushes its bytes to disk, as engine-runtime does
Prints the median MB/s of each, the ratio, and engine-runtime's peak RSS (ru_maxrss).
engine-runtime also flushes each file to disk (fsync) before publishing; curl does not
(DOWNLOADER_FSYNC=0 in the environment turns that off for a like-for-like run).
"""
import argparse
import json
import os
import resource
import shutil
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


def start_nginx(directory, port):
    os.makedirs(f"{directory}/tmp", exist_ok=True)
    conf = f"""
daemon off; worker_processes 2; error_log {directory}/error.log; pid {directory}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {directory}/tmp; proxy_temp_path {directory}/tmp; fastcgi_temp_path {directory}/tmp;
  uwsgi_temp_path {directory}/tmp; scgi_temp_path {directory}/tmp;
  server {{
    listen 127.0.0.1:{port}; root {directory}/www;
    location /api/ {{ default_type application/json; }}
    location / {{ rewrite ^/([^/]+)/([^/]+)/resolve/[^/]+/(.*)$ /repos/$1/$2/$3 break; }}
  }}
}}"""
    return run_nginx(directory, port, conf)


def run_nginx(directory, port, conf):
    """Runs nginx with `conf` (written to directory/nginx.conf) until it accepts on port."""
    with open(f"{directory}/nginx.conf", "w") as f:
        f.write(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([nginx, "-c", f"{directory}/nginx.conf", "-p", directory, "-e", f"{directory}/error.log"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("nginx did not start")


def start_moto(executable):
    """moto_server on a free loopback port; returns it and its base URL."""
    port = free_port()
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("moto_server did not start")


def fill_bucket(base, files, mib, work, multipart):
    """Bucket `bench` with weights/shard-N.bin, put with boto3 from the venv. One PUT each by
    default: the ETag is then the content's MD5 and the runtime verifies every byte (the issue's
    "verification on"); `multipart` uploads as large real uploads are, whose ETags check nothing."""
    python = os.path.join(ROOT, ".build/tools/venv/bin/python")
    script = f"""
import boto3, os
s3 = boto3.client("s3", endpoint_url="{base}", region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
s3.create_bucket(Bucket="bench")
for index in range({files}):
    path = "{work}/shard.bin"
    with open(path, "wb") as f:
        for _ in range({mib}):
            f.write(os.urandom(1 << 20))
    if {multipart}:
        s3.upload_file(path, "bench", f"weights/shard-{{index}}.bin")
    else:
        with open(path, "rb") as f:
            s3.put_object(Bucket="bench", Key=f"weights/shard-{{index}}.bin", Body=f, ACL="public-read")
os.remove("{work}/shard.bin")
"""
    subprocess.run([python, "-c", script], check=True)


def run(command, env=None):
    """Runs a command; returns (seconds, peak RSS in MiB of the child). Dirty pages are
    flushed first, so neither side pays for the other's writeback."""
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{command[0]} failed ({status}): {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, ".build/release"))
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--small-kib", type=int, default=256)
    parser.add_argument("--s3-files", type=int, default=3)
    parser.add_argument("--s3-mib", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3-multipart", action="store_true",
                        help="upload the S3 objects in parts (multipart ETags: nothing to verify against)")
    parser.add_argument("--baseline", help="a second build directory whose S3 download is timed in the same rounds "
                        "(an earlier commit, to compare two builds side by side)")
    args = parser.parse_args()
    binary = os.path.join(args.build, "engine-runtime")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} missing: swift build -c release")

    work = tempfile.mkdtemp(prefix="bench-download-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    nginx = moto = None
    try:
        www = f"{work}/www"
        os.makedirs(f"{www}/files")
        with open(f"{www}/files/big.bin", "wb") as f:
            for _ in range(args.big_mib):
                f.write(os.urandom(1 << 20))
        siblings = []
        os.makedirs(f"{www}/repos/bench/many")
        for i in range(args.small):
            name = f"shard-{i:04d}.bin"
            with open(f"{www}/repos/bench/many/{name}", "wb") as f:
                f.write(os.urandom(args.small_kib << 10))
            siblings.append({"rfilename": name, "size": args.small_kib << 10})
        os.makedirs(f"{www}/api/models/bench/many/revision")
        with open(f"{www}/api/models/bench/many/revision/main", "w") as f:
            json.dump({"sha": "0" * 40, "siblings": siblings}, f)
        port = free_port()
        nginx = start_nginx(work, port)
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AWS_"))}
        env["HF_ENDPOINT"] = base
        urls = f"{work}/urls.txt"
        with open(urls, "w") as f:
            for sibling in siblings:
                f.write(f'url = "{base}/bench/many/resolve/main/{sibling["rfilename"]}"\noutput = "{work}/curl-small/{sibling["rfilename"]}"\n')

        moto_server = os.path.join(ROOT, ".build/tools/venv/bin/moto_server")
        s3_files = args.s3_files if os.access(moto_server, os.X_OK) else 0
        if args.s3_files and not s3_files:
            print(f"{moto_server} missing (scripts/setup.sh installs it): no S3 figures", file=sys.stderr)
        s3_bytes = s3_files * (args.s3_mib << 20)
        if s3_files:
            moto, s3_base = start_moto(moto_server)
            fill_bucket(s3_base, s3_files, args.s3_mib, work, args.s3_multipart)
            s3_urls = f"{work}/s3-urls.txt"
            with open(s3_urls, "w") as f:
                for index in range(s3_files):
                    f.write(f'url = "{s3_base}/bench/weights/shard-{index}.bin"\noutput = "{work}/curl-s3/shard-{index}.bin"\n')
            s3_env = dict(env, AWS_ENDPOINT_URL=s3_base, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_REGION="us-east-1")

        results = {"big_curl": [], "big_ours": [], "small_curl": [], "small_ours": [], "durable": []}
        if s3_files:
            results.update({"s3_curl": [], "s3_ours": []})
            if args.baseline:
                results["s3_baseline"] = []
        peak = {"big": 0.0, "small": 0.0}
        big_bytes = args.big_mib << 20
        small_bytes = args.small * (args.small_kib << 10)
        for round_number in range(args.rounds):
            for directory in ("curl-big", "curl-small", "curl-s3", "ours", "dd"):
                shutil.rmtree(f"{work}/{directory}", ignore_errors=True)
                os.makedirs(f"{work}/{directory}")
            seconds, _ = run(["curl", "-fsS", "-o", f"{work}/curl-big/big.bin", f"{base}/files/big.bin"])
            results["big_curl"].append(big_bytes / seconds / 1e6)
            seconds, rss = run([binary, "download", "--model-uri", f"{base}/files/big.bin", "--local-dir", f"{work}/ours",
                                "--model-name", "big", "--log-level", "error"], env)
            results["big_ours"].append(big_bytes / seconds / 1e6)
            peak["big"] = max(peak["big"], rss)
            seconds, _ = run(["curl", "-fsS", "--parallel", "--parallel-max", "32", "--config", urls])
            results["small_curl"].append(small_bytes / seconds / 1e6)
            seconds, rss = run([binary, "download", "--model-uri", "hf://bench/many", "--local-dir", f"{work}/ours",
                                "--log-level", "error"], env)
            results["small_ours"].append(small_bytes / seconds / 1e6)
            peak["small"] = max(peak["small"], rss)
            if s3_files:
                seconds, _ = run(["curl", "-fsS", "--parallel", "--parallel-max", "32", "--config", s3_urls])
                results["s3_curl"].append(s3_bytes / seconds / 1e6)
                # With a baseline, the two builds take turns going first (the page cache and
                # writeback left by one run slow the next).
                builds = [("s3_ours", binary)]
                if args.baseline:
                    builds.append(("s3_baseline", os.path.join(args.baseline, "engine-runtime")))
                    if round_number % 2:
                        builds.reverse()
                for key, program in builds:
                    shutil.rmtree(f"{work}/ours/s3", ignore_errors=True)
                    seconds, rss = run([program, "download", "--model-uri", "s3://bench/weights/", "--local-dir",
                                        f"{work}/ours", "--model-name", "s3", "--log-level", "error"], s3_env)
                    results[key].append(s3_bytes / seconds / 1e6)
                    if key == "s3_ours":
                        peak["s3"] = max(peak.get("s3", 0.0), rss)
            seconds, _ = run(["dd", "if=/dev/zero", f"of={work}/dd/big.bin", "bs=1M", f"count={args.big_mib}", "conv=fsync",
                              "status=none"])
            results["durable"].append(big_bytes / seconds / 1e6)
            print(f"round {round_number + 1}: " + ", ".join(f"{k} {v[-1]:.0f} MB/s" for k, v in results.items()), flush=True)

        median = {k: statistics.median(v) for k, v in results.items()}
        # The ratio of each round (both sides measured back to back), then its median: the
        # machine's noise between rounds cancels out.
        kinds = ("big", "small", "s3") if s3_files else ("big", "small")
        ratio = {kind: statistics.median(o / c for o, c in zip(results[f"{kind}_ours"], results[f"{kind}_curl"]))
                 for kind in kinds}
        durable = statistics.median(o / d for o, d in zip(results["big_ours"], results["durable"]))
        print()
        print(f"one {args.big_mib} MiB file:   curl {median['big_curl']:.0f} MB/s, engine-runtime {median['big_ours']:.0f} MB/s "
              f"(median per-round ratio {ratio['big']:.2f}x curl), peak RSS {peak['big']:.1f} MiB")
        print(f"{args.small} files of {args.small_kib} KiB: curl --parallel {median['small_curl']:.0f} MB/s, "
              f"engine-runtime {median['small_ours']:.0f} MB/s (median per-round ratio {ratio['small']:.2f}x curl), "
              f"peak RSS {peak['small']:.1f} MiB")
        if s3_files:
            print(f"S3, {s3_files} objects of {args.s3_mib} MiB (moto): curl --parallel {median['s3_curl']:.0f} MB/s, "
                  f"engine-runtime {median['s3_ours']:.0f} MB/s (median per-round ratio {ratio['s3']:.2f}x curl), "
                  f"peak RSS {peak['s3']:.1f} MiB")
            if args.baseline:
                versus = statistics.median(o / b for o, b in zip(results["s3_ours"], results["s3_baseline"]))
                print(f"S3 baseline build {args.baseline}: {median['s3_baseline']:.0f} MB/s; this build at {versus:.2f}x it "
                      f"(median per-round ratio)")
        print(f"durable write limit (dd conv=fsync, {args.big_mib} MiB): {median['durable']:.0f} MB/s; the big file "
              f"downloaded with fsync at {durable:.2f}x it")
    finally:
        if moto:
            moto.kill()  # moto_server (werkzeug) ignores SIGTERM
            moto.wait()
        if nginx:
            nginx.terminate()
            nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

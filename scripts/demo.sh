#!/usr/bin/env bash
# A demo without a GPU: the engine simulator as a vLLM engine, engine-runtime in front of it,
# and the requests to try. Stops both on Ctrl-C (or SIGTERM).
# Usage: scripts/demo.sh [BUILD_DIR]   (default .build/release; scripts/run.sh --demo builds it)
# Ports: DEMO_ENGINE_PORT (default 8000), DEMO_PORT (default 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-.build/release}"
engine_port="${DEMO_ENGINE_PORT:-8000}"
port="${DEMO_PORT:-8080}"
for program in engine-simulator engine-runtime; do
  if [[ ! -x "$build/$program" ]]; then
    echo "demo: $build/$program is missing; build first (swift build -c release), or run scripts/run.sh --demo" >&2
    exit 1
  fi
done
work="$(mktemp -d "${TMPDIR:-/tmp}/engine-runtime-demo.XXXXXX")"
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT
trap 'stop; exit 0' INT TERM
"$build/engine-simulator" --flavor vllm --host 127.0.0.1 --port "$engine_port" 2>"$work/engine.log" &
pids+=($!)
INFERENCE_ENGINE=vllm INFERENCE_ENGINE_ENDPOINT="http://127.0.0.1:$engine_port" DOWNLOADER_LOCAL_DIR="$work/models" \
  ENGINE_RUNTIME_ADAPTER_DIR="$work/adapters" "$build/engine-runtime" serve --host 127.0.0.1 --port "$port" 2>"$work/runtime.log" &
pids+=($!)
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "demo: engine-runtime did not start; its log:" >&2
  cat "$work/runtime.log" >&2
  exit 1
fi
mkdir -p "$work/adapters/sql-lora"
cat <<TRY >&2
engine-runtime is serving on http://127.0.0.1:$port in front of a simulated vLLM on :$engine_port.
Logs: $work/runtime.log, $work/engine.log. Try:
  curl -s localhost:$port/ready
  curl -s localhost:$port/v1/models
  curl -s -XPOST localhost:$port/v1/lora_adapter/load -H 'content-type: application/json' -d '{"lora_name":"sql-lora","lora_path":"$work/adapters/sql-lora"}'
  curl -s localhost:$port/v1/lora_adapters
  curl -s localhost:$port/metrics | grep '^llm_engine_'
  curl -s -XPOST localhost:$port/v1/sleep -H 'content-type: application/json' -d '{"level":1}'
Ctrl-C stops both.
TRY
wait "${pids[1]}"

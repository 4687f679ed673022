#!/usr/bin/env bash
# Builds a release engine-runtime and runs it with the in-tree drivers (vLLM by default).
# Extra arguments go to `engine-runtime serve`, e.g. scripts/run.sh --port 9090
# scripts/run.sh --demo: no engine needed; a simulated vLLM behind the runtime (scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
if [[ "${1:-}" == "--demo" ]]; then
  shift
  exec scripts/demo.sh .build/release "$@"
fi
# Say so when nothing answers where the engine should be: the runtime still starts (and reports
# the engine not ready), but a newcomer most likely wants the demo.
endpoint="${INFERENCE_ENGINE_ENDPOINT:-http://localhost:8000}"
address="${endpoint#*://}"
address="${address%%/*}"
host="${address%%:*}"
engine_port="${address##*:}"
if [[ "$engine_port" == "$address" ]]; then [[ "$endpoint" == https://* ]] && engine_port=443 || engine_port=80; fi
if [[ -z "${ENGINE_RUNTIME_CONFIG:-}" ]] && ! (exec 3<>"/dev/tcp/$host/$engine_port") 2>/dev/null; then
  echo "run: no engine answers at $endpoint (INFERENCE_ENGINE_ENDPOINT); the runtime starts anyway." >&2
  echo "run: for a demo without a GPU, run: scripts/run.sh --demo" >&2
fi
exec .build/release/engine-runtime serve "$@"

#!/usr/bin/env bash
# Builds a release engine-runtime and runs it with the in-tree drivers (vLLM by default).
# Extra arguments go to `engine-runtime serve`, e.g. scripts/run.sh --port 9090
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
exec .build/release/engine-runtime serve "$@"

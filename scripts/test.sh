#!/usr/bin/env bash
# Runs every test: installs what is missing, builds (drivers included), runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A plain `swift build` first: `swift test` needs the driver .so files and the engine-runtime
# executable next to the test bundle.
swift build --build-tests
swift test "$@"

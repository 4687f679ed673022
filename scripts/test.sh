#!/usr/bin/env bash
# Runs every test (Tests/UnitTests and Tests/IntegrationTests): installs what is missing,
# builds (drivers included), runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A plain `swift build` first: `swift test` needs the driver .so files and the engine-runtime
# executable next to the test bundle.
swift build --build-tests
# Swift Testing starts every test at once by default; on two cores, 130 tests that spawn
# runtimes, simulators, nginx, moto and Prometheus side by side starve the in-process servers
# of other tests for tens of seconds. Eight at a time keeps the run short and the servers
# responsive (ENGINE_RUNTIME_TEST_WIDTH overrides it).
swift test --experimental-maximum-parallelization-width "${ENGINE_RUNTIME_TEST_WIDTH:-8}" "$@"

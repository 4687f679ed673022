#!/usr/bin/env bash
# Installs what building and testing engine-runtime needs on Debian 12 with the Swift toolchain.
# Idempotent and quick when everything is present: apt runs only for missing packages.
set -euo pipefail

packages=(
    libcurl4-openssl-dev  # the host's HTTP client and download engine
    libffi-dev            # typed vendor extension operations
    pkg-config            # SwiftPM finds libcurl and libffi through it
    gcc g++               # tests compile C drivers and check the header as C11 and C++17
    make                  # examples/driver-template-c
    curl                  # the run and benchmark scripts probe the server
    python3 python3-venv  # test tools from PyPI live in a virtual environment
    prometheus            # promtool and a real Prometheus server for the metrics tests
    nginx-light           # HTTP and Hugging Face-style mirror servers for the download tests
    cmake ninja-build     # building llama-server (scripts/llama-server.sh), the real engine of the tests
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }

# Rust 1.77 or newer builds examples/driver-template-rust (its layout asserts use
# core::mem::offset_of!); Debian 12's cargo package is older, so rustup installs it when needed.
cargo_bin=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
if ! "$cargo_bin" --version 2>/dev/null | awk '{ split($2, v, "."); exit !(v[1] > 1 || v[2] >= 77) }'; then
    echo "setup: installing Rust (rustup, minimal profile) into ~/.cargo" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --no-modify-path >/dev/null
fi

# Test tools from PyPI, pinned, in .build/tools/venv (outside the system Python).
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.build/tools/venv"
# moto: the S3-compatible server of the download tests; gguf: the tests write tiny llama.cpp
# models and LoRA adapters with it.
# kubernetes-validate: the Kubernetes examples checked against the API's schemas (offline).
tools=("schemathesis==4.32.5" "moto[server]==5.2.1" "gguf==0.19.0" "kubernetes-validate==1.37.0")
if [[ ! -x "$venv/bin/schemathesis" || ! -x "$venv/bin/moto_server" || ! -x "$venv/bin/kubernetes-validate" ]] \
    || ! "$venv/bin/python" -c "import gguf" 2>/dev/null; then
    echo "setup: installing ${tools[*]} into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}"
fi

# A real llama-server, built once per machine and cached outside the checkout.
llama_server=$("$root/scripts/llama-server.sh")
mkdir -p "$root/.build/tools/bin"
ln -sfn "$llama_server" "$root/.build/tools/bin/llama-server"

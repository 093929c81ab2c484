#!/usr/bin/env bash
# Configures and builds selffeed (Release, Ninja, ccache) into build/.
#   SELFFEED_BUILD_DIR  build directory (default: <repo>/build)
#   SELFFEED_JOBS       parallel compile jobs (default: number of cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${SELFFEED_BUILD_DIR:-$root/build}"
jobs="${SELFFEED_JOBS:-$(nproc)}"
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
cmake --build "$build" -j"$jobs"

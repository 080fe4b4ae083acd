#!/usr/bin/env bash
# Configure and build sfn in ./build (Release). Incremental: re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SFN_BUILD_DIR:-build}
JOBS=${SFN_JOBS:-$(nproc)}
GEN=""
command -v ninja >/dev/null 2>&1 && GEN="-G Ninja"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" $GEN -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j "$JOBS"

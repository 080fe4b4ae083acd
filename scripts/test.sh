#!/usr/bin/env bash
# The test command: set-up (idempotent), build, then the ctest suite.
# Usage: bash scripts/test.sh [--slow] [CTEST ARGS...]
#   --slow  also run the tests labelled "slow": the recipe gate (the fmnist MaxNet trained
#           centrally must pass 90 % test accuracy within 5 epochs), about 13 minutes on 2
#           idle cores, which would double CI's time; run it when the model, the trainer or
#           the recipe change.
set -euo pipefail
cd "$(dirname "$0")/.."
SELECT=(-LE slow)
if [ "${1:-}" = "--slow" ]; then
  SELECT=()
  shift
fi
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR=${SFN_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 "${SELECT[@]}" "$@"

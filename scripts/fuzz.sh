#!/usr/bin/env bash
# Fuzzes sfn's readers of untrusted input (fuzz/fuzz_*.cpp): the TOML reader under every
# config file, CURVE key files and allowlists (libFuzzer, clang, with coverage, ASan and
# UBSan, built in build-fuzz/), and the wire decoder, the run configuration and the
# checkpoint reader (blind mutation of the corpus in the default build: clang 14 cannot
# compile LibTorch 1.13's headers in C++20, see fuzz/replay_main.cpp). Each harness runs
# SECONDS starting from its committed corpus (fuzz/corpus/NAME); the script prints its
# executions. A crash, sanitizer report or uncaught exception fails it; the reproducer is
# saved under build-fuzz/findings/. Copy it into fuzz/corpus/NAME once fixed: the default
# suite's fuzz_replay_NAME test then keeps it fixed.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [NAME...]   default 60 s, all five harnesses
#        bash scripts/fuzz.sh --seeds               rewrite the seed corpora (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
LIBFUZZER=(toml key_files)
MUTATE=(wire run_config checkpoint)
BUILD_DIR=${SFN_BUILD_DIR:-build}
FUZZ_DIR=${SFN_FUZZ_BUILD_DIR:-build-fuzz}

if [ "${1:-}" = "--seeds" ]; then
  bash scripts/build.sh >/dev/null
  "$BUILD_DIR/fuzz/sfn_fuzz_make_seeds" fuzz/corpus
  mkdir -p fuzz/corpus/run_config fuzz/corpus/toml
  for f in experiments/configs/*.toml; do cp "$f" fuzz/corpus/run_config/; done
  cp experiments/configs/*.toml experiments/configs/targets/*.toml common/model/presets/*.toml \
    fuzz/corpus/toml/
  echo "fuzz: seed corpora written to fuzz/corpus"
  exit 0
fi

SECONDS_EACH=${1:-60}
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$1'" >&2; exit 2; }
[ $# -eq 0 ] || shift
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${LIBFUZZER[@]}" "${MUTATE[@]}")
is_libfuzzer() { [[ " ${LIBFUZZER[*]} " == *" $1 "* ]]; }
for n in "${NAMES[@]}"; do
  [ -d "fuzz/corpus/$n" ] || { echo "fuzz.sh: no harness '$n' (have: ${LIBFUZZER[*]} ${MUTATE[*]})" >&2; exit 2; }
done

# Builds: build-fuzz (clang) for the libFuzzer harnesses, the default build for the others.
LF_TARGETS=() MUT_TARGETS=()
for n in "${NAMES[@]}"; do
  if is_libfuzzer "$n"; then LF_TARGETS+=("fuzz_$n"); else MUT_TARGETS+=("fuzz_$n"); fi
done
if [ ${#LF_TARGETS[@]} -gt 0 ]; then
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (bash scripts/setup.sh)" >&2; exit 2; }
  [ -f "$FUZZ_DIR/build.ninja" ] ||
    cmake -S . -B "$FUZZ_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSFN_FUZZ=ON \
      -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$FUZZ_DIR" --target "${LF_TARGETS[@]}"
fi
# A mutation harness runs from the sanitizer build if scripts/test.sh built it there (ASan
# and UBSan then watch it), else from the default build.
ASAN_DIR=${SFN_ASAN_BUILD_DIR:-build-asan}
mutation_dir() { if [ -x "$ASAN_DIR/fuzz/fuzz_$1" ]; then echo "$ASAN_DIR"; else echo "$BUILD_DIR"; fi; }
DEFAULT_TARGETS=()
for t in "${MUT_TARGETS[@]}"; do
  [ "$(mutation_dir "${t#fuzz_}")" = "$ASAN_DIR" ] || DEFAULT_TARGETS+=("$t")
done
[ ${#DEFAULT_TARGETS[@]} -eq 0 ] || cmake --build "$BUILD_DIR" --target "${DEFAULT_TARGETS[@]}"

# One harness: fuzz it, then print its line (exit status 1 on a finding).
fuzz_one() {
  local n=$1 work="$FUZZ_DIR/corpus/$1" log="$FUZZ_DIR/fuzz_$1.log" bin kind execs
  mkdir -p "$work"  # libFuzzer's new inputs; the committed corpus is only read
  if is_libfuzzer "$n"; then
    bin="$FUZZ_DIR/fuzz/fuzz_$n" kind=libFuzzer
  else
    bin="$(mutation_dir "$n")/fuzz/fuzz_$n" kind="mutation, $(mutation_dir "$n")"
  fi
  if "$bin" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
      -seed="$RANDOM" -artifact_prefix="$FUZZ_DIR/findings/$n-" "$work" "fuzz/corpus/$n" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz $n ($kind): ${SECONDS_EACH} s, $execs executions, 0 findings"
  else
    echo "fuzz $n ($kind): FINDING (log $log, reproducer in $FUZZ_DIR/findings/)" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|finding|what\(\)' "$log" | head -10 >&2 || true
    return 1
  fi
}

# As many harnesses at a time as there are cores; each is single-threaded.
mkdir -p "$FUZZ_DIR/findings"
FAILED=0
PIDS=()
for n in "${NAMES[@]}"; do
  fuzz_one "$n" &
  PIDS+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do sleep 1; done
done
for p in "${PIDS[@]}"; do wait "$p" || FAILED=1; done
exit $FAILED

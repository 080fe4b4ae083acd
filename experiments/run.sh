#!/usr/bin/env bash
# Runs a named experiment set (experiments/sets/SET.toml) end to end:
#   1. every training run of the set with sfn-sim (SuperFedNAS, iFedAvg per target, ablations)
#   2. sfn-search on the SuperFedNAS checkpoints for the MACs-budget targets (if built)
#   3. optionally iFedAvg on the searched winners ([search] ifedavg_winners_alphas)
#   4. CSVs, PNG plots and report.md from the runs (experiments/tools/report.py + gnuplot)
#
# Usage: bash experiments/run.sh SET [--out DIR] [--publish] [--fresh] [--report-only]
#   SET            smoke | quick | full, or the path of a set file
#   --out DIR      where runs and the report go (default runs/experiments/SET, git-ignored)
#   --publish      also copy the report, CSVs and plots to experiments/results/SET/
#   --fresh        delete DIR first (only if the driver created it)
#   --report-only  skip phases 1-3, regenerate the report from what exists
# Environment: SFN_BUILD_DIR (default build).
#
# Resumable: a run with summary.json is complete and skipped; a run with a checkpoint is
# continued with sfn-sim --resume; a search with results.csv is skipped. Interrupt with
# Ctrl-C and start the same command again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
SET=$1
shift
OUT=""
PUBLISH=0
FRESH=0
REPORT_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --publish) PUBLISH=1; shift ;;
    --fresh) FRESH=1; shift ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

if [ -f "$SET" ]; then SET_FILE=$SET; else SET_FILE=experiments/sets/$SET.toml; fi
[ -f "$SET_FILE" ] || { echo "run.sh: no set file '$SET_FILE'" >&2; exit 2; }
SET_FILE=$(realpath "$SET_FILE")
SET_NAME=$(basename "$SET_FILE" .toml)
OUT=${OUT:-runs/experiments/$SET_NAME}
BUILD_DIR=${SFN_BUILD_DIR:-build}
SIM=$BUILD_DIR/simulator/sfn-sim
SEARCH=$BUILD_DIR/searcher/sfn-search
# Debian's interpreter: the tools use the standard library only (tomllib needs >= 3.11).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PYTHONDONTWRITEBYTECODE=1  # nothing written into the source tree
TOOLS=$ROOT/experiments/tools

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }

"$PY" "$TOOLS/expset.py" check "$SET_FILE" "$OUT" >/dev/null

if [ "$FRESH" = 1 ] && [ -d "$OUT" ]; then
  [ -f "$OUT/.sfn-experiments" ] || { echo "run.sh: refusing to delete $OUT (not made by run.sh)" >&2; exit 2; }
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
touch "$OUT/.sfn-experiments"
OUT=$(realpath "$OUT")

# The machine the runs were made on, recorded once (a resumed set keeps the first record).
if [ ! -f "$OUT/machine.json" ]; then
  CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
  MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)
  "$PY" -c 'import json, sys; print(json.dumps(dict(zip(["started", "nproc", "uname", "cpu", "memory", "git"], sys.argv[1:])), indent=1))' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$(uname -srm)" "${CPU:-unknown}" "${MEM:-unknown}" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$OUT/machine.json"
fi

# sfn-sim refuses more workers x torch threads than cores.
WORKERS=$(( $(nproc) >= 2 ? 2 : 1 ))

# Reads plan lines (run_dir, label, overrides...) on stdin and runs each missing run.
run_plan() {
  local total=0 done_runs=0 line
  local -a lines
  mapfile -t lines
  total=${#lines[@]}
  for line in "${lines[@]}"; do
    [ -n "$line" ] || continue
    local -a f
    IFS=$'\t' read -r -a f <<<"$line"
    local dir=${f[0]} label=${f[1]}
    local -a sets=()
    local o
    for o in "${f[@]:2}"; do sets+=(--set "$o"); done
    sets+=(--set "simulation.workers=$WORKERS" --set "simulation.torch_threads=1")
    done_runs=$((done_runs + 1))
    if [ -f "$dir/summary.json" ]; then
      log "[$done_runs/$total] $label: complete, skipped"
      continue
    fi
    mkdir -p "$dir"
    local -a resume=()
    if compgen -G "$dir/checkpoints/*" >/dev/null; then resume=(--resume "$dir"); fi
    log "[$done_runs/$total] $label${resume:+ (resuming)}"
    local t0=$SECONDS
    if ! "$SIM" --config "$CONFIG" "${sets[@]}" -o "$dir" -q "${resume[@]}" >"$dir/sim.log" 2>&1; then
      tail -n 20 "$dir/sim.log" >&2
      echo "run.sh: run $label failed (log: $dir/sim.log); fix and re-run to resume" >&2
      exit 1
    fi
    log "[$done_runs/$total] $label: done in $((SECONDS - t0)) s"
  done
}

CONFIG=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import expset; print(expset.load_set(sys.argv[2])["set"]["config_path"])' "$TOOLS" "$SET_FILE")

if [ "$REPORT_ONLY" = 0 ]; then
  [ -x "$SIM" ] || { echo "run.sh: $SIM not built (cmake --build $BUILD_DIR --target sfn-sim)" >&2; exit 1; }
  log "set $SET_NAME -> $OUT"
  log "phase 1: training runs"
  "$PY" "$TOOLS/expset.py" train-plan "$SET_FILE" "$OUT" | run_plan

  log "phase 2: search"
  if [ -x "$SEARCH" ]; then
    rm -f "$OUT/search-missing"
    mapfile -t searches < <("$PY" "$TOOLS/expset.py" search-plan "$SET_FILE" "$OUT")
    for line in "${searches[@]}"; do
      [ -n "$line" ] || continue
      IFS=$'\t' read -r -a f <<<"$line"
      rd=${f[0]} sd=${f[1]} tf=${f[2]}
      if [ -f "$sd/results.csv" ]; then
        log "search ${sd#"$OUT"/}: complete, skipped"
        continue
      fi
      log "search ${sd#"$OUT"/}"
      t0=$(date +%s.%N)
      if ! "$SEARCH" --checkpoint "$rd" --targets "$tf" --out "$sd" "${f[@]:3}" >"$sd/search.log" 2>&1; then
        tail -n 20 "$sd/search.log" >&2
        echo "run.sh: sfn-search failed for $rd (log: $sd/search.log)" >&2
        exit 1
      fi
      "$PY" -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.3f}")' "$t0" >"$sd/wall_s.txt"
    done
    log "phase 3: iFedAvg on searched winners (if the set asks for it)"
    "$PY" "$TOOLS/expset.py" winners-plan "$SET_FILE" "$OUT" | run_plan
  else
    log "sfn-search not built ($SEARCH): searched-winner rows are left out of the report"
    echo "$SEARCH" >"$OUT/search-missing"
  fi
fi

log "phase 4: report"
"$PY" "$TOOLS/report.py" "$SET_FILE" "$OUT"
if [ "$PUBLISH" = 1 ]; then
  DEST=$ROOT/experiments/results/$SET_NAME
  mkdir -p "$DEST"
  rm -f "$DEST"/*.csv "$DEST"/*.png "$DEST"/*.gp "$DEST"/report.md
  cp "$OUT"/report/* "$DEST"/
  log "published to ${DEST#"$ROOT"/}"
fi
log "report: $OUT/report/report.md"

#!/usr/bin/env bash
# Runs a named experiment set (experiments/sets/SET.toml) end to end:
#   1. every training run of the set with sfn-sim (SuperFedNAS, iFedAvg per target, ablations);
#      right after each SuperFedNAS run (a method with search = true), 2. sfn-search on its
#      checkpoint for the MACs-budget targets (and once for [cost] search_targets budgets)
#   3. optionally iFedAvg on the searched winners ([search] ifedavg_winners_alphas), after
#      all training runs
#   4. CSVs, PNG plots and report.md from the runs (experiments/tools/report.py + gnuplot)
#
# Usage: bash experiments/run.sh SET [--out DIR] [--archive DIR] [--publish] [--fresh]
#                                    [--stop-after MIN] [--report-only]
#   SET             smoke | quick | full, or the path of a set file
#   --out DIR       where runs and the report go (default runs/experiments/SET, git-ignored)
#   --archive DIR   keep the small files of every finished run and search in DIR (see below);
#                   default with --publish: experiments/results/SET/archive
#   --publish       also copy the report, CSVs and plots to experiments/results/SET/
#   --fresh         delete the --out DIR first (only if the driver created it; not the archive)
#   --stop-after MIN  start no training run after MIN minutes (a started run and its searches
#                   finish), then write the report: ends a session cleanly before its deadline
#   --report-only   skip phases 1-3, regenerate the report from what exists (and the archive)
# Environment: SFN_BUILD_DIR (default build).
#
# Run order (so the most useful comparisons finish first): cell by cell, where a cell is an
# (alpha, seed): the headline alpha's first seed (every method, every target), then the other
# alphas' first seeds in the order the set's grids list them, then each further seed (second
# seeds first, headline alpha first). Within a cell: SuperFedNAS (the [report] reference) and
# its searches, then iFedAvg (the baseline) target by target, then the ablations. Per-target
# methods with all_targets_seeds = N train every target for the first N seeds of a grid entry
# and only extra_seed_targets after that. `expset.py train-plan SET OUT` prints the order.
#
# Resumable: a run with summary.json is complete and skipped; a run with a checkpoint is
# continued with sfn-sim --resume; a search with results.csv is skipped. Interrupt with
# Ctrl-C and start the same command again.
#
# Across machines (--archive): after each run finishes (a searched run: after its searches),
# its config.toml, metrics.jsonl, metrics.csv, summary.json, machine.json and the last 200
# lines of sim.log (sim.log.tail) are copied to ARCHIVE/<its path under OUT>; of a search, its
# top-level .csv/.json/.md/.txt/.toml files up to 1 MB each (never the exported models). At
# start, every planned run or search that is missing in OUT and complete in the archive is
# restored from it and so skipped; the report needs nothing else. Commit the archive after
# each session; checkpoints stay behind, so a run interrupted by the end of a session starts
# again from round 0 in the next one. A restore refuses archived folders made with settings
# other than the set file's (their plan.txt); delete them from the archive to retrain.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
SET=$1
shift
OUT=""
ARCHIVE=""
PUBLISH=0
FRESH=0
REPORT_ONLY=0
STOP_AFTER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --archive) ARCHIVE=$2; shift 2 ;;
    --stop-after) STOP_AFTER=$2; shift 2 ;;
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
if [ -z "$ARCHIVE" ] && [ "$PUBLISH" = 1 ]; then ARCHIVE=experiments/results/$SET_NAME/archive; fi
if [ -n "$STOP_AFTER" ] && ! [[ "$STOP_AFTER" =~ ^[0-9]+$ ]]; then
  echo "run.sh: --stop-after takes whole minutes, got '$STOP_AFTER'" >&2; exit 2
fi
BUILD_DIR=${SFN_BUILD_DIR:-build}
SIM=$BUILD_DIR/simulator/sfn-sim
SEARCH=$BUILD_DIR/searcher/sfn-search
# Debian's interpreter: the tools use the standard library only (tomllib needs >= 3.11).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PYTHONDONTWRITEBYTECODE=1  # nothing written into the source tree
TOOLS=$ROOT/experiments/tools

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
expset() { "$PY" "$TOOLS/expset.py" "$@"; }

expset check "$SET_FILE" "$OUT" >/dev/null

if [ "$FRESH" = 1 ] && [ -d "$OUT" ]; then
  [ -f "$OUT/.sfn-experiments" ] || { echo "run.sh: refusing to delete $OUT (not made by run.sh)" >&2; exit 2; }
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
touch "$OUT/.sfn-experiments"
OUT=$(realpath "$OUT")
if [ -n "$ARCHIVE" ]; then
  mkdir -p "$ARCHIVE"
  ARCHIVE=$(realpath "$ARCHIVE")
  log "restoring finished runs and searches from ${ARCHIVE#"$ROOT"/}"
  expset restore "$SET_FILE" "$OUT" "$ARCHIVE"
fi

# The machine of this session, recorded in every run and search it makes (a set can be
# spread over sessions on different machines); OUT/machine.json keeps the first session's.
CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)
MACHINE=$("$PY" -c 'import json, sys; print(json.dumps(dict(zip(["started", "nproc", "uname", "cpu", "memory", "git"], sys.argv[1:])), indent=1))' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$(uname -srm)" "${CPU:-unknown}" "${MEM:-unknown}" \
  "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)")
[ -f "$OUT/machine.json" ] || echo "$MACHINE" >"$OUT/machine.json"

# sfn-sim refuses more workers x torch threads than cores.
WORKERS=$(( $(nproc) >= 2 ? 2 : 1 ))

mapfile -t SETINFO < <("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import expset
s = expset.load_set(sys.argv[2])
print(s["set"]["config_path"]); print(int(any(m["search"] and m["role"] == "supernet" for m in s["method"])))' "$TOOLS" "$SET_FILE")
CONFIG=${SETINFO[0]}
NEEDS_SEARCH=${SETINFO[1]}
STOPPED=0

# Copies a finished run (and its finished searches) into the archive, if there is one.
archive_run() {
  [ -z "$ARCHIVE" ] || expset archive "$SET_FILE" "$OUT" "$ARCHIVE" "$1"
}

# Runs the searches planned on run folder $1's checkpoint that are not finished yet.
search_run() {
  local rd=$1 line
  [ -x "$SEARCH" ] || return 0
  local -a searches
  mapfile -t searches < <(expset search-plan "$SET_FILE" "$OUT" "$rd")
  for line in "${searches[@]}"; do
    [ -n "$line" ] || continue
    local -a f
    IFS=$'\t' read -r -a f <<<"$line"
    local sd=${f[1]} tf=${f[2]}
    if [ -f "$sd/results.csv" ]; then
      log "search ${sd#"$OUT"/}: complete, skipped"
      continue
    fi
    if ! compgen -G "$rd/checkpoints/*" >/dev/null; then
      echo "run.sh: ${rd#"$OUT"/} is finished but has no checkpoint left to search (made on another" \
           "machine?); delete that run folder to train it again" >&2
      exit 1
    fi
    log "search ${sd#"$OUT"/}"
    local t0
    t0=$(date +%s.%N)
    if ! "$SEARCH" --checkpoint "$rd" --targets "$tf" --out "$sd" "${f[@]:3}" >"$sd/search.log" 2>&1; then
      tail -n 20 "$sd/search.log" >&2
      echo "run.sh: sfn-search failed for $rd (log: $sd/search.log)" >&2
      exit 1
    fi
    "$PY" -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.3f}")' "$t0" >"$sd/wall_s.txt"
    echo "$MACHINE" >"$sd/machine.json"
  done
}

# Takes plan lines (run_dir, label, overrides...) as arguments; runs each missing run, then
# its searches, then archives it. Not in a pipeline: STOPPED must reach the caller.
run_plan() {
  local total=$# done_runs=0 line
  for line in "$@"; do
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
    elif [ -n "$STOP_AFTER" ] && [ "$SECONDS" -ge $((STOP_AFTER * 60)) ]; then
      log "[$done_runs/$total] $label: not started (--stop-after $STOP_AFTER min reached)"
      STOPPED=1
      continue
    else
      mkdir -p "$dir"
      local -a resume=()
      if compgen -G "$dir/checkpoints/*" >/dev/null; then
        resume=(--resume "$dir")
      elif [ -s "$dir/metrics.jsonl" ] || [ -s "$dir/metrics.csv" ]; then
        # Interrupted before its first checkpoint: nothing to resume from, and sfn-sim refuses
        # to start a new run over another run's rows. Keep them aside, never delete them.
        local aside
        aside="$dir.interrupted-$(date +%Y%m%d-%H%M%S)"
        log "[$done_runs/$total] $label: interrupted before its first checkpoint; moved to ${aside#"$OUT"/}"
        mv "$dir" "$aside"
        mkdir -p "$dir"
      fi
      log "[$done_runs/$total] $label${resume:+ (resuming)}"
      local t0=$SECONDS
      if ! "$SIM" --config "$CONFIG" "${sets[@]}" -o "$dir" -q "${resume[@]}" >"$dir/sim.log" 2>&1; then
        tail -n 20 "$dir/sim.log" >&2
        echo "run.sh: run $label failed (log: $dir/sim.log); fix and re-run to resume" >&2
        exit 1
      fi
      echo "$MACHINE" >"$dir/machine.json"
      log "[$done_runs/$total] $label: done in $((SECONDS - t0)) s"
    fi
    search_run "$dir"
    archive_run "$dir"
  done
}

# PLAN_LINES = the lines of `expset.py $1` (a failing expset.py stops the script).
plan() {
  local text
  text=$(expset "$1" "$SET_FILE" "$OUT")
  PLAN_LINES=()
  [ -z "$text" ] || mapfile -t PLAN_LINES <<<"$text"
}

if [ "$REPORT_ONLY" = 0 ]; then
  [ -x "$SIM" ] || { echo "run.sh: $SIM not built (cmake --build $BUILD_DIR --target sfn-sim)" >&2; exit 1; }
  if [ -x "$SEARCH" ]; then
    rm -f "$OUT/search-missing"
  elif [ "$NEEDS_SEARCH" = 1 ] && [ -n "$ARCHIVE" ]; then
    # The checkpoints do not outlive the session: a run archived without its search could
    # never be searched.
    echo "run.sh: $SEARCH not built; with --archive every searched run needs it (cmake --build" \
         "$BUILD_DIR --target sfn-search)" >&2
    exit 1
  else
    log "sfn-search not built ($SEARCH): searched-winner rows are left out of the report"
    echo "$SEARCH" >"$OUT/search-missing"
  fi
  log "set $SET_NAME -> $OUT${ARCHIVE:+ (archive ${ARCHIVE#"$ROOT"/})}"
  log "phase 1+2: training runs, each SuperFedNAS run followed by its searches"
  plan train-plan
  run_plan "${PLAN_LINES[@]}"
  if [ -x "$SEARCH" ]; then
    log "phase 3: iFedAvg on searched winners (if the set asks for it)"
    plan winners-plan
    run_plan "${PLAN_LINES[@]}"
  fi
  [ "$STOPPED" = 0 ] || log "stopped after $STOP_AFTER min: the next invocation goes on from here"
fi

log "phase 4: report"
"$PY" "$TOOLS/report.py" "$SET_FILE" "$OUT"
if [ "$PUBLISH" = 1 ]; then
  DEST=$ROOT/experiments/results/$SET_NAME
  mkdir -p "$DEST"
  rm -f "$DEST"/*.csv "$DEST"/*.png "$DEST"/*.gp "$DEST"/report.md "$DEST"/results_section.md
  cp "$OUT"/report/* "$DEST"/
  log "published to ${DEST#"$ROOT"/}"
fi
log "report: $OUT/report/report.md"

#!/usr/bin/env bash
# Operator mistakes, as processes (issue 13, items 6 and 7). Each is refused at start-up with
# the documented exit code (2: configuration, 1: runtime) and a message naming the key, the
# folder or the endpoint; and a run folder keeps its history through all of them:
#   1. sfn-server: run.torch_threads beyond the cores, --min-clients -5, an empty allowlist,
#      run.log_level "verbose", a CUDA device this build cannot use, a busy endpoint;
#   2. sfn-sim: integers beyond their type, round.clients_per_round above
#      simulation.clients, simulation.workers x torch_threads beyond the cores;
#   3. run folders: a run folder is refused without --resume (sfn-sim and sfn-server), a
#      failed --resume (damaged newest checkpoint) leaves metrics and `latest` as they were,
#      a resume from an older checkpoint leaves every round exactly once in the metrics, and
#      a folder holding only a log (experiments/run.sh opens sim.log there first) is used.
# Usage: operator_errors.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
SIM=$BUILD/simulator/sfn-sim
SERVER=$BUILD/server/sfn-server
for b in "$SIM" "$SERVER"; do
  [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
done
source "$SRC/tests/process_lib.sh"
make_work operator-errors
CFG=$SRC/tests/simulator/digest.toml
PASSED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "ok $PASSED - $*"
}
# refused CODE TEXT CMD...: CMD (bounded by a timeout: a check that lets it start must not
# hang the test) exits with CODE and says TEXT on stderr.
refused() {
  local code=$1 text=$2
  shift 2
  local rc=0
  timeout 120 "$@" > "$WORK/out.log" 2> "$WORK/err.log" < /dev/null || rc=$?
  [ "$rc" = "$code" ] || fail "exit $rc, expected $code: $*"
  grep -qF -- "$text" "$WORK/err.log" || fail "stderr does not say '$text': $*"
}
# Every server start binds loopback only, insecure unless a test says otherwise.
LOCAL=(--bind 'tcp://127.0.0.1:*')

# --- 1: sfn-server ---
refused 2 "run.torch_threads = 10000 exceeds the $(nproc) cores of this machine" \
  "$SERVER" -c "$CFG" -o "$WORK/s1" --insecure "${LOCAL[@]}" --set run.torch_threads=10000
refused 2 "--min-clients" "$SERVER" -c "$CFG" -o "$WORK/s2" --insecure --min-clients -5
"$SERVER" keygen --out "$WORK/keys" > /dev/null
: > "$WORK/empty.allow"
refused 2 "server.allowlist_file '$WORK/empty.allow' holds no client public key" \
  "$SERVER" -c "$CFG" -o "$WORK/s3" --key "$WORK/keys/server.key" --allow "$WORK/empty.allow" \
  "${LOCAL[@]}"
refused 2 'run.log_level must be one of' \
  "$SERVER" -c "$CFG" -o "$WORK/s4" --insecure "${LOCAL[@]}" --set run.log_level=verbose
# No machine has 4097 CUDA devices: refused by CPU-only and CUDA builds alike, in one line
# (torch's own error was pages long, from the first training step).
refused 2 'configuration error: run.device "cuda:4096"' \
  "$SERVER" -c "$CFG" -o "$WORK/s5" --insecure "${LOCAL[@]}" --set 'run.device="cuda:4096"'
[ "$(wc -l < "$WORK/err.log")" = 1 ] || fail "run.device: more than one line on stderr"
[ ! -e "$WORK/s5/metrics.jsonl" ] || fail "a refused configuration created a run folder"
# A port taken by another process: the error names the endpoint.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(300)
' > "$WORK/port" &
PIDS+=("$!")
wait_for "the port holder" 30 test -s "$WORK/port"
port=$(cat "$WORK/port")
refused 1 "cannot bind tcp://127.0.0.1:$port: Address already in use" \
  "$SERVER" -c "$CFG" -o "$WORK/s6" --insecure --bind "tcp://127.0.0.1:$port"
ok "sfn-server refuses torch threads beyond the cores, --min-clients -5, an empty allowlist, an unknown log level and device (exit 2); a busy port names the endpoint (exit 1)"

# --- 2: sfn-sim ---
for key in server.min_clients=4294967298 round.clients_per_round=4294967297 \
  train.epochs=4294967297; do
  refused 2 "'${key%%=*}' is out of range (${key#*=}): must be in [-2147483648, 2147483647]" \
    "$SIM" -c "$CFG" -o "$WORK/m" -q --set "$key"
done
refused 2 "round.clients_per_round = 30 exceeds simulation.clients = 24" \
  "$SIM" -c "$CFG" -o "$WORK/m" -q --set round.clients_per_round=30
refused 2 "simulation.workers x simulation.torch_threads = 100000 exceeds the" \
  "$SIM" -c "$CFG" -o "$WORK/m" -q --set simulation.workers=100000
[ ! -e "$WORK/m" ] || fail "a refused configuration created a run folder"
ok "sfn-sim refuses integers beyond 32 bits by key and range, more clients per round than clients, threads beyond the cores (exit 2)"

# --- 3: run folders ---
RUN=$WORK/run
SIM_RUN=("$SIM" -c "$CFG" -q --set simulation.workers=1 --set checkpoint.every=1)
"${SIM_RUN[@]}" -o "$RUN" --set run.rounds=3 > "$WORK/sim.log" 2>&1 || fail "sfn-sim run failed"
rounds() { python3 -c 'import json, sys; print(*[json.loads(l)["round"] for l in open(sys.argv[1]) if l.strip()])' "$1"; }
[ "$(rounds "$RUN/metrics.jsonl")" = "0 1 2" ] || fail "rounds $(rounds "$RUN/metrics.jsonl")"
(cd "$RUN" && sha256sum metrics.jsonl metrics.csv checkpoints/latest) > "$WORK/history.sha256"
unchanged() { (cd "$RUN" && sha256sum --quiet -c "$WORK/history.sha256") || fail "$1 changed the run folder"; }

refused 2 "run folder '$RUN' already holds a run" "${SIM_RUN[@]}" -o "$RUN"
grep -qF -- "pass --resume $RUN to continue it, or choose another run folder (-o)" "$WORK/err.log" ||
  fail "the refusal does not say what to do"
unchanged "sfn-sim without --resume"
refused 2 "run folder '$RUN' already holds a run" \
  "$SERVER" -c "$CFG" -o "$RUN" --insecure "${LOCAL[@]}"
unchanged "sfn-server without --resume"
ok "a run folder is refused without --resume by sfn-sim and sfn-server (exit 2), and left as it was"

newest=$RUN/checkpoints/$(cat "$RUN/checkpoints/latest")
cp "$newest" "$WORK/newest.sfn"
printf 'X' | dd of="$newest" bs=1 seek=200 conv=notrunc status=none
for run_with in sim server; do
  rc=0
  if [ $run_with = sim ]; then
    timeout 120 "${SIM_RUN[@]}" -o "$RUN" --resume "$RUN" > "$WORK/out.log" 2> "$WORK/err.log" || rc=$?
  else
    timeout 120 "$SERVER" -c "$CFG" --resume "$RUN" --insecure "${LOCAL[@]}" > "$WORK/out.log" \
      2> "$WORK/err.log" || rc=$?
  fi
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "sfn-$run_with --resume of a damaged checkpoint: exit $rc"
  grep -qF "$newest" "$WORK/err.log" || fail "sfn-$run_with: the error does not name $newest"
  unchanged "a failed sfn-$run_with --resume"
done
cp "$WORK/newest.sfn" "$newest"
ok "a failed --resume (damaged newest checkpoint) leaves metrics and latest untouched"

"${SIM_RUN[@]}" -o "$RUN" --resume "$RUN/checkpoints/ckpt-000001.sfn" --set run.rounds=4 \
  > "$WORK/resume.log" 2>&1 || fail "sfn-sim --resume from ckpt-000001 failed"
[ "$(rounds "$RUN/metrics.jsonl")" = "0 1 2 3" ] ||
  fail "after a resume from round 1: rounds $(rounds "$RUN/metrics.jsonl")"
[ "$(wc -l < "$RUN/metrics.csv")" = 5 ] || fail "metrics.csv is not a header and 4 rows"
[ "$(cat "$RUN/checkpoints/latest")" = ckpt-000004.sfn ] || fail "latest is $(cat "$RUN/checkpoints/latest")"
ok "a resume from an older checkpoint trims the metrics to it: every round appears once"

LOGGED=$WORK/logged
mkdir -p "$LOGGED"
echo "started" > "$LOGGED/sim.log"
"${SIM_RUN[@]}" -o "$LOGGED" --set run.rounds=1 >> "$LOGGED/sim.log" 2>&1 ||
  fail "sfn-sim refused a folder holding only its log"
[ "$(head -1 "$LOGGED/sim.log")" = started ] && [ -f "$LOGGED/summary.json" ] ||
  fail "the run in a folder holding only a log did not finish or lost the log"
ok "a folder holding only a log (as experiments/run.sh prepares it) takes a new run"
echo "$PASSED passed, 0 failed"

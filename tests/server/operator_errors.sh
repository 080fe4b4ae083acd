#!/usr/bin/env bash
# Operator mistakes, as processes (issue 13, items 6 and 7). Each is refused at start-up with
# the documented exit code (2: configuration, 1: runtime) and a message naming the key, the
# folder or the endpoint; and a run folder keeps its history through all of them:
#   1. sfn-server: run.torch_threads beyond the cores, --min-clients -5, an empty allowlist,
#      run.log_level "verbose", a CUDA device this build cannot use, a busy endpoint;
#   2. sfn-sim: integers beyond their type, round.clients_per_round above
#      simulation.clients, simulation.workers x torch_threads beyond the cores;
#   3. run folders: a run folder is refused without --resume (sfn-sim and sfn-server), a
#      failed --resume (damaged newest checkpoint: exit 4, as sfn-search's --checkpoint)
#      leaves metrics and `latest` as they were, a resume from an older checkpoint leaves
#      every round exactly once in the metrics, and a folder holding only a log
#      (experiments/run.sh opens sim.log there first) is used;
#   4. one command line (issue 11): every binary answers --version (0), --help with the exit
#      codes and a bad flag (2, one line), and is refused its own operator errors one by
#      one: unknown config key and missing file (2), a key file without a usable secret (2),
#      a truncated checkpoint (4), a device this LibTorch cannot use (2, one line), a client
#      key not on the server's allowlist (3); --log-format json gives JSON lines only.
# No refusal shows a source location or an assert expression.
# Usage: operator_errors.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
SIM=$BUILD/simulator/sfn-sim
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
SEARCH=$BUILD/searcher/sfn-search
source "$SRC/tests/process_lib.sh"
require_binaries "$SIM" "$SERVER" "$CLIENT" "$SEARCH"
make_work operator-errors
CFG=$SRC/tests/simulator/digest.toml
PASSED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "ok $PASSED - $*"
}
# refused CODE TEXT CMD...: CMD (bounded by a timeout: a check that lets it start must not
# hang the test) exits with CODE and says TEXT on stderr, without a source location
# (file.cpp:LINE) or an assert expression.
# one_line WHAT: the last refusal said it in one line.
one_line() {
  [ "$(wc -l < "$WORK/err.log")" = 1 ] || fail "$1: more than one line on stderr"
}
# json_log FILE LEVEL...: every line of FILE is a JSON log object, with a line of each LEVEL.
json_log() {
  python3 -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
levels = [json.loads(l)["level"] for l in lines]
missing = [want for want in sys.argv[2:] if want not in levels]
sys.exit(f"no {missing} line among {levels}" if missing else 0)
' "$@"
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
one_line run.device
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
# The same in JSON: the --insecure warning and the error are JSON log lines.
refused 1 "cannot bind tcp://127.0.0.1:$port" "$SERVER" -c "$CFG" -o "$WORK/s6j" --insecure \
  --bind "tcp://127.0.0.1:$port" --log-format json
json_log "$WORK/err.log" warning error || fail "sfn-server --log-format json"
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
# --run-dir: -o/--out's name before issue 11, still accepted.
refused 2 "run folder '$RUN' already holds a run" \
  "$SERVER" -c "$CFG" --run-dir "$RUN" --insecure "${LOCAL[@]}"
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
  [ "$rc" = 4 ] || fail "sfn-$run_with --resume of a damaged checkpoint: exit $rc, expected 4"
  grep -qF "checkpoint '$newest': digest mismatch" "$WORK/err.log" ||
    fail "sfn-$run_with: the error does not name $newest and the digest"
  unchanged "a failed sfn-$run_with --resume"
done
printf '[[target]]\nname = "small"\nmax_macs = 1e9\n' > "$WORK/targets.toml"
refused 4 "checkpoint '$newest': digest mismatch" \
  "$SEARCH" --checkpoint "$RUN" --targets "$WORK/targets.toml" -o "$WORK/search-damaged" \
  --log-format json
json_log "$WORK/err.log" info error || fail "sfn-search --log-format json"
unchanged "sfn-search on a damaged checkpoint"
cp "$WORK/newest.sfn" "$newest"
ok "a damaged checkpoint is a data error (exit 4) for --resume and sfn-search; metrics and latest stay untouched"

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

# --- 4: one command line, binary by binary ---
for b in "$SERVER" "$CLIENT" "$SIM" "$SEARCH"; do
  name=$(basename "$b")
  "$b" --version > "$WORK/out.log" 2>&1 || fail "$name --version: exit $?"
  grep -q '^sfn [0-9.]* (git ' "$WORK/out.log" || fail "$name --version: $(cat "$WORK/out.log")"
  "$b" --help > "$WORK/out.log" 2>&1 || fail "$name --help: exit $?"
  for line in "Exit codes:" "0  ok" "1  runtime failure" "2  usage or configuration error" \
    "3  authentication refused" "4  data or integrity error" "130  interrupted" \
    "--log-level" "--log-format"; do
    grep -qF -- "$line" "$WORK/out.log" || fail "$name --help does not say '$line'"
  done
  # CLI11's own codes for a bad command line (104-109) are not ours: 2, in one line.
  refused 2 "$name: usage error: The following argument was not expected: --no-such-flag" \
    "$b" --no-such-flag
  one_line "$name --no-such-flag"
done
ok "all four binaries: --version exits 0, --help ends with the exit codes, a bad flag exits 2 in one line"

# sfn-server
refused 2 "configuration error: $CFG: unknown key 'run.roundz'" \
  "$SERVER" -c "$CFG" -o "$WORK/s7" --insecure "${LOCAL[@]}" --set run.roundz=3
one_line "unknown key"
refused 2 "--config: File does not exist: $WORK/missing.toml" "$SERVER" -c "$WORK/missing.toml"
refused 2 "--log-level: unknown level 'loud'" \
  "$SERVER" -c "$CFG" -o "$WORK/s8" --insecure "${LOCAL[@]}" --log-level loud
"$CLIENT" keygen -o "$WORK/c1" > /dev/null
"$CLIENT" keygen --out "$WORK/c2" > /dev/null
cp "$WORK/c1/client.pub" "$WORK/c1.allow"
refused 2 "key file \"$WORK/missing.key\" does not exist" "$SERVER" -c "$CFG" -o "$WORK/s9" \
  "${LOCAL[@]}" --key "$WORK/missing.key" --allow "$WORK/c1.allow"
(umask 077 && printf 'public-key = "not a key"\nsecret-key = "nor this"\n' > "$WORK/bad.key")
refused 2 "key file \"$WORK/bad.key\" line 1: expected public-key/secret-key" \
  "$SERVER" -c "$CFG" -o "$WORK/s10" "${LOCAL[@]}" --key "$WORK/bad.key" --allow "$WORK/c1.allow"
refused 2 "--resume '$WORK/no-such-run': no such checkpoint file" \
  "$SERVER" -c "$CFG" --resume "$WORK/no-such-run" --insecure "${LOCAL[@]}"
head -c 1000 "$RUN/checkpoints/$(cat "$RUN/checkpoints/latest")" > "$WORK/truncated.sfn"
refused 4 "checkpoint '$WORK/truncated.sfn': truncated" \
  "$SERVER" -c "$CFG" -o "$WORK/s11" --resume "$WORK/truncated.sfn" --insecure "${LOCAL[@]}"
refused 2 "'$WORK/keys/server.key' exists; keys are never replaced" \
  "$SERVER" keygen -o "$WORK/keys"
ok "sfn-server: unknown key, missing config and key file, a bad log level, a malformed key file, a missing --resume (2); a truncated checkpoint (4)"

# sfn-client
refused 2 "unknown key 'client.nme'" "$CLIENT" --insecure --server tcp://127.0.0.1:5555 \
  --partition 0 --of 2 --set client.nme=x
refused 2 "--config: File does not exist: $WORK/missing.toml" "$CLIENT" -c "$WORK/missing.toml"
# The endpoint is checked before any data is read (this --data does not exist).
refused 2 "server.endpoint (--server) 'bogus' is not an endpoint" \
  "$CLIENT" --insecure --server bogus --data "$WORK/no-data"
one_line "--server bogus"
CLIENT_TO=(--server tcp://127.0.0.1:5555 --server-key "$WORK/keys/server.pub" --partition 0 --of 2)
refused 2 "key file \"$WORK/missing.key\" does not exist" \
  "$CLIENT" "${CLIENT_TO[@]}" --key "$WORK/missing.key"
refused 2 "key file \"$WORK/bad.key\" line 1" "$CLIENT" "${CLIENT_TO[@]}" --key "$WORK/bad.key"
refused 2 "server.key (--key) $WORK/c1/client.pub holds no secret key" \
  "$CLIENT" "${CLIENT_TO[@]}" --key "$WORK/c1/client.pub"
refused 2 'configuration error: client.device (--device) "cuda:4096"' \
  "$CLIENT" --insecure --server tcp://127.0.0.1:5555 --partition 0 --of 2 --device cuda:4096
one_line "sfn-client --device"
refused 2 'configuration error: profile --device "cuda:4096"' \
  "$CLIENT" profile --device cuda:4096 -o "$WORK/lut.json"
one_line "sfn-client profile --device"
[ ! -e "$WORK/lut.json" ] || fail "a refused profile wrote its table"
# A key not on the server's allowlist: refused by the server (3), logged as JSON.
"$SERVER" -c "$CFG" -o "$WORK/auth-run" "${LOCAL[@]}" --key "$WORK/keys/server.key" \
  --allow "$WORK/c1.allow" > "$WORK/auth-server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "the server's endpoint" 60 test -s "$WORK/auth-run/endpoint"
refused 3 "not on its allowlist" "$CLIENT" --server "$(cat "$WORK/auth-run/endpoint")" \
  --server-key "$WORK/keys/server.pub" --key "$WORK/c2/client.key" --partition 0 --of 2 \
  --log-format json
json_log "$WORK/err.log" info || fail "sfn-client --log-format json"
kill "$SERVER_PID"
ok "sfn-client: unknown key, missing config and key file, a bad endpoint, a malformed key file, a key without its secret, a device torch lacks (2); a key not on the allowlist (3)"

# sfn-sim
refused 2 "configuration error: $CFG: unknown key 'run.roundz'" \
  "$SIM" -c "$CFG" -o "$WORK/m2" -q --set run.roundz=3
refused 2 "--config: File does not exist: $WORK/missing.toml" "$SIM" -c "$WORK/missing.toml"
refused 2 'configuration error: run.device "cuda:4096"' \
  "$SIM" -c "$CFG" -o "$WORK/m3" -q --set 'run.device="cuda:4096"'
one_line "sfn-sim run.device"
"$SIM" keygen --clients 2 -o "$WORK/fleet" > "$WORK/out.log" 2>&1 || fail "sfn-sim keygen failed"
"$SIM" keys --clients 2 --out "$WORK/fleet" > "$WORK/out.log" 2>&1 || fail "sfn-sim keys failed"
grep -qF "(0 new, 2 reused)" "$WORK/out.log" || fail "sfn-sim keys did not reuse keygen's keys"
# A short run, logged as JSON lines only (stderr is no terminal: no progress line).
"$SIM" -c "$CFG" -o "$WORK/json-run" --set run.rounds=1 --set simulation.workers=1 \
  --log-format json --log-level info > "$WORK/out.log" 2> "$WORK/json-run.err" ||
  fail "sfn-sim --log-format json failed"
json_log "$WORK/json-run.err" info || fail "sfn-sim --log-format json"
ok "sfn-sim: unknown key, missing config, a device torch lacks (2); keygen and its alias keys; --log-format json"

# sfn-search
refused 2 "--checkpoint: Path does not exist: $WORK/no-such-run" "$SEARCH" \
  --checkpoint "$WORK/no-such-run" --targets "$WORK/targets.toml" -o "$WORK/search"
sed 's/max_macs/max_macz/' "$WORK/targets.toml" > "$WORK/bad-targets.toml"
refused 2 "unknown key 'target[0].max_macz'" \
  "$SEARCH" --checkpoint "$RUN" --targets "$WORK/bad-targets.toml" -o "$WORK/search"
refused 2 'configuration error: --device "cuda:4096"' "$SEARCH" --checkpoint "$RUN" \
  --targets "$WORK/targets.toml" -o "$WORK/search" --device cuda:4096
one_line "sfn-search --device"
refused 4 "checkpoint '$WORK/truncated.sfn': truncated" \
  "$SEARCH" --checkpoint "$WORK/truncated.sfn" --targets "$WORK/targets.toml" -o "$WORK/search"
refused 2 "--pubkey: File does not exist: $WORK/missing.pub" \
  "$SEARCH" verify "$WORK" --pubkey "$WORK/missing.pub"
refused 2 "--log-level: unknown level 'loud'" "$SEARCH" --checkpoint "$RUN" \
  --targets "$WORK/targets.toml" -o "$WORK/search" --log-level loud
[ ! -e "$WORK/search" ] || fail "a refused search created its output folder"
# A budget below the MinNet's MACs: no model for it, so no success either, and no empty plot.
printf '[[target]]\nname = "tiny"\nmax_macs = 1000\n' > "$WORK/tight.toml"
refused 4 "target tiny: no SubNet of the search meets it" "$SEARCH" --checkpoint "$RUN" \
  --targets "$WORK/tight.toml" -o "$WORK/search-tight" --population 4 --generations 1 \
  --val-samples 50 --latency-repeats 1
[ ! -e "$WORK/search-tight/pareto.png" ] || [ -s "$WORK/search-tight/pareto.png" ] ||
  fail "an infeasible search left an empty pareto.png"
ok "sfn-search: missing checkpoint, unknown target key, a device torch lacks, missing public key, a bad log level (2); a truncated checkpoint, a target no SubNet meets (4)"
echo "$PASSED passed, 0 failed"

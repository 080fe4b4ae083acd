#!/usr/bin/env bash
# Integration tests with real processes over tcp loopback (ephemeral ports, CURVE on):
#
# federation (items 1, 2, 4a)
#   1. sfn-server + 3 sfn-client complete 4 rounds on Fashion-MNIST shards (~490 samples each,
#      random SubNets so that rounds leave parts of the SuperNet uncovered),
#      and every round changes the SuperNet only inside the slices of the SubNets whose
#      updates it accepted (sfn_check_run coverage, against the checkpoints of every round);
#   2. the server is killed (-9) after round 2 and restarted with --resume: it loads a
#      checkpoint byte-identical to the one last written (SHA-256), continues at the next
#      round, and the clients reconnect and re-register by themselves;
#   4a. a client whose key is not on the allowlist is refused by the ZAP handler, never
#      reaches the Coordinator, and exits 3 saying so. (4b, no ZAP handler -> connections fail, is a doctest in
#      tests/common/test_transport.cpp: it needs a server socket sfn-server never makes.)
# dropout (item 3)
#   4 clients, quorum 2, short deadline: one client is killed -9 mid-round, another is
#   SIGSTOPped mid-training and continued after the deadline. The round completes at quorum
#   when its deadline passes, and the stopped client's update arrives late and is discarded.
# bad_client (item 5)
#   sfn_bad_client (tests/integration/bad_client.cpp), allowlisted, sends garbage, a
#   truncated Update, an unknown union member, wrong tensor shapes, a duplicate, a stale
#   round and NaN values. Each is rejected with its logged reason, none of its tasks is ever
#   accepted, and every round still completes with the 3 good clients' updates. (That the
#   aggregate equals a run without the bad client is checked in-process, with exact
#   tensors, by tests/server/test_coordinator.cpp.)
# poison (issue 13, item 1)
#   sfn_bad_client --mode poison, allowlisted, answers every task of every round with a
#   well-formed Update whose values are all 3e38 (finite: it passes decoding and validation).
#   The bound on an update's change refuses it each time, logged with its reason and the
#   client's name and counted per reason; every round completes with the 3 honest clients,
#   and every checkpoint's SuperNet stays finite and of ordinary size. (Before the bound,
#   such an update was merged and every later update came back non-finite.)
#
# Usage: server_clients.sh BUILD_DIR SOURCE_DIR [federation|dropout|bad_client|poison|all]
# KEEP=1 keeps the work folder (logs, run folders) for inspection.
set -euo pipefail
BUILD=$1
SRC=$2
PART=${3:-all}
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
BAD_CLIENT=$BUILD/tests/sfn_bad_client
CHECK_RUN=$BUILD/tests/sfn_check_run
CFG=$SRC/experiments/configs/integration.toml
source "$SRC/tests/process_lib.sh"
require_binaries "$SERVER" "$CLIENT" "$BAD_CLIENT" "$CHECK_RUN"
make_work integration

# supernet_ok CHECKPOINT: every float32 of the checkpoint's tensors is finite and below 1e3
# in magnitude (sfn/model/checkpoint.h: magic, u32 header length, JSON header, data at the
# next multiple of 64). Prints the largest magnitude.
supernet_ok() {
  python3 -c '
import array, json, math, struct, sys
raw = open(sys.argv[1], "rb").read()
(h,) = struct.unpack_from("<I", raw, 8)
header = json.loads(raw[12:12 + h])
start = (12 + h + 63) // 64 * 64
worst = 0.0
for t in header["tensors"]:
    if t["dtype"] != "float32":
        continue
    a = array.array("f")
    a.frombytes(raw[start + t["offset"]:start + t["offset"] + t["length"]])
    bad = [x for x in a if not math.isfinite(x)]
    if bad:
        sys.exit(t["name"] + ": non-finite value " + str(bad[0]))
    worst = max([worst] + [abs(x) for x in a])
if worst >= 1e3:
    sys.exit("largest |value| " + str(worst))
print("finite, largest |value| %.3g" % worst)
' "$1"
}

# --- keys: server, 5 clients (c0..c4), the bad client ---
"$SERVER" keygen --out "$WORK/keys" > /dev/null
for c in c0 c1 c2 c3 c4 bad; do "$CLIENT" keygen --out "$WORK/keys/$c" > /dev/null; done
[ "$(stat -c %a "$WORK/keys/server.key")" = 600 ] || fail "server secret key is not mode 0600"
[ "$(stat -c %a "$WORK/keys/c0/client.key")" = 600 ] || fail "client secret key is not mode 0600"
allowlist() { # allowlist NAME CLIENT...
  local out=$WORK/keys/allow-$1
  shift
  for c in "$@"; do cat "$WORK/keys/$c/client.pub"; done > "$out"
  echo "$out"
}
pubkey() { sed -n 's/^public-key = "\(.*\)"$/\1/p' "$WORK/keys/$1/client.pub"; }

# start_server DIR ALLOWLIST ARGS...: sfn-server writing DIR/run, logging to DIR/server.log.
start_server() {
  local dir=$1 allow=$2
  shift 2
  mkdir -p "$dir"
  "$SERVER" -c "$CFG" -o "$dir/run" --key "$WORK/keys/server.key" --allow "$allow" \
    --set checkpoint.keep=50 "$@" >> "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}
endpoint_of() {
  wait_for "the server's endpoint file" 60 test -s "$1/run/endpoint"
  cat "$1/run/endpoint"
}
# start_client DIR NAME ENDPOINT [ARGS...]: sfn-client with key NAME, shard NAME's index of
# $SHARDS (default 100), one torch thread. The shard's settings (Dirichlet alpha 1, seed 5 =
# run.seed of integration.toml) come from the server's Welcome.
start_client() {
  local dir=$1 name=$2 ep=$3
  shift 3
  "$CLIENT" --server "$ep" --server-key "$WORK/keys/server.pub" --key "$WORK/keys/$name/client.key" \
    --name "$name" --partition "${name#c}" --of "${SHARDS:-100}" --threads 1 \
    --heartbeat-s 1 --backoff-max-s 2 "$@" >> "$dir/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
rounds_done() { [ -f "$1/run/metrics.jsonl" ] && [ "$(grep -c '"outcome":"completed"' "$1/run/metrics.jsonl")" -ge "$2" ]; }
# past_client_deadline LOG ROUND DEADLINE_S: the client's own deadline for its ROUND task
# has passed. A client counts the deadline from when it read the task, which on a loaded
# machine can be seconds after the server started the round (the task waits in its queue
# while the client loads its data), so the server's deadline alone does not make it late.
past_client_deadline() {
  local stamp
  stamp=$(grep -m1 -F "round $2 task" "$1" | cut -d' ' -f1-2) || return 1
  [ -n "$stamp" ] || return 1
  python3 -c 'import datetime, sys, time
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%d %H:%M:%S.%f").timestamp()
sys.exit(0 if time.time() > t + float(sys.argv[2]) + 0.5 else 1)' "$stamp" "$3"
}

# ---------------------------------------------------------------------------------------
federation() {
  local D=$WORK/federation
  # Random SubNets: the tracking sandwich gives someone the MaxNet every round, which covers
  # the whole SuperNet and would leave "changes only where covered" untested.
  start_server "$D" "$(allowlist fed c0 c1 c2)" --set run.rounds=4 --set 'round.policy="random"'
  local ep
  ep=$(endpoint_of "$D")
  local port=${ep##*:}
  local pids=()
  for c in c0 c1 c2; do
    start_client "$D" "$c" "$ep"
    pids+=("$LAST_PID")
  done
  start_client "$D" c4 "$ep" --register-timeout-s 2 # not on the allowlist
  local c4_pid=$LAST_PID

  # --- 2: kill -9 once round 2 is checkpointed ---
  # `latest` is written after the checkpoint file itself, and a resume follows `latest`
  # (CheckpointDir::latest: the pointer wins over a higher-numbered file it does not name).
  wait_for "the checkpoint after round 2" 300 grep -qx ckpt-000002.sfn "$D/run/checkpoints/latest"
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2> /dev/null || true
  # The newest complete checkpoint is what a resume must load (normally ckpt-000002).
  local latest
  latest=$(cat "$D/run/checkpoints/latest")
  local digest
  digest=$(sha256sum "$D/run/checkpoints/$latest" | cut -d' ' -f1)
  local resume_round=$((10#${latest//[!0-9]/}))
  echo "killed the server; newest checkpoint $latest (round $resume_round) sha256 $digest"
  [ "$resume_round" -ge 2 ] || fail "2: killed before round 2 was checkpointed"
  cp "$D/run/metrics.jsonl" "$D/metrics.before-kill.jsonl"

  # --- 4a (checked before the restart, on the first server's log and metrics) ---
  log_has "$D/server.log" "client key not allowlisted" ||
    fail "4a: the ZAP handler did not log the refused key"
  if log_has "$D/c4.log" "registered with server"; then fail "4a: c4 was welcomed"; fi
  # c4 sees the refusal in its handshake (ZeroMQ's authentication event) and gives up with
  # exit code 3 instead of retrying; a fast run may not have got there yet.
  wait_for "4a: c4 to give up" 60 log_has "$D/c4.log" "this client's key is not on its allowlist"
  local c4_rc=0
  wait "$c4_pid" || c4_rc=$?
  [ "$c4_rc" = 3 ] || fail "4a: c4 exited with $c4_rc, expected 3 (authentication refused)"
  py "4a: the refused client reached the Coordinator" "$D/metrics.before-kill.jsonl" << 'EOF'
for r in rows:
    check(r["available"] <= 3, f"round {r['round']}: {r['available']} clients available")
    check(all(t["client"] != "c4" for t in r["tasks"]), f"round {r['round']}: c4 got a task")
EOF
  ok "4a - a client whose key is not allowlisted is refused and never reaches the Coordinator"

  start_server "$D" "$WORK/keys/allow-fed" --resume "$D/run" --bind "tcp://127.0.0.1:$port" \
    --set run.rounds=4 --set 'round.policy="random"'
  wait_exit "$SERVER_PID" 300
  [ "$RC" = 0 ] || fail "2: the resumed server exited with '$RC'"
  grep -q "resumed at round $resume_round from .*$latest (sha256 $digest)" "$D/server.log" ||
    fail "2: the resumed server did not load $latest with sha256 $digest"
  py "1/2: rounds after the restart" "$D/run/metrics.jsonl" << 'EOF'
check([r["round"] for r in rows] == [0, 1, 2, 3], f"rounds {[r['round'] for r in rows]}")
for r in rows:
    check(r["outcome"] == "completed" and r["accepted"] == 3,
          f"round {r['round']}: {r['outcome']}, {r['accepted']} accepted")
    names = sorted(t["client"] for t in r["tasks"] if t["status"] == "accepted")
    check(names == ["c0", "c1", "c2"], f"round {r['round']}: accepted {names}")
EOF
  # The rounds before the kill are kept as they were, not rerun.
  py "2: history changed across the restart" "$D/run/metrics.jsonl" << EOF
before = [json.loads(l) for l in open("$D/metrics.before-kill.jsonl") if l.strip()]
check(rows[:$resume_round] == before[:$resume_round], "rounds before the checkpoint differ")
EOF
  for c in c0 c1 c2; do
    [ "$(grep -c "registered with server" "$D/$c.log")" -ge 2 ] ||
      fail "2: $c did not register again after the restart"
  done
  ok "2 - killed -9 after round 2, resumed at round $resume_round from the identical checkpoint; clients reconnected"

  "$CHECK_RUN" coverage --require-uncovered "$D/run" > "$D/coverage.txt" 2>&1 || {
    cat "$D/coverage.txt"
    fail "1: the SuperNet changed outside the accepted SubNets' slices"
  }
  sed 's/^/  /' "$D/coverage.txt"
  grep -q "coverage ok (4 rounds" "$D/coverage.txt" || fail "1: not every round was audited"
  ok "1 - 3 CURVE clients, 4 rounds; the SuperNet changed in covered elements only"
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
}

# ---------------------------------------------------------------------------------------
dropout() {
  local D=$WORK/dropout
  local deadline=20
  start_server "$D" "$(allowlist drop c0 c1 c2 c3)" --set run.rounds=2 \
    --set round.clients_per_round=4 --set round.quorum=2 --set round.deadline_s=$deadline \
    --set server.min_clients=4
  local ep
  ep=$(endpoint_of "$D")
  start_client "$D" c0 "$ep"
  start_client "$D" c1 "$ep"
  # c2 trains on a 4x larger shard, so it is certainly still training when it is stopped.
  SHARDS=25 start_client "$D" c2 "$ep"
  local c2_pid=$LAST_PID
  start_client "$D" c3 "$ep"
  local c3_pid=$LAST_PID

  wait_for "c3 to start training round 0" 120 log_has "$D/c3.log" "round 0 task"
  kill -9 "$c3_pid"
  wait_for "c2 to start training round 0" 60 log_has "$D/c2.log" "round 0 task"
  kill -STOP "$c2_pid"
  echo "killed c3 and stopped c2 during round 0"
  wait_for "round 0 to close" $((deadline + 60)) rounds_done "$D" 1
  wait_for "c2's own round-0 deadline" $((deadline + 60)) past_client_deadline "$D/c2.log" 0 $deadline
  kill -CONT "$c2_pid"
  wait_exit "$SERVER_PID" $((2 * deadline + 120))
  [ "$RC" = 0 ] || fail "3: the server exited with '$RC'"
  log_has "$D/c2.log" "finished after the server's deadline" ||
    fail "3: c2 did not finish its round-0 task after the deadline"
  grep -q "discarded late update (round 0, task" "$D/server.log" ||
    fail "3: the server did not log c2's late update"
  py "3: quorum, deadline and late update" "$D/run/metrics.jsonl" << EOF
r0 = rows[0]
check(r0["outcome"] == "completed", f"round 0 {r0['outcome']}")
check(r0["selected"] == 4 and r0["accepted"] >= 2, f"round 0 accepted {r0['accepted']}/{r0['selected']}")
check(r0["dropped"] >= 1, f"round 0 dropped {r0['dropped']}")
status = {t["client"]: t["status"] for t in r0["tasks"]}
check(status.get("c3") == "dropped" and status.get("c2") == "dropped", f"round 0 tasks {status}")
# Closed by the deadline: not before it, and not long after.
check($deadline - 0.5 <= r0["wall_train_s"] <= $deadline + 10, f"round 0 trained {r0['wall_train_s']:.1f} s")
check(sum(r["late"] for r in rows) >= 1, "no late update counted")
check(all(r["outcome"] == "completed" for r in rows), "a round was abandoned")
EOF
  ok "3 - a client killed mid-round: round 0 completed at quorum by its ${deadline}s deadline; a late update was discarded"
}

# ---------------------------------------------------------------------------------------
bad_client() {
  local D=$WORK/bad
  start_server "$D" "$(allowlist bad c0 c1 c2 bad)" --set run.rounds=2 \
    --set round.clients_per_round=4 --set round.quorum=3 --set round.deadline_s=90 \
    --set server.min_clients=4
  local ep
  ep=$(endpoint_of "$D")
  for c in c0 c1 c2; do start_client "$D" "$c" "$ep"; done
  "$BAD_CLIENT" --server "$ep" --server-key "$WORK/keys/server.pub" \
    --key "$WORK/keys/bad/client.key" --name bad --timeout-s 120 > "$D/bad.log" 2>&1 &
  local bad_pid=$!
  PIDS+=("$bad_pid")
  wait_exit "$bad_pid" 200
  [ "$RC" = 0 ] || fail "5: the bad client exited with '$RC'"
  wait_exit "$SERVER_PID" 200
  [ "$RC" = 0 ] || fail "5: the server exited with '$RC'"
  [ "$(grep -c "bad-client: sent" "$D/bad.log")" = 9 ] || fail "5: the bad client did not send everything"

  local key
  key=$(pubkey bad)
  local from="rejected message from client $key:"
  grep -F -- "$from" "$D/server.log" > "$D/bad-rejections.txt" || true
  for reason in "verify_failed: " "unknown_payload: " "shape_mismatch: " "non_finite: "; do
    log_has "$D/bad-rejections.txt" "$reason" || fail "5: no '$reason' rejection logged"
  done
  # Garbage and the truncated Update: both stop at the verifier (or the identifier check).
  [ "$(grep -cE ": (verify_failed|bad_identifier|too_small): " "$D/bad-rejections.txt")" -ge 2 ] ||
    fail "5: garbage and truncated Update were not both rejected by the verifier"
  grep -qF "discarded duplicate update (round 0, task" "$D/server.log" || fail "5: duplicate not logged"
  grep -qF "discarded late update (round 0, task" "$D/server.log" || fail "5: stale round not logged"
  py "5: bad client" "$D/run/metrics.jsonl" << 'EOF'
check([r["round"] for r in rows] == [0, 1], f"rounds {[r['round'] for r in rows]}")
for r in rows:
    check(r["outcome"] == "completed" and r["accepted"] == 3,
          f"round {r['round']}: {r['outcome']}, {r['accepted']} accepted")
    bad = [t for t in r["tasks"] if t["client"] == "bad"]
    check(len(bad) == 1 and bad[0]["status"] == "rejected", f"round {r['round']}: bad tasks {bad}")
    good = sorted(t["client"] for t in r["tasks"] if t["status"] == "accepted")
    check(good == ["c0", "c1", "c2"], f"round {r['round']}: accepted {good}")
r0, r1 = rows
# garbage, truncated, unknown member, wrong shapes; then the wrong shapes again.
check(r0["rejected"] == 4 and r0["duplicate"] == 1, f"round 0: rejected {r0['rejected']} duplicate {r0['duplicate']}")
# stale round (late), NaN (rejected)
check(r1["late"] == 1 and r1["rejected"] == 1, f"round 1: late {r1['late']} rejected {r1['rejected']}")
EOF
  ok "5 - garbage, truncated, unknown member, wrong shapes, NaN, stale and duplicate: each rejected and logged; the bad client's updates were never accepted; the server kept serving"
}

# ---------------------------------------------------------------------------------------
poison() {
  local D=$WORK/poison
  local rounds=3
  start_server "$D" "$(allowlist poison c0 c1 c2 bad)" --set run.rounds=$rounds \
    --set round.clients_per_round=4 --set round.quorum=3 --set round.deadline_s=90 \
    --set server.min_clients=4
  local ep
  ep=$(endpoint_of "$D")
  for c in c0 c1 c2; do start_client "$D" "$c" "$ep"; done
  "$BAD_CLIENT" --server "$ep" --server-key "$WORK/keys/server.pub" \
    --key "$WORK/keys/bad/client.key" --name bad --mode poison --timeout-s 200 > "$D/bad.log" 2>&1 &
  local bad_pid=$!
  PIDS+=("$bad_pid")
  wait_exit "$SERVER_PID" 400
  [ "$RC" = 0 ] || fail "poison: the server exited with '$RC'"
  wait_exit "$bad_pid" 60
  [ "$RC" = 0 ] || fail "poison: the poisoning client exited with '$RC'"
  [ "$(grep -c "bad-client: sent poisoned Update" "$D/bad.log")" = $rounds ] ||
    fail "poison: the client did not poison every round"

  local key
  key=$(pubkey bad)
  # One refusal per round, with its reason and the client's name.
  [ "$(grep -F -- "rejected message from client $key: update for task" "$D/server.log" |
    grep -F "change rms 3e+38 over the cap" |
    grep -cF "(reason change_over_cap, client name 'bad')")" = $rounds ] ||
    fail "poison: not every poisoned Update was refused by the cap with its reason logged"
  py "poison: rounds" "$D/run/metrics.jsonl" << EOF
check([r["round"] for r in rows] == list(range($rounds)), f"rounds {[r['round'] for r in rows]}")
for r in rows:
    check(r["outcome"] == "completed" and r["accepted"] == 3,
          f"round {r['round']}: {r['outcome']}, {r['accepted']} accepted")
    check(r["rejected"] == 1 and r["rejected_reasons"] == {"change_over_cap": 1},
          f"round {r['round']}: rejected {r['rejected']} {r['rejected_reasons']}")
    bad = [t for t in r["tasks"] if t["client"] == "bad"]
    check(len(bad) == 1 and bad[0]["status"] == "rejected" and bad[0]["change_rms"] > 1e38,
          f"round {r['round']}: bad tasks {bad}")
    good = [t for t in r["tasks"] if t["status"] == "accepted"]
    check(sorted(t["client"] for t in good) == ["c0", "c1", "c2"], f"round {r['round']}: accepted {good}")
    check(all(0 < t["change_rms"] < 1 for t in good), f"round {r['round']}: honest changes {good}")
EOF
  local ck verdict
  for ck in "$D"/run/checkpoints/ckpt-*.sfn; do
    verdict=$(supernet_ok "$ck" 2>&1) || fail "poison: $(basename "$ck"): $verdict"
    echo "  $(basename "$ck"): $verdict"
  done
  [ -f "$D/run/checkpoints/ckpt-$(printf %06d $rounds).sfn" ] ||
    fail "poison: no final checkpoint after round $rounds"
  ok "poison - an all-3e38 Update in each of $rounds rounds was refused by the bound (reason logged and counted); every round completed with the 3 honest clients; every checkpoint's SuperNet stayed finite"
}

case $PART in
  federation) federation ;;
  dropout) dropout ;;
  bad_client) bad_client ;;
  poison) poison ;;
  all)
    federation
    dropout
    bad_client
    poison
    ;;
  *) fail "unknown part '$PART' (federation | dropout | bad_client | poison | all)" ;;
esac
echo "$PASSED passed, 0 failed"

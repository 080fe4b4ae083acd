#!/usr/bin/env bash
# The layout of deploy/k8s/overlays/sim-shards, run locally: one sfn-server (started by
# deploy/sfn-server-start.sh, as the StatefulSet does) and three `sfn-sim --connect` processes
# with --shard 0, 1, 2 of --shards 3 and 1000 clients each, all reading the deploy TOML
# (deploy/k8s/base/sfn-server.toml) as the Job's pods do, on tiny synthetic data:
#   1. a shard index outside --shards, and keys missing for a shard's slice, exit 2 naming
#      the flag and the keygen command;
#   2. the three shards are one fleet: the server sees 3000 distinct keys before round 0,
#      2 rounds complete, every shard logs its own slice and ends with the server's Bye;
#   3. sfn-server-start.sh does not start a finished run again;
#   4. the search Job's command (deploy/k8s/overlays/search: its targets file, a signing key
#      from `sfn-search keygen`) on that run folder exports a signed model per target.
# Usage: sim_shards.sh BUILD_DIR SOURCE_DIR [CLIENTS_PER_SHARD]
set -euo pipefail
BUILD=$1
SRC=$2
PER=${3:-1000}
SERVER=$BUILD/server/sfn-server
SIM=$BUILD/simulator/sfn-sim
CFG=$SRC/deploy/k8s/base/sfn-server.toml
source "$SRC/tests/process_lib.sh"
make_work sim-shards
TOTAL=$((3 * PER))
# Server and shards must agree on data, partition and seed: same file, same overrides. iid,
# because 3000 clients of a few thousand samples cannot all get a Dirichlet minimum.
DATA=(--set 'data.dataset="synthetic"' --set data.synthetic_train=$((3 * TOTAL))
      --set data.synthetic_test=200 --set 'data.partition="iid"')
SERVER_SETS=(--set run.rounds=2 --set round.clients_per_round=30 --set round.quorum=20
             --set round.deadline_s=120 --set train.batch_size=4 --set eval.every=0
             --set run.torch_threads=1 --set checkpoint.keep=2)
SIM_SETS=(--set simulation.workers=1 --set simulation.torch_threads=1)

"$SERVER" keygen --out "$WORK/skeys" > /dev/null
# --- 1: wrong shard layouts fail at once, naming what is wrong ---
rc=0
"$SIM" --connect tcp://127.0.0.1:9 --clients 2 --shard 3 --shards 3 --keys-dir "$WORK/none" \
  --server-key "$WORK/skeys/server.pub" -c "$CFG" > "$WORK/bad1.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--shard 3 --shards 3: exit $rc, expected 2"
log_has "$WORK/bad1.log" "--shard 3 is not below --shards 3" || fail "no message for --shard 3"
"$SIM" keygen --clients 4 -o "$WORK/few" > /dev/null
rc=0
"$SIM" --connect tcp://127.0.0.1:9 --clients 2 --shard 2 --shards 3 --keys-dir "$WORK/few" \
  --server-key "$WORK/skeys/server.pub" -c "$CFG" > "$WORK/bad2.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "keys missing for shard 2: exit $rc, expected 2"
log_has "$WORK/bad2.log" "has no key pair for client 4" || fail "no message naming client 4"
log_has "$WORK/bad2.log" "sfn-sim keygen --clients 6 -o $WORK/few" || fail "no keygen hint"
[ "$(grep -vc '^#' "$WORK/few/allow")" = 4 ] || fail "a sharded fleet rewrote DIR/allow"
ok "a shard outside --shards and a slice without keys exit 2, naming the fix"

# --- 2: three shards, one fleet ---
"$SIM" keygen --clients "$TOTAL" -o "$WORK/fleet" > /dev/null
t0=$SECONDS
SFN_SERVER_BIN=$SERVER "$SRC/deploy/sfn-server-start.sh" "$WORK/run" --config "$CFG" \
  --bind 'tcp://127.0.0.1:*' --http off --key "$WORK/skeys/server.key" \
  --allow "$WORK/fleet/allow" --min-clients "$TOTAL" "${DATA[@]}" "${SERVER_SETS[@]}" \
  > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "server endpoint" 60 test -s "$WORK/run/endpoint"
ENDPOINT=$(cat "$WORK/run/endpoint")
SIMS=()
for i in 0 1 2; do
  "$SIM" --connect "$ENDPOINT" --clients "$PER" --shard "$i" --shards 3 \
    --keys-dir "$WORK/fleet" --server-key "$WORK/skeys/server.pub" -c "$CFG" \
    "${DATA[@]}" "${SIM_SETS[@]}" --status-s 5 > "$WORK/sim$i.out" 2> "$WORK/sim$i.log" &
  SIMS+=("$!")
  PIDS+=("$!")
done
for i in 0 1 2; do
  wait_exit "${SIMS[$i]}" 240
  [ "$RC" = 0 ] || fail "shard $i exited with $RC (expected 0 after the server's Bye)"
done
wait_exit "$SERVER_PID" 60
[ "$RC" = 0 ] || fail "sfn-server exited with $RC"
echo "# 3 x $PER clients: $((SECONDS - t0)) s from server start to the last exit"
[ "$(grep -c '"outcome":"completed"' "$WORK/run/metrics.jsonl")" = 2 ] || fail "not 2 rounds"
py "round 0 started with all $TOTAL fleet keys registered" "$WORK/run/metrics.jsonl" <<EOF
check(rows[0]["available"] == $TOTAL, f"round 0 saw {rows[0]['available']} clients")
EOF
updates=0
for i in 0 1 2; do
  first=$((i * PER))
  log_has "$WORK/sim$i.log" "shard $i of 3: clients $first..$((first + PER - 1)) of $TOTAL" ||
    fail "shard $i did not log its slice"
  log_has "$WORK/sim$i.log" "$PER of $TOTAL shards" || fail "shard $i: not $PER of $TOTAL shards"
  ended_with_server "$PER" "$WORK/sim$i.out" || fail "shard $i did not end with the server's Bye"
  n=$(sed -n "s/.*$PER clients, \([0-9]*\) updates sent.*/\1/p" "$WORK/sim$i.out")
  updates=$((updates + n))
done
[ "$updates" -ge 40 ] || fail "the shards sent $updates updates, expected >= 40 (2 rounds x 20)"
ok "3 shards of $PER clients: one fleet of $TOTAL keys, 2 rounds, $updates updates, all Bye"

# --- 3: a finished run is not started again ---
rc=0
SFN_SERVER_BIN=$SERVER "$SRC/deploy/sfn-server-start.sh" "$WORK/run" --config "$CFG" \
  > "$WORK/again.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "sfn-server-start.sh on a finished run: exit $rc"
log_has "$WORK/again.log" "has finished" || fail "no 'has finished' message"
[ "$(grep -c '"outcome":"completed"' "$WORK/run/metrics.jsonl")" = 2 ] || fail "the run grew"
ok "sfn-server-start.sh leaves a finished run alone"

# --- 4: the search Job on the finished run (a tiny search: the command, not the result) ---
"$BUILD/searcher/sfn-search" keygen --out "$WORK/signing" > /dev/null
rc=0
"$BUILD/searcher/sfn-search" --checkpoint "$WORK/run" \
  --targets "$SRC/deploy/k8s/overlays/search/sfn-targets.toml" --out "$WORK/search" \
  --key "$WORK/signing/signing.key" --threads 1 --population 4 --generations 1 \
  --val-samples 50 --latency-repeats 2 > "$WORK/search.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "the search Job's command exited $rc"
"$BUILD/searcher/sfn-search" verify "$WORK/search" --pubkey "$WORK/signing/signing.pub" \
  > "$WORK/verify.log" 2>&1 || fail "sfn-search verify failed"
for t in phone-low phone-high; do
  log_has "$WORK/verify.log" "$WORK/search/$t: OK" || fail "no verified model for target $t"
done
ok "the search Job's command exports a signed, verified model per target of sfn-targets.toml"
echo "$PASSED passed, 0 failed"

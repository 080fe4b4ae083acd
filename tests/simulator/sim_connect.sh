#!/usr/bin/env bash
# sfn-sim --connect against a real sfn-server (CURVE on, tcp loopback, ephemeral port):
#   1. `sfn-sim keys` writes 5 client key pairs and an allowlist; a second call reuses them;
#   2. sfn-server runs with that allowlist; `sfn-sim --connect` with 5 clients completes its
#      2 rounds, every client registered, and the fleet ends by itself when the server says Bye;
#   3. a fleet whose keys are not on the allowlist never reaches the Coordinator.
# Data: the fmnist preset on a small synthetic set, so that 2 rounds take seconds.
# Usage: sim_connect.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
SERVER=$BUILD/server/sfn-server
SIM=$BUILD/simulator/sfn-sim
CFG=$SRC/experiments/configs/integration.toml
source "$SRC/tests/process_lib.sh"
make_work sim-connect
# Both sides must agree on data, partition and seed: same config, same overrides.
SETS=(--set 'data.dataset="synthetic"' --set data.synthetic_train=2000 --set data.synthetic_test=200
      --set run.rounds=2 --set round.clients_per_round=4 --set round.quorum=3
      --set server.min_clients=5 --set simulation.workers=1 --set simulation.torch_threads=1
      --set checkpoint.every=1)

# --- 1: keys ---
"$SERVER" keygen --out "$WORK/skeys" > /dev/null
"$SIM" keys --clients 5 --out "$WORK/fleet" > "$WORK/keys.log" 2>&1 || fail "sfn-sim keys failed"
grep -q "5 new" "$WORK/keys.log" || fail "keys: expected 5 new key pairs"
[ "$(grep -vc '^#' "$WORK/fleet/allow")" = 5 ] || fail "allowlist does not hold 5 keys"
[ "$(stat -c %a "$WORK/fleet/client-000000.key")" = 600 ] || fail "client secret key is not 0600"
cp "$WORK/fleet/allow" "$WORK/allow.first"
"$SIM" keys --clients 5 --out "$WORK/fleet" > "$WORK/keys2.log" 2>&1 || fail "second keys failed"
grep -q "0 new, 5 reused" "$WORK/keys2.log" || fail "keys: a second call did not reuse the keys"
cmp -s "$WORK/fleet/allow" "$WORK/allow.first" || fail "keys: allowlist changed on reuse"
echo "ok 1 - sfn-sim keys writes and reuses 5 key pairs and their allowlist"

# --- 2: a fleet of 5 real clients completes 2 rounds and ends with the server ---
"$SERVER" -c "$CFG" -o "$WORK/run" --key "$WORK/skeys/server.key" --allow "$WORK/fleet/allow" \
  "${SETS[@]}" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "server endpoint" 60 test -s "$WORK/run/endpoint"
ENDPOINT=$(cat "$WORK/run/endpoint")
"$SIM" --connect "$ENDPOINT" --clients 5 --keys-dir "$WORK/fleet" \
  --server-key "$WORK/skeys/server.pub" -c "$CFG" "${SETS[@]}" --status-s 2 \
  > "$WORK/sim.out" 2> "$WORK/sim.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_exit "$SIM_PID" 150
[ "$RC" = 0 ] || fail "sfn-sim --connect exited with $RC (expected 0 after the server's Bye)"
wait_exit "$SERVER_PID" 30
[ "$RC" = 0 ] || fail "sfn-server exited with $RC"
[ "$(grep -c '"outcome":"completed"' "$WORK/run/metrics.jsonl")" = 2 ] || fail "not 2 completed rounds"
grep -q '"available":5' "$WORK/run/metrics.jsonl" || fail "not all 5 fleet clients registered"
grep -q '"accepted":4' "$WORK/run/metrics.jsonl" || fail "no round accepted all 4 selected clients"
grep -q "5 clients, [0-9]* updates sent" "$WORK/sim.out" || fail "no fleet summary"
updates=$(sed -n 's/.*5 clients, \([0-9]*\) updates sent.*/\1/p' "$WORK/sim.out")
[ "$updates" -ge 7 ] || fail "fleet sent $updates updates, expected >= 7 (2 rounds x 4, quorum 3)"
ended_with_server 5 "$WORK/sim.out" || fail "the fleet did not end with the server's Bye"
echo "ok 2 - sfn-sim --connect: 5 CURVE clients completed 2 rounds and ended with the server"

# --- 3: keys not on the allowlist never reach the Coordinator ---
"$SERVER" -c "$CFG" -o "$WORK/run3" --key "$WORK/skeys/server.key" --allow "$WORK/allow.first" \
  "${SETS[@]}" --set server.min_clients=1 > "$WORK/server3.log" 2>&1 &
PIDS+=("$!")
wait_for "server endpoint" 60 test -s "$WORK/run3/endpoint"
"$SIM" --connect "$(cat "$WORK/run3/endpoint")" --clients 2 --keys-dir "$WORK/other" \
  --server-key "$WORK/skeys/server.pub" -c "$CFG" "${SETS[@]}" --status-s 1 \
  > "$WORK/sim3.out" 2> "$WORK/sim3.log" &
SIM3=$!
PIDS+=("$SIM3")
# Each client sees the server refuse its key (the ZeroMQ handshake's authentication event)
# and gives up instead of retrying: the fleet ends by itself with the authentication code.
wait_exit "$SIM3" 60
[ "$RC" = 3 ] || fail "sfn-sim --connect with keys not on the allowlist: exit $RC, expected 3"
grep -q "client key not allowlisted" "$WORK/server3.log" || fail "the server did not refuse the keys"
[ "$(grep -c "key is not on its allowlist" "$WORK/sim3.log")" = 2 ] ||
  fail "not both clients said their key is not on the allowlist"
grep -q "new client keys generated" "$WORK/sim3.log" || fail "no warning about new keys"
# The server waits for min_clients = 1 before round 0: no round means nobody registered.
[ ! -s "$WORK/run3/metrics.jsonl" ] || fail "a non-allowlisted client reached the Coordinator"
echo "ok 3 - keys not on the allowlist never reach the Coordinator; the fleet exits 3"
echo "3 passed, 0 failed"

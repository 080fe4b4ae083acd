#!/usr/bin/env bash
# Issue 13 item 4, memory before authentication, with a real sfn-server (CURVE on) and raw
# TCP peers that never authenticate (tests/integration/pre_auth_flood.py).
#
# 1. The issue's attack: 4 connections each send 256 MiB of a handshake frame that claims
#    1 GiB. Before, libzmq buffered all of it (ZMQ_MAXMSGSIZE was a fixed 1 GiB): server RSS
#    grew by about 1 GiB until the 10 s handshake timeout. Now the limit is the run's
#    largest legitimate message (the MaxNet Update plus a margin), so such a frame is refused
#    at its header: growth must stay under 32 MiB.
# 2. The same with frames claiming just under that limit: what an attacker can still make
#    the server hold per pending connection (printed, and bounded by 4 x the limit).
#
# Usage: pre_auth_memory.sh BUILD_DIR SOURCE_DIR. KEEP=1 keeps the work folder.
set -euo pipefail
BUILD=$1
SRC=$2
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
ATTACK=$SRC/tests/integration/pre_auth_flood.py
CFG=$SRC/experiments/configs/integration.toml
for b in "$SERVER" "$CLIENT"; do
  [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
done
source "$SRC/tests/process_lib.sh"
make_work pre-auth

"$SERVER" keygen --out "$WORK/keys" > /dev/null
"$CLIENT" keygen --out "$WORK/keys/c0" > /dev/null
# No client ever comes: the server waits for one, idle, while it is attacked.
"$SERVER" -c "$CFG" -o "$WORK/run" --key "$WORK/keys/server.key" --allow "$WORK/keys/c0/client.pub" \
  --set server.min_clients=1 --http off > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "the server to wait for clients" 120 log_has "$WORK/server.log" "waiting for 1 clients"
EP=$(cat "$WORK/run/endpoint")
PORT=${EP##*:}
LIMIT=$(sed -n 's/.*largest client message accepted: \([0-9]*\) bytes.*/\1/p' "$WORK/server.log")
[ -n "$LIMIT" ] || fail "the server did not log its message size limit"
echo "  message size limit: $LIMIT bytes ($((LIMIT >> 20)) MiB)"

# field NAME JSON: one value of the attack tool's JSON line.
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }

one=$(python3 "$ATTACK" 127.0.0.1 "$PORT" "$SERVER_PID" --connections 4 --claim $((1 << 30)) \
  --send $((256 << 20)))
echo "  1 GiB claims: $one"
kill -0 "$SERVER_PID" 2> /dev/null || fail "the server died"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 32 else 1)' "$(field growth_mib "$one")" ||
  fail "RSS grew by $(field growth_mib "$one") MiB under 4 x 1 GiB claims"
ok "4 handshake frames claiming 1 GiB: RSS $(field baseline_mib "$one") -> $(field peak_mib "$one") MiB"

two=$(python3 "$ATTACK" 127.0.0.1 "$PORT" "$SERVER_PID" --connections 4 --claim $((LIMIT - 64)) \
  --send $((256 << 20)))
echo "  claims just under the limit: $two"
kill -0 "$SERVER_PID" 2> /dev/null || fail "the server died"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 4 * float(sys.argv[2]) / 2**20 + 32 else 1)' \
  "$(field growth_mib "$two")" "$LIMIT" || fail "RSS grew by more than 4 x the limit"
ok "4 frames just under the limit: RSS $(field baseline_mib "$two") -> $(field peak_mib "$two") MiB"
echo "all $PASSED checks passed"

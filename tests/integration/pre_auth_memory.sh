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
# 3. 2,000 connections that send nothing at all, held 8 s, while the one allowlisted client
#    registers and trains a round. Before the cap on pending connections every one of them
#    held a file descriptor (and libzmq's buffers) until the 10 s handshake timeout, and
#    nothing bounded how many there could be. Now beyond server.max_pending_connections
#    (1,024 by default) the oldest are closed at once: the client still registers, the
#    server stays up with about 1,024 of them open, and /metrics and the log count the
#    closes. RSS (of the connections alone, before the client starts: silent connections
#    cost libzmq little memory, about 3.5 KiB each; the cap is mostly about descriptors and
#    about what each could be made to hold), open files and the client's registration time
#    are printed.
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
# No client comes before phase 3: the server waits for one, idle, while it is attacked. Then
# it trains with that client until the end of the test (rounds enough not to finish first).
"$SERVER" -c "$CFG" -o "$WORK/run" --key "$WORK/keys/server.key" --allow "$WORK/keys/c0/client.pub" \
  --set server.min_clients=1 --set run.rounds=1000 --set round.clients_per_round=1 \
  --set round.quorum=1 --http 127.0.0.1:0 > "$WORK/server.log" 2>&1 &
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
# metric NAME: its value on the server's /metrics.
metric() {
  python3 -c 'import sys, urllib.request
text = urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=10).read().decode()
print(next(int(float(l.split()[1])) for l in text.splitlines() if l.startswith(sys.argv[2] + " ")))' \
    "$(cat "$WORK/run/http_endpoint")" "$1"
}

# Phase 3 (see the top).
silent_phase() {
  local n=2000 cap=1024
  python3 "$ATTACK" 127.0.0.1 "$PORT" "$SERVER_PID" --silent --connections $n --settle 1 --hold 7 \
    --ready-file "$WORK/silent.ready" > "$WORK/silent.json" 2> "$WORK/silent.log" &
  local flood=$!
  PIDS+=("$flood")
  wait_for "$n silent connections" 30 test -s "$WORK/silent.ready"
  local t0=$EPOCHREALTIME
  "$CLIENT" --server "$EP" --server-key "$WORK/keys/server.pub" --key "$WORK/keys/c0/client.key" \
    --name c0 --partition 0 --of 100 --threads 1 --heartbeat-s 1 > "$WORK/c0.log" 2>&1 &
  PIDS+=("$!")
  wait_for "the client to register" 30 log_has "$WORK/c0.log" "registered with server"
  local took
  took=$(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))' \
    "$t0" "$EPOCHREALTIME")
  wait_exit "$flood" 30
  [ "$RC" = 0 ] || fail "pre_auth_flood.py --silent exited with '$RC'"
  local three
  three=$(cat "$WORK/silent.json")
  echo "  $n silent connections: $three; the client registered after $took s"
  kill -0 "$SERVER_PID" 2> /dev/null || fail "the server died"
  ok "the client registered ($took s) while $n silent connections were open"
  # The cap counts the client's own handshake too, so one more silent one may go for it.
  [ "$(field closed_by_server "$three")" -ge $((n - cap)) ] ||
    fail "the server closed $(field closed_by_server "$three") of $n silent connections (cap $cap)"
  [ "$(field open_at_end "$three")" -le "$cap" ] ||
    fail "$(field open_at_end "$three") silent connections still open (cap $cap)"
  # Its own files besides: the listener, the client, the HTTP endpoint, data, logs.
  [ "$(field fds_at_end "$three")" -le $(($(field baseline_fds "$three") + cap + 16)) ] ||
    fail "the server had $(field fds_at_end "$three") files open (cap $cap)"
  ok "$(field closed_by_server "$three") closed, $(field open_at_end "$three") left open; server files $(field baseline_fds "$three") -> peak $(field peak_fds "$three"), $(field fds_at_end "$three") at the end"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) - float(sys.argv[1]) < 32 else 1)' \
    "$(field baseline_mib "$three")" "$(field settled_mib "$three")" ||
    fail "RSS grew from $(field baseline_mib "$three") to $(field settled_mib "$three") MiB under $n silent connections"
  ok "RSS under $n silent connections: $(field baseline_mib "$three") -> $(field settled_mib "$three") MiB (with the client training: peak $(field peak_mib "$three") MiB)"
  local closed
  closed=$(metric sfn_pending_connections_closed_total)
  [ "$closed" -ge $((n - cap)) ] || fail "/metrics counted $closed closed pending connections"
  log_has "$WORK/server.log" "over the cap of $cap pending handshakes" ||
    fail "the server did not log the closed connections"
  ok "/metrics counted $closed closed pending connections, and the log says so"
  wait_for "the client's round" 60 grep -q '"outcome":"completed"' "$WORK/run/metrics.jsonl"
  ok "a round completed with the client"
}

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

silent_phase
echo "all $PASSED checks passed"

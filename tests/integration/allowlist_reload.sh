#!/usr/bin/env bash
# The allowlist reloads on SIGHUP without a restart (issue 11), over tcp loopback with CURVE:
#
#   sfn-server (K 3, quorum 2, a 300 s deadline) and clients c0, c1, c2. While c2 trains
#   its round-0 task (SIGSTOPped, so it is surely still training), its key is removed from
#   the allowlist file, c3's key is added, and the server gets SIGHUP. Then:
#   - the server logs one reload line (1 key added, 1 removed, naming c2's key);
#   - c2's task is dropped at once: round 0 completes with c0 and c1 long before its
#     deadline (without the reload it would wait the full 300 s for c2);
#   - c2, continued, hears that its key was revoked (Bye), and its reconnect is refused by
#     ZAP: it exits 3;
#   - c3 registers, and rounds 1 and 2 complete with c0, c1 and c3; c2 gets no task again;
#   - an allowlist file that does not parse is refused on the next SIGHUP with an error
#     naming the file, and the list in force stays (the run goes on to its end).
#
# Usage: allowlist_reload.sh BUILD_DIR SOURCE_DIR. KEEP=1 keeps the work folder.
set -euo pipefail
BUILD=$1
SRC=$2
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
CFG=$SRC/experiments/configs/integration.toml
source "$SRC/tests/process_lib.sh"
require_binaries "$SERVER" "$CLIENT"
make_work allowlist-reload
D=$WORK
DEADLINE=300

"$SERVER" keygen --out "$D/keys" > /dev/null
for c in c0 c1 c2 c3; do "$CLIENT" keygen --out "$D/keys/$c" > /dev/null; done
pubkey() { sed -n 's/^public-key = "\(.*\)"$/\1/p' "$D/keys/$1/client.pub"; }
allow() { for c in "$@"; do cat "$D/keys/$c/client.pub"; done > "$D/allow.tmp" && mv "$D/allow.tmp" "$D/allow"; }
allow c0 c1 c2

"$SERVER" -c "$CFG" -o "$D/run" --key "$D/keys/server.key" --allow "$D/allow" \
  --set run.rounds=3 --set round.deadline_s=$DEADLINE --set server.min_clients=3 \
  --http 127.0.0.1:0 > "$D/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "the server's endpoint file" 60 test -s "$D/run/endpoint"
EP=$(cat "$D/run/endpoint")
start_client() { # NAME
  "$CLIENT" --server "$EP" --server-key "$D/keys/server.pub" --key "$D/keys/$1/client.key" \
    --name "$1" --partition "${1#c}" --of 100 --threads 1 --heartbeat-s 1 --backoff-max-s 2 \
    >> "$D/$1.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
start_client c0
start_client c1
start_client c2
C2_PID=$LAST_PID

wait_for "c2 to start training round 0" 120 log_has "$D/c2.log" "round 0 task"
kill -STOP "$C2_PID"
# c0 and c1 report first, so the round is left waiting for c2 alone.
wait_for "c0 and c1 to send their round-0 updates" 120 \
  bash -c "grep -q 'round 0 task .*sent update' '$D/c0.log' && grep -q 'round 0 task .*sent update' '$D/c1.log'"
allow c0 c1 c3
kill -HUP "$SERVER_PID"
SIGHUP_AT=$SECONDS
wait_for "the reload line" 30 log_has "$D/server.log" "reloaded (SIGHUP): 1 keys added, 1 removed: $(pubkey c2)"
[ "$(grep -c "reloaded (SIGHUP)" "$D/server.log")" = 1 ] || fail "not one reload line per SIGHUP"
wait_for "round 0 to close" 60 test -s "$D/run/metrics.jsonl"
echo "round 0 closed $((SECONDS - SIGHUP_AT)) s after SIGHUP"
log_has "$D/server.log" "of client $(pubkey c2) dropped: client key revoked" ||
  fail "the server did not log dropping c2's task"
ok "SIGHUP: one reload line (1 added, 1 removed); the removed client's task was dropped at once"

kill -CONT "$C2_PID"
wait_exit "$C2_PID" 60
[ "$RC" = 3 ] || fail "c2 exited with '$RC', expected 3 (its key is no longer allowed)"
log_has "$D/c2.log" "client key revoked" || fail "c2 was not told that its key was revoked"
log_has "$D/c2.log" "this client's key is not on its allowlist" || fail "c2's reconnect was not refused"
log_has "$D/server.log" "client key not allowlisted" || fail "ZAP did not refuse c2's reconnect"
# The operator sees the refusal on /metrics too.
refused=$(/usr/bin/python3 -c 'import sys, urllib.request
t = urllib.request.urlopen("http://" + open(sys.argv[1]).read().strip() + "/metrics", timeout=30).read().decode()
print(next(int(float(l.split()[1])) for l in t.splitlines() if l.startswith("sfn_refused_handshakes_total ")))' \
  "$D/run/http_endpoint") || fail "no sfn_refused_handshakes_total on /metrics"
[ "$refused" -ge 1 ] || fail "sfn_refused_handshakes_total is $refused after c2's refused reconnect"
ok "the removed client was told (Bye), its reconnect was refused by ZAP ($refused on /metrics), and it exited 3"

# A file that does not parse keeps the list in force.
echo "this is not a key" > "$D/allow.tmp" && mv "$D/allow.tmp" "$D/allow"
kill -HUP "$SERVER_PID"
wait_for "the refused reload" 30 log_has "$D/server.log" "allowlist '$D/allow' not reloaded, the previous list stays in force"
start_client c3
wait_exit "$SERVER_PID" 400
[ "$RC" = 0 ] || fail "the server exited with '$RC'"
ok "an allowlist that does not parse was refused, naming the file; the list in force stayed"

py "rounds around the reload" "$D/run/metrics.jsonl" << EOF
check([r["round"] for r in rows] == [0, 1, 2], f"rounds {[r['round'] for r in rows]}")
r0 = rows[0]
status = {t["client"]: t["status"] for t in r0["tasks"]}
check(r0["outcome"] == "completed" and r0["accepted"] == 2, f"round 0: {r0['outcome']}, {r0['accepted']} accepted")
check(status.get("c2") == "dropped" and r0["dropped"] == 1, f"round 0 tasks {status}, dropped {r0['dropped']}")
check(r0["wall_train_s"] < $DEADLINE / 3, f"round 0 trained {r0['wall_train_s']:.1f} s: waited for c2")
for r in rows[1:]:
    names = sorted(t["client"] for t in r["tasks"] if t["status"] == "accepted")
    check(r["outcome"] == "completed" and names == ["c0", "c1", "c3"], f"round {r['round']}: {r['outcome']}, accepted {names}")
    check(all(t["client"] != "c2" for t in r["tasks"]), f"round {r['round']}: c2 got a task")
EOF
ok "round 0 completed with c0 and c1; rounds 1 and 2 with c0, c1 and c3; c2 never selected again"
echo "$PASSED passed, 0 failed"

#!/usr/bin/env bash
# Edge clients that train on their own data (issue 10), with real processes over tcp
# loopback (ephemeral ports, CURVE on). Every client gets only --server/--server-key/--key/
# --name/--data/--threads: the SuperNet, normalisation and seeds come from the server's Welcome.
# Each client's data is an IDX folder of its own disjoint 300 Fashion-MNIST training samples
# (tests/integration/write_idx_subset.py).
#
# federation (items 1, 2, 4)
#   1. A: sfn-server + 3 clients complete 2 rounds, 3 accepted updates each, every task
#      trained on the client's 300 own samples;
#   4. after the server's last round it says Bye(finished), and every client exits 0 (the
#      server too);
#   2. B: the same federation plus a client whose images are 32x32 (the fmnist SuperNet
#      takes 28x28). It is refused with the reason in its log and the server's (Reject
#      DataMismatch) and exits 3, before round 0 can start (min_clients is 3 and it
#      registers alongside only 2 good clients). B's rounds equal A's: per round the same
#      outcome and counts, the same clients with the same statuses, and the same SubNets
#      handed out with the same aggregation weights. (Bit-identical SuperNets are not
#      expected: aggregation order depends on arrival order.)
# allowlist (item 3)
#   A client whose key is not on the server's allowlist learns so from the CURVE handshake
#   (ZeroMQ socket monitor) and exits 3 within 10 s of starting to register, saying why;
#   an allowlisted client of the same server meanwhile completes the server's round.
#
# Usage: own_data.sh BUILD_DIR SOURCE_DIR [federation|allowlist|all]
# KEEP=1 keeps the work folder (logs, run folders, data) for inspection.
set -euo pipefail
BUILD=$1
SRC=$2
PART=${3:-all}
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
CFG=$SRC/experiments/configs/integration.toml
WRITE_IDX=$SRC/tests/integration/write_idx_subset.py
source "$SRC/tests/process_lib.sh"
require_binaries "$SERVER" "$CLIENT"
make_work own-data
now() { date +%s.%N; }
# log_time FILE TEXT: when the first line of FILE holding TEXT was logged (seconds since the
# epoch, from the line's leading "YYYY-MM-DD HH:MM:SS.mmm" in local time).
log_time() { date -d "$(grep -F -m1 -- "$2" "$1" | cut -c1-23)" +%s.%N; }
# secs_between T0 T1: T1 - T0 with one decimal.
secs_between() { awk -v t0="$1" -v t1="$2" 'BEGIN { printf "%.1f\n", t1 - t0 }'; }
# at_most X LIMIT: X <= LIMIT (decimals).
at_most() { awk -v x="$1" -v limit="$2" 'BEGIN { exit !(x <= limit) }'; }

# --- data: disjoint slices of Fashion-MNIST's training split; "big" is padded to 32x32 ---
SAMPLES=300
write_data() { # write_data NAME START [ARGS...]
  local name=$1 start=$2
  shift 2
  /usr/bin/python3 "$WRITE_IDX" "$WORK/data/$name" "$start" "$SAMPLES" "$@" ||
    fail "could not write $name's data"
}
write_data c0 0
write_data c1 $((SAMPLES)) --gzip # both layouts the dataset ships in
write_data c2 $((2 * SAMPLES))
write_data big $((3 * SAMPLES)) --size 32
write_data c3 $((4 * SAMPLES))
write_data stranger $((5 * SAMPLES))

# --- keys: server; c0..c3 allowlisted where a part says so, "big" too; "stranger" never ---
"$SERVER" keygen --out "$WORK/keys" > /dev/null
for c in c0 c1 c2 c3 big stranger; do "$CLIENT" keygen --out "$WORK/keys/$c" > /dev/null; done
allow_file() { # allow_file NAME CLIENT...: the allowlist of those clients' keys
  local out=$WORK/keys/allow-$1
  shift
  for c in "$@"; do cat "$WORK/keys/$c/client.pub"; done > "$out"
  echo "$out"
}

# start_server DIR ALLOWLIST ARGS...: sfn-server writing DIR/run, logging to DIR/server.log.
start_server() {
  local dir=$1 allow=$2
  shift 2
  mkdir -p "$dir"
  "$SERVER" -c "$CFG" -o "$dir/run" --key "$WORK/keys/server.key" --allow "$allow" \
    "$@" >> "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}
endpoint_of() {
  wait_for "the server's endpoint file" 120 test -s "$1/run/endpoint"
  cat "$1/run/endpoint"
}
# start_client DIR NAME ENDPOINT: sfn-client with key NAME on NAME's own data, nothing else.
start_client() {
  local dir=$1 name=$2 ep=$3
  "$CLIENT" --server "$ep" --server-key "$WORK/keys/server.pub" --key "$WORK/keys/$name/client.key" \
    --name "$name" --data "$WORK/data/$name" --threads 1 >> "$dir/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  CLIENT_PID[$name]=$LAST_PID
}
declare -A CLIENT_PID

# client_exits WHAT NAME CODE SECS: NAME's process exits with CODE within SECS.
client_exits() {
  wait_exit "${CLIENT_PID[$2]}" "$4"
  [ "$RC" = "$3" ] || fail "$1: client $2 exited with '$RC', expected $3"
}

# A 2-round federation of c0, c1, c2 in DIR (plus "big" if WITH_BIG=1); all checks that do
# not compare runs. Leaves DIR/run/metrics.jsonl.
federation_run() {
  local dir=$1 what=$2
  local names=(c0 c1 c2)
  local allowed=(c0 c1 c2)
  [ "${WITH_BIG:-0}" = 1 ] && allowed+=(big)
  start_server "$dir" "$(allow_file "$what" "${allowed[@]}")" --set run.rounds=2 \
    --set server.min_clients=3 --set round.clients_per_round=3 --set round.quorum=3 \
    --set round.deadline_s=240 --set train.epochs=1 --set train.batch_size=64
  local ep
  ep=$(endpoint_of "$dir")
  start_client "$dir" c0 "$ep"
  start_client "$dir" c1 "$ep"
  if [ "${WITH_BIG:-0}" = 1 ]; then
    # Refused while only two good clients are registered: round 0 cannot start before c2
    # comes, so had "big" been admitted it would be one of round 0's three clients.
    start_client "$dir" big "$ep"
    wait_for "$what: big to start registering" 180 log_has "$dir/big.log" "registering with"
    client_exits "$what" big 3 30
    local took
    took=$(secs_between "$(log_time "$dir/big.log" "registering with")" "$(now)")
    at_most "$took" 10 || fail "$what: big took ${took}s from registering to exiting"
    echo "  big: refused, exit 3, ${took}s after it started registering"
  fi
  start_client "$dir" c2 "$ep"

  wait_exit "$SERVER_PID" 600
  [ "$RC" = 0 ] || fail "$what: the server exited with '$RC'"
  local c
  for c in "${names[@]}"; do
    client_exits "$what" "$c" 0 120
    log_has "$dir/$c.log" "own data $WORK/data/$c: $SAMPLES samples of 1x28x28, labels 0..9" ||
      fail "$what: $c did not load its own data"
    log_has "$dir/$c.log" "SuperNet 'fmnist' (1x28x28, 10 classes), training on $SAMPLES samples" ||
      fail "$what: $c did not take the run's settings from the Welcome"
    [ "$(grep -c "task [0-9]*: sent update ($SAMPLES samples," "$dir/$c.log")" = 2 ] ||
      fail "$what: $c did not send an update of its $SAMPLES samples in each round"
    log_has "$dir/$c.log" "server said Bye (finished)" || fail "$what: $c got no Bye(finished)"
    if log_has "$dir/$c.log" "shard mode"; then fail "$what: $c ran in shard mode"; fi
  done
  py "$what: rounds" "$dir/run/metrics.jsonl" << EOF
check([r["round"] for r in rows] == [0, 1], f"rounds {[r['round'] for r in rows]}")
for r in rows:
    check(r["outcome"] == "completed" and r["accepted"] == 3,
          f"round {r['round']}: {r['outcome']}, {r['accepted']} accepted")
    check(r["available"] == 3, f"round {r['round']}: {r['available']} clients available")
    names = sorted(t["client"] for t in r["tasks"])
    check(names == ["c0", "c1", "c2"], f"round {r['round']}: tasks for {names}")
    check(all(t["status"] == "accepted" for t in r["tasks"]), f"round {r['round']}: tasks {r['tasks']}")
EOF
}

# ---------------------------------------------------------------------------------------
part_federation() {
  local A=$WORK/fed-a B=$WORK/fed-b
  federation_run "$A" "A"
  ok "1/4 - 3 clients on their own data (flags: server, keys, name, data, threads): 2 rounds of 3 accepted updates; Bye(finished), every client exited 0"

  WITH_BIG=1 federation_run "$B" "B"
  log_has "$B/big.log" "own data $WORK/data/big: $SAMPLES samples of 1x32x32" ||
    fail "2: big did not load its data"
  grep -F "registration rejected by the server:" "$B/big.log" |
    grep -F "images are 1x32x32 but the run's SuperNet 'fmnist' takes 1x28x28" |
    grep -qF "(data_mismatch)" || fail "2: big's log lacks the server's reason"
  log_has "$B/big.log" "exiting with code 3" || fail "2: big did not log its exit code"
  if log_has "$B/big.log" "registered with server"; then fail "2: big was welcomed"; fi
  grep -F "client big (" "$B/server.log" |
    grep -qF "refused: images are 1x32x32 but the run's SuperNet 'fmnist' takes 1x28x28" ||
    fail "2: the server did not log why it refused big"
  # Everything a round records that does not depend on arrival order or timing.
  py "2: B's rounds differ from A's (run without big)" "$B/run/metrics.jsonl" << EOF
def summary(r):
    return {
        "round": r["round"], "outcome": r["outcome"],
        "counts": {k: r[k] for k in ("available", "selected", "accepted", "rejected", "dropped", "late", "duplicate")},
        "tasks": sorted((t["client"], t["status"]) for t in r["tasks"]),
        # Which client trains which SubNet depends on registration order; the SubNets and
        # their aggregation weights do not.
        "subnets": sorted((t["subnet"], round(t["weight"], 9)) for t in r["tasks"]),
    }
ref = [json.loads(l) for l in open("$A/run/metrics.jsonl") if l.strip()]
check(len(rows) == len(ref), f"{len(rows)} rounds, without big {len(ref)}")
for r, a in zip(rows, ref):
    check(summary(r) == summary(a), f"round {r['round']}:\n    with big    {summary(r)}\n    without big {summary(a)}")
EOF
  ok "2 - a client with 32x32 images was refused (DataMismatch, reason in both logs) and exited 3; the rounds equal those without it"
}

# ---------------------------------------------------------------------------------------
part_allowlist() {
  local D=$WORK/allow
  start_server "$D" "$(allow_file allow c3)" --set run.rounds=1 --set server.min_clients=1 \
    --set round.clients_per_round=1 --set round.quorum=1 --set round.deadline_s=240
  local ep
  ep=$(endpoint_of "$D")
  local t_start
  t_start=$(now)
  start_client "$D" stranger "$ep"
  start_client "$D" c3 "$ep"
  # Timed from the stranger's first Register (its log line), so that a slow process start
  # on a loaded machine does not count; its exit is timed as this shell sees it.
  wait_for "the stranger to start registering" 180 log_has "$D/stranger.log" "registering with"
  client_exits "3" stranger 3 60
  local t1
  t1=$(now)
  local took
  took=$(secs_between "$(log_time "$D/stranger.log" "registering with")" "$t1")
  echo "  stranger: exit 3, ${took}s after it started registering, $(secs_between "$t_start" "$t1")s after it was started"
  at_most "$took" 10 || fail "3: the stranger took ${took}s from registering to exiting"
  log_has "$D/stranger.log" "refused by the server: this client's key is not on its allowlist" ||
    fail "3: the stranger's log does not say why it was refused"
  if log_has "$D/stranger.log" "registered with server"; then fail "3: the stranger was welcomed"; fi
  log_has "$D/server.log" "client key not allowlisted" || fail "3: the ZAP handler did not log the refused key"

  wait_exit "$SERVER_PID" 300
  [ "$RC" = 0 ] || fail "3: the server exited with '$RC'"
  client_exits "3" c3 0 120
  py "3: the allowlisted client's round" "$D/run/metrics.jsonl" << 'EOF'
check(len(rows) == 1 and rows[0]["outcome"] == "completed" and rows[0]["accepted"] == 1, f"rounds {rows}")
check([t["client"] for t in rows[0]["tasks"]] == ["c3"], f"tasks {rows[0]['tasks']}")
EOF
  ok "3 - a client whose key is not allowlisted exited 3 within ${took}s of registering, saying why; an allowlisted one completed the round"
}

case $PART in
  federation) part_federation ;;
  allowlist) part_allowlist ;;
  all)
    part_federation
    part_allowlist
    ;;
  *) fail "unknown part '$PART' (federation | allowlist | all)" ;;
esac
echo "$PASSED passed, 0 failed"

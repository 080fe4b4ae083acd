#!/usr/bin/env bash
# deploy/sfn-client-start.sh, the entry of docker-compose's client replicas: N replicas take
# N distinct slots (key client-<i>, --partition i --of N), one more finds none and exits 2,
# and a slot whose client ended is taken again by the next replica. SFN_CLIENT_BIN points it
# at a recorder that writes its arguments and waits, so that slots stay held like a client.
# Usage: client_slots.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
START=$SRC/deploy/sfn-client-start.sh
source "$SRC/tests/process_lib.sh"
make_work client-slots
mkdir -p "$WORK/slots"
cat > "$WORK/fake-client" <<'EOF'
#!/bin/sh
# Records this replica's sfn-client arguments (one file per replica), then waits.
echo "$*" > "$ARGS_DIR/$$.args"
exec sleep 300
EOF
chmod +x "$WORK/fake-client"
export SFN_CLIENT_BIN=$WORK/fake-client ARGS_DIR=$WORK
start_replica() {
  "$START" /keys "$WORK/slots" 3 --server=tcp://server:5555 --threads=1 \
    > "$WORK/replica$1.log" 2>&1 &
  REPLICA=$!
  PIDS+=("$REPLICA")
}
R=()
for r in 0 1 2; do
  start_replica "$r"
  R+=("$REPLICA")
  wait_for "replica $r's client" 10 test -s "$WORK/$REPLICA.args"
done
for i in 0 1 2; do
  want="--key /keys/client-$i/client.key --server-key /keys/server.pub --name client-$i"
  want+=" --partition $i --of 3 --server=tcp://server:5555 --threads=1"
  n=$(grep -lxF -- "$want" "$WORK"/*.args | wc -l)
  [ "$n" = 1 ] || fail "slot $i taken by $n replicas, expected 1"
done
ok "3 replicas took slots 0, 1, 2: their own key, name and shard of 3, options passed on"

start_replica 3
wait_exit "$REPLICA" 10
[ "$RC" = 2 ] || fail "a 4th replica of 3: exit $RC, expected 2"
log_has "$WORK/replica3.log" "all 3 client slots" || fail "no 'all 3 client slots' message"
ok "a 4th replica finds no free slot and exits 2"

# The client of slot 1 ends (its container stops): the lock goes with the process.
slot1=$(grep -l -- "--name client-1 " "$WORK"/*.args)
kill "${R[1]}"
wait_exit "${R[1]}" 10
[ "$RC" != timeout ] || fail "replica 1 did not end"
rm "$slot1"
start_replica 4
wait_for "replica 4's client" 10 test -s "$WORK/$REPLICA.args"
log_has "$WORK/$REPLICA.args" "--name client-1 --partition 1 --of 3" ||
  fail "replica 4 did not take the freed slot 1: $(cat "$WORK/$REPLICA.args")"
ok "a freed slot is taken by the next replica"
echo "$PASSED passed, 0 failed"

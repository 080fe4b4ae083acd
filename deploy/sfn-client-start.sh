#!/bin/sh
# Starts sfn-client as one of N interchangeable replicas (docker compose --scale): takes the
# first free slot i in [0, N) and runs client i with key KEY_DIR/client-<i>/client.key (as
# sfn-keys-init.sh writes them), the server key KEY_DIR/server.pub, and shard i of N.
#   sfn-client-start.sh KEY_DIR SLOT_DIR N [sfn-client options...]
# A slot is the lock SLOT_DIR/<i>.lock (flock), held by the client process itself: a stopped
# or crashed container frees its slot with no clean-up, and two replicas never share a key.
# SLOT_DIR must be shared by the replicas (a volume on one host). Exit 2 when all slots are
# taken. SFN_CLIENT_BIN overrides the binary (default: sfn-client on PATH).
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 KEY_DIR SLOT_DIR N [sfn-client options...]" >&2
  exit 2
fi
keys=$1
slots=$2
n=$3
shift 3
case $n in
  '' | *[!0-9]*)
    echo "$0: N must be a positive number, not '$n'" >&2
    exit 2
    ;;
esac
i=0
while [ "$i" -lt "$n" ]; do
  # fd 9 stays open across exec: the lock lives as long as the client.
  exec 9> "$slots/$i.lock"
  if flock -n 9; then
    exec "${SFN_CLIENT_BIN:-sfn-client}" --key "$keys/client-$i/client.key" \
      --server-key "$keys/server.pub" --name "client-$i" --partition "$i" --of "$n" "$@"
  fi
  i=$((i + 1))
done
echo "$0: all $n client slots in $slots are taken: run at most $n clients (SFN_CLIENTS)" >&2
exit 2

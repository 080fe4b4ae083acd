#!/bin/sh
# Creates the CURVE keys of a federation in KEY_DIR, once (existing keys are kept):
#   KEY_DIR/server.key, server.pub         the server's pair (secret mode 0600)
#   KEY_DIR/client-<i>/client.key, .pub    one pair per client, i = 0 .. N-1
#   KEY_DIR/allow                          the allowlist: every client public key
#   sfn-keys-init.sh KEY_DIR N
# Used by docker-compose.yml; by hand it is the same two keygen commands plus a cat.
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 KEY_DIR N" >&2
  exit 2
fi
dir=$1
n=$2
umask 077
mkdir -p "$dir"
[ -f "$dir/server.key" ] || sfn-server keygen --out "$dir" > /dev/null
i=0
: > "$dir/allow.tmp"
while [ "$i" -lt "$n" ]; do
  [ -f "$dir/client-$i/client.key" ] || sfn-client keygen --out "$dir/client-$i" > /dev/null
  cat "$dir/client-$i/client.pub" >> "$dir/allow.tmp"
  i=$((i + 1))
done
mv "$dir/allow.tmp" "$dir/allow"
chmod 0644 "$dir/server.pub" "$dir/allow"
echo "keys in $dir: server + $n clients; allowlist $dir/allow"

#!/usr/bin/env bash
# libsfn-client as an app developer meets it (issue 12): `cmake --install` of the build into a
# temporary prefix, then
#   1. the layout: the four binaries and the scripts in PREFIX/bin, config files in
#      PREFIX/etc/sfn, systemd units whose paths point into PREFIX (and pass
#      systemd-analyze verify), tools' configs and presets, docs, exactly three public headers;
#   2. the public headers pull in no LibTorch, ZeroMQ, spdlog, fmt or toml++ header, the
#      library exports only the API (nm -D) and its SONAME carries the version;
#   3. consumers built with find_package(sfn) and with pkg-config run `check` (versions agree,
#      errors cross the library boundary as sfn::ClientError of the right kind);
#   4. the find_package consumer trains on its own generated samples against a real
#      sfn-server of the same install (CURVE keys) for one round, and finishes;
#   5. stop() from another thread once registered ends run() as kStopped; the server hears Bye.
#
# Usage: install_consumer.sh BUILD_DIR SOURCE_DIR. KEEP=1 keeps the work folder.
set -euo pipefail
BUILD=$1
SRC=$2
source "$SRC/tests/process_lib.sh"
make_work package-install
PREFIX=$WORK/prefix

cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log" 2>&1 ||
  fail "cmake --install into $PREFIX failed (are all four binaries and sfn_client_shared built?)"

# --- 1. layout ---
for f in bin/sfn-server bin/sfn-client bin/sfn-sim bin/sfn-search bin/sfn-server-start.sh \
  bin/sfn-client-start.sh bin/sfn-keys-init.sh; do
  [ -x "$PREFIX/$f" ] || fail "1: $f is not installed as an executable"
done
for f in etc/sfn/sfn-server.toml etc/sfn/sfn-client.env \
  lib/systemd/system/sfn-server.service "lib/systemd/system/sfn-client@.service" \
  share/sfn/configs/fmnist-default.toml share/sfn/configs/devices/mixed.toml \
  share/sfn/configs/devices/traces/phone-low.csv share/sfn/configs/targets/fmnist-devices.toml \
  share/sfn/presets/fmnist.toml share/doc/sfn-server/LICENSE share/doc/sfn-client/README.md \
  share/doc/sfn-tools/LICENSE share/doc/sfn-server/deploy/README.md; do
  [ -f "$PREFIX/$f" ] || fail "1: $f is not installed"
done
[ ! -e "$PREFIX/share/sfn/configs/integration.toml" ] || fail "1: the test-only config is installed"
cmp -s "$SRC/deploy/k8s/base/sfn-server.toml" "$PREFIX/etc/sfn/sfn-server.toml" ||
  fail "1: etc/sfn/sfn-server.toml is not the server's one config file"
headers=$(cd "$PREFIX/include" && find . -type f | sort | tr '\n' ' ')
[ "$headers" = "./sfn/data/sample_source.h ./sfn/sfn_client.h ./sfn/sfn_client_version.h " ] ||
  fail "1: public headers are '$headers'"
UNIT=$PREFIX/lib/systemd/system/sfn-server.service
log_has "$UNIT" "ExecStart=$PREFIX/bin/sfn-server-start.sh " || fail "1: server unit's ExecStart"
log_has "$UNIT" "Environment=SFN_SERVER_BIN=$PREFIX/bin/sfn-server" || fail "1: SFN_SERVER_BIN"
log_has "$UNIT" "--config $PREFIX/etc/sfn/sfn-server.toml" || fail "1: server unit's --config"
log_has "$PREFIX/lib/systemd/system/sfn-client@.service" "ExecStart=$PREFIX/bin/sfn-client " ||
  fail "1: client unit's ExecStart"
if grep -hE '(^|[ =])/usr/(local/)?bin/' "$PREFIX"/lib/systemd/system/*; then
  fail "1: a unit still names a binary outside $PREFIX"
fi
# Units do not restart on the documented exit codes that retrying cannot fix (usage or
# configuration, authentication, data or integrity: sfn/core/exit_code.h), and keep /dev
# visible for the GPU option (PrivateDevices=yes would hide it).
codes=$(sed -n 's/^ *k\(Usage\|AuthRefused\|DataIntegrity\) = \([0-9]*\),.*/\2/p' \
  "$SRC/common/core/include/sfn/core/exit_code.h" | tr '\n' ' ')
[ "$codes" = "2 3 4 " ] || fail "1: exit_code.h's usage/auth/data codes are '$codes'"
for u in "$UNIT" "$PREFIX/lib/systemd/system/sfn-client@.service"; do
  log_has "$u" "RestartPreventExitStatus=${codes% }" || fail "1: $(basename "$u") restarts on $codes"
  if grep -q '^PrivateDevices=yes' "$u"; then fail "1: $(basename "$u") hides the GPU"; fi
done
# Every path the units name now exists, so systemd's own check runs with nothing missing; an
# instance of the template stands for it. Warnings count as failures.
cp "$PREFIX/lib/systemd/system/sfn-client@.service" "$WORK/sfn-client@edge0.service"
systemd-analyze verify "$UNIT" "$WORK/sfn-client@edge0.service" > "$WORK/verify.log" 2>&1 ||
  fail "1: systemd-analyze verify failed: $(cat "$WORK/verify.log")"
[ ! -s "$WORK/verify.log" ] || fail "1: systemd-analyze verify warns: $(cat "$WORK/verify.log")"
ok "1 - layout: binaries, scripts, /etc files, units rewritten for the prefix (systemd-analyze verify), configs, docs, 3 public headers"

# --- 2. a small surface ---
LIB=$(find "$PREFIX" -name 'libsfn-client.so' | head -1)
[ -n "$LIB" ] || fail "2: libsfn-client.so is not installed"
LIBDIR=$(dirname "$LIB")
VERSION=$(sed -n 's/^#define SFN_CLIENT_VERSION "\(.*\)"$/\1/p' "$PREFIX/include/sfn/sfn_client_version.h")
SOVERSION=$(sed -n 's/^#define SFN_CLIENT_SOVERSION "\(.*\)"$/\1/p' "$PREFIX/include/sfn/sfn_client_version.h")
readelf -d "$LIB" | grep -qF "Library soname: [libsfn-client.so.$SOVERSION]" ||
  fail "2: SONAME is not libsfn-client.so.$SOVERSION"
[ -f "$LIBDIR/libsfn-client.so.$VERSION" ] || fail "2: libsfn-client.so.$VERSION is missing"
printf '#include <sfn/sfn_client.h>\n' > "$WORK/only_header.cpp"
g++ -std=c++20 -fsyntax-only -H -I"$PREFIX/include" "$WORK/only_header.cpp" 2> "$WORK/headers.txt" ||
  fail "2: sfn/sfn_client.h does not compile on its own"
if grep -E 'zmq|spdlog|/fmt/|torch|ATen|c10|toml|boost|flatbuffers|nlohmann|CLI' "$WORK/headers.txt"; then
  fail "2: the public header pulls in a third-party header (above)"
fi
nm -D --defined-only "$LIB" | awk '{print $3}' | c++filt > "$WORK/exports.txt"
API='^(sfn::(SfnClient::|ClientError::|toString\(sfn::ClientOutcome\)|clientLibraryVersion\(\))|(typeinfo|typeinfo name|vtable) for sfn::ClientError$)'
if grep -vE "$API" "$WORK/exports.txt"; then
  fail "2: libsfn-client exports symbols beyond its API (above)"
fi
grep -qF "sfn::SfnClient::run()" "$WORK/exports.txt" || fail "2: SfnClient::run is not exported"
ok "2 - headers pull in no third-party header; $(wc -l < "$WORK/exports.txt") exported symbols, all API; SONAME libsfn-client.so.$SOVERSION"

# --- 3. consumers: find_package(sfn) and pkg-config ---
cmake -S "$SRC/tests/package/consumer" -B "$WORK/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX" > "$WORK/consumer-configure.log" 2>&1 ||
  fail "3: configuring the find_package(sfn) consumer failed"
found=$(sed -n 's/^sfn_DIR:PATH=//p' "$WORK/consumer/CMakeCache.txt")
[ "$(realpath "$found")" = "$(realpath "$LIBDIR/cmake/sfn")" ] ||
  fail "3: find_package(sfn) found '$found', not the temporary prefix's"
cmake --build "$WORK/consumer" > "$WORK/consumer-build.log" 2>&1 || fail "3: building the consumer failed"
"$WORK/consumer/sfn_consumer" check > "$WORK/check.log" 2>&1 || fail "3: find_package consumer: check"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
[ "$(pkg-config --modversion sfn)" = "$VERSION" ] || fail "3: pkg-config --modversion sfn"
[ "$(realpath "$(pkg-config --variable=prefix sfn)")" = "$(realpath "$PREFIX")" ] ||
  fail "3: sfn.pc's prefix is not the install prefix"
# shellcheck disable=SC2046 # word splitting of the flags is intended
g++ -std=c++20 -O1 "$SRC/tests/package/consumer/consumer.cpp" -o "$WORK/pc_consumer" \
  $(pkg-config --cflags --libs sfn) -Wl,-rpath,"$LIBDIR" 2> "$WORK/pc-build.log" ||
  fail "3: building with pkg-config failed"
"$WORK/pc_consumer" check > "$WORK/pc-check.log" 2>&1 || fail "3: pkg-config consumer: check"
ok "3 - consumers via find_package(sfn) and pkg-config build and pass check (version $VERSION)"

# --- 4. one round against a real server ---
"$PREFIX/bin/sfn-server" keygen --out "$WORK/keys" > /dev/null
"$PREFIX/bin/sfn-client" keygen --out "$WORK/keys/consumer" > /dev/null
cp "$WORK/keys/consumer/client.pub" "$WORK/keys/allow"
"$PREFIX/bin/sfn-server" -c "$SRC/experiments/configs/integration.toml" -o "$WORK/run" \
  --key "$WORK/keys/server.key" --allow "$WORK/keys/allow" --http off \
  --set run.rounds=1 --set server.min_clients=1 --set round.clients_per_round=1 \
  --set round.quorum=1 --set round.deadline_s=120 > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
# server_up RUN_DIR: the server listens (its endpoint file is written), or it has exited.
server_up() { test -s "$1/endpoint" || ! kill -0 "$SERVER_PID" 2> /dev/null; }
wait_for "the server's endpoint file" 120 server_up "$WORK/run"
[ -s "$WORK/run/endpoint" ] || fail "4: the server exited before it listened"
"$WORK/consumer/sfn_consumer" run "$(cat "$WORK/run/endpoint")" "$WORK/keys/server.pub" \
  "$WORK/keys/consumer/client.key" 128 > "$WORK/consumer.log" 2>&1 &
CONSUMER_PID=$!
PIDS+=("$CONSUMER_PID")
wait_exit "$CONSUMER_PID" 240
[ "$RC" = 0 ] || fail "4: the consumer exited with '$RC'"
wait_exit "$SERVER_PID" 60
[ "$RC" = 0 ] || fail "4: the server exited with '$RC'"
log_has "$WORK/consumer.log" "outcome finished, updates sent 1" || fail "4: consumer's outcome"
log_has "$WORK/consumer.log" "[info] " || fail "4: the log callback got no info line"
py "4: the round" "$WORK/run/metrics.jsonl" << 'PY'
check(len(rows) == 1, f"{len(rows)} rounds")
r = rows[0]
check(r["outcome"] == "completed" and r["accepted"] == 1, f"{r['outcome']}, {r['accepted']} accepted")
check([t["client"] for t in r["tasks"]] == ["consumer"], f"tasks {r['tasks']}")
PY
ok "4 - the find_package consumer trained one round against the installed sfn-server and finished"

# --- 5. stop() from another thread ---
# A server that never starts a round (it waits for 2 clients): registered, stopped, Bye.
"$PREFIX/bin/sfn-server" -c "$SRC/experiments/configs/integration.toml" -o "$WORK/run-stop" \
  --key "$WORK/keys/server.key" --allow "$WORK/keys/allow" --http off \
  --set server.min_clients=2 > "$WORK/server-stop.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "the second server's endpoint file" 120 server_up "$WORK/run-stop"
[ -s "$WORK/run-stop/endpoint" ] || fail "5: the second server exited before it listened"
"$WORK/consumer/sfn_consumer" stop "$(cat "$WORK/run-stop/endpoint")" "$WORK/keys/server.pub" \
  "$WORK/keys/consumer/client.key" 32 > "$WORK/consumer-stop.log" 2>&1 ||
  fail "5: stop() did not end run() as documented"
wait_for "the server to log the consumer's Bye" 30 grep -qE "client consumer \(.*\) left: client stopping" \
  "$WORK/server-stop.log"
ok "5 - stop() from another thread: run() returned kStopped, $(grep -o 'after [0-9]* ms' "$WORK/consumer-stop.log"); the server: 'left: client stopping'"
echo "passed $PASSED/5"

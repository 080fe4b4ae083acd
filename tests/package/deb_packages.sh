#!/usr/bin/env bash
# The three .deb packages (issue 12), made by `cpack -G DEB` from the build into a temporary
# folder (the build folder gets no packages), then
#   1. exactly sfn-server, sfn-client and sfn-tools, of the project's version, each holding
#      its binaries, unit, /etc/sfn conffile, docs (dpkg-deb -c, -f, conffiles);
#   2. each package's Depends (dpkg-deb -I) names the Debian package of every shared library
#      that an ELF file in it loads (readelf NEEDED -> ldd -> dpkg -S);
#   3. unpacked into a scratch root (dpkg-deb -x), every binary runs --version with the
#      package's version, the units are deploy/systemd's as written, the maintainer scripts
#      parse, and a pkg-config consumer of the root's libsfn-client runs `check` (sfn.pc is
#      relocatable).
#
# Usage: deb_packages.sh BUILD_DIR SOURCE_DIR. KEEP=1 keeps the work folder.
set -euo pipefail
BUILD=$1
SRC=$2
source "$SRC/tests/process_lib.sh"
make_work package-deb
OUT=$WORK/debs
ROOT=$WORK/root

cpack -G DEB -B "$OUT" --config "$BUILD/CPackConfig.cmake" > "$WORK/cpack.log" 2>&1 ||
  fail "cpack -G DEB failed (are all four binaries and sfn_client_shared built?)"
mapfile -t DEBS < <(find "$OUT" -maxdepth 1 -name '*.deb' | sort)
names=$(for d in "${DEBS[@]}"; do dpkg-deb -f "$d" Package; done | sort | tr '\n' ' ')
[ "$names" = "sfn-client sfn-server sfn-tools " ] || fail "1: packages are '$names'"
VERSION=$(sed -n 's/^project(sfn VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
deb_of() { find "$OUT" -maxdepth 1 -name "$1_*.deb" | head -1; }
# has PACKAGE PATH...: the package holds each path
has() {
  local deb
  deb=$(deb_of "$1")
  shift
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$WORK/list.txt"
  for p in "$@"; do grep -qxF "$p" "$WORK/list.txt" || fail "1: $(basename "$deb") lacks $p"; done
}
for d in "${DEBS[@]}"; do
  [ "$(dpkg-deb -f "$d" Version)" = "$VERSION" ] || fail "1: $(basename "$d") is not version $VERSION"
done
has sfn-server /usr/bin/sfn-server /usr/bin/sfn-server-start.sh /usr/bin/sfn-keys-init.sh \
  /etc/sfn/sfn-server.toml /usr/lib/systemd/system/sfn-server.service \
  /usr/share/doc/sfn-server/LICENSE /usr/share/doc/sfn-server/deploy/README.md
has sfn-client /usr/bin/sfn-client /usr/bin/sfn-client-start.sh /etc/sfn/sfn-client.env \
  "/usr/lib/systemd/system/sfn-client@.service" /usr/include/sfn/sfn_client.h \
  /usr/share/doc/sfn-client/LICENSE
grep -qE '^/usr/lib/.*libsfn-client\.so\.'"$VERSION"'$' "$WORK/list.txt" ||
  fail "1: sfn-client lacks libsfn-client.so.$VERSION"
grep -qE '^/usr/lib/.*cmake/sfn/sfnConfig\.cmake$' "$WORK/list.txt" || fail "1: no sfnConfig.cmake"
grep -qE '^/usr/lib/.*pkgconfig/sfn\.pc$' "$WORK/list.txt" || fail "1: no sfn.pc"
has sfn-tools /usr/bin/sfn-sim /usr/bin/sfn-search /usr/share/sfn/configs/fmnist-default.toml \
  /usr/share/sfn/presets/fmnist.toml /usr/share/doc/sfn-tools/LICENSE
for c in server:/etc/sfn/sfn-server.toml client:/etc/sfn/sfn-client.env; do
  dpkg-deb -I "$(deb_of "sfn-${c%%:*}")" conffiles | grep -qxF "${c#*:}" ||
    fail "1: sfn-${c%%:*} does not mark ${c#*:} as a conffile"
done
ok "1 - sfn-server, sfn-client, sfn-tools $VERSION with their binaries, units, conffiles, docs"

# --- 2. Depends cover every shared library loaded ---
mkdir -p "$ROOT"
for d in "${DEBS[@]}"; do dpkg-deb -x "$d" "$ROOT"; done
# The package of a library path (dpkg knows /lib and /usr/lib paths of merged-/usr systems apart).
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c4 "$1" | tail -c3)" = ELF ]; }
# Package names of a Depends/Provides field, without versions or alternatives' bars.
names_of() { tr '|' ',' <<< "$1" | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' | sed '/^$/d'; }
# An installed package and the virtual names it provides (libspdlog1.10 provides
# libspdlog1.10-fmt9, the name its shlibs file makes dependents use).
satisfied_by() {
  echo "$1"
  names_of "$(dpkg-query -W -f='${Provides}' "$1")"
}
owner() { dpkg -S "$1" 2> /dev/null || dpkg -S "/usr$1" 2> /dev/null || dpkg -S "$(realpath "$1")"; }
for d in "${DEBS[@]}"; do
  pkg=$(dpkg-deb -f "$d" Package)
  depends=$(dpkg-deb -f "$d" Depends)
  echo "  $pkg Depends: $depends"
  for f in $(dpkg-deb -c "$d" | awk '{print $6}' | sed 's|^\./||'); do
    is_elf "$ROOT/$f" || continue
    for lib in $(readelf -d "$ROOT/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      path=$(LD_LIBRARY_PATH=$(dirname "$ROOT/$f") ldd "$ROOT/$f" | awk -v l="$lib" '$1 == l {print $3} $1 ~ "/" l "$" {print $1}' | head -1)
      [ -n "$path" ] || fail "2: $f needs $lib, which does not resolve here"
      dep=$(owner "$path" | cut -d: -f1) || fail "2: no Debian package holds $path ($f needs it)"
      satisfied_by "$dep" | grep -qxF -f - <(names_of "$depends") ||
        fail "2: $pkg's Depends lack $dep ($f needs $lib)"
    done
  done
done
grep -q 'libtorch1.13' <<< "$(dpkg-deb -f "$(deb_of sfn-server)" Depends)" ||
  fail "2: sfn-server does not depend on libtorch1.13"
ok "2 - every package's Depends names the package of each shared library its ELF files load"

# --- 3. the unpacked packages work ---
for b in sfn-server sfn-client sfn-sim sfn-search; do
  "$ROOT/usr/bin/$b" --version > "$WORK/$b.version" 2>&1 || fail "3: $b --version failed"
  grep -qF "$VERSION" "$WORK/$b.version" || fail "3: $b --version does not say $VERSION"
done
# The /usr prefix keeps the units' paths as written (install_consumer.sh verifies them).
for u in sfn-server.service "sfn-client@.service"; do
  cmp -s "$SRC/deploy/systemd/$u" "$ROOT/usr/lib/systemd/system/$u" || fail "3: $u differs from deploy/systemd/"
done
for d in "${DEBS[@]}"; do
  mkdir -p "$WORK/control/$(basename "$d")"
  dpkg-deb -e "$d" "$WORK/control/$(basename "$d")"
done
for s in "$WORK"/control/*/post*; do sh -n "$s" || fail "3: $s does not parse"; done
PC=$(dirname "$(find "$ROOT" -name sfn.pc | head -1)")
# shellcheck disable=SC2046 # word splitting of the flags is intended
g++ -std=c++20 -O1 "$SRC/tests/package/consumer/consumer.cpp" -o "$WORK/pc_consumer" \
  $(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs sfn) 2> "$WORK/pc-build.log" ||
  fail "3: building a consumer with the package's sfn.pc failed"
LD_LIBRARY_PATH=$(dirname "$(find "$ROOT" -name 'libsfn-client.so' | head -1)") \
  "$WORK/pc_consumer" check > "$WORK/pc-check.log" 2>&1 || fail "3: the package's consumer: check"
ok "3 - unpacked: 4 binaries say $VERSION, units as in deploy/systemd, maintainer scripts parse, a pkg-config consumer runs"
echo "passed $PASSED/3"

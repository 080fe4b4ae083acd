#!/usr/bin/env bash
# Idempotent set-up: installs the Debian packages sfn needs, only if missing.
# apt-get update runs at most once per invocation, and only when something is missing.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config ninja-build
  libtorch-dev
  libzmq3-dev cppzmq-dev
  libflatbuffers-dev flatbuffers-compiler
  libssl-dev zlib1g-dev
  libboost-dev libboost-system-dev
  doctest-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  prometheus-cpp-dev
  dataset-fashion-mnist
  python3-torch
  gnuplot-nox
  chromium
  python3-yaml
  file                          # cpack's DEB generator (dpkg-shlibdeps) runs it
  clang libclang-rt-14-dev      # libFuzzer for scripts/fuzz.sh
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

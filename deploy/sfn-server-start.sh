#!/bin/sh
# Starts sfn-server on RUN_DIR, resuming from its newest checkpoint when it has one: the same
# command serves the first start and every restart (systemd, Docker, Kubernetes).
#   sfn-server-start.sh RUN_DIR [sfn-server options...]
# SFN_SERVER_BIN overrides the binary (default: sfn-server on PATH).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 RUN_DIR [sfn-server options...]" >&2
  exit 2
fi
run_dir=$1
shift
if [ -f "$run_dir/checkpoints/latest" ]; then
  set -- --resume "$run_dir" "$@"
fi
exec "${SFN_SERVER_BIN:-sfn-server}" --out "$run_dir" "$@"

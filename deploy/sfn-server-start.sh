#!/bin/sh
# Starts sfn-server on RUN_DIR, resuming from its newest checkpoint when it has one: the same
# command serves the first start and every restart (systemd, Docker, Kubernetes). A run
# that has finished is not started again.
#   sfn-server-start.sh RUN_DIR [sfn-server options...]
# SFN_SERVER_BIN overrides the binary (default: sfn-server on PATH).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 RUN_DIR [sfn-server options...]" >&2
  exit 2
fi
run_dir=$1
shift
# A finished run stays finished: a restart (Kubernetes restarts a StatefulSet's pod after
# every exit) must not train or evaluate it again.
if [ -f "$run_dir/summary.json" ]; then
  echo "$0: the run in $run_dir has finished ($run_dir/summary.json); not starting it again" >&2
  exit 0
fi
if [ -f "$run_dir/checkpoints/latest" ]; then
  set -- --resume "$run_dir" "$@"
fi
exec "${SFN_SERVER_BIN:-sfn-server}" --out "$run_dir" "$@"

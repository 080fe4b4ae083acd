#!/usr/bin/env bash
# The main job: set-up and build if needed, then SuperFedNAS on Fashion-MNIST with the
# default config (100 simulated clients, Dirichlet alpha 1). Extra arguments go to sfn-sim
# (e.g. --set run.rounds=5). The last line printed names the run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR=${SFN_BUILD_DIR:-build}
exec "$BUILD_DIR/simulator/sfn-sim" --config experiments/configs/fmnist-default.toml "$@"

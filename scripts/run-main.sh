#!/usr/bin/env bash
# The main job, the whole SuperFedNAS pipeline on Fashion-MNIST with the default config:
#   1. set-up and build if needed;
#   2. federated training of the SuperNet with 100 simulated clients (Dirichlet alpha 1);
#   3. a latency table of this machine (sfn-client profile), for the latency-bound target;
#   4. one-shot search for three device targets (experiments/configs/targets/fmnist-devices.toml)
#      and extraction of a signed TorchScript model per target, then verification;
#   5. a table: target, SubNet, MACs, params, latency, accuracy.
# Everything goes to one run folder, named in the last line printed.
# Extra arguments go to sfn-sim (e.g. --set run.rounds=5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR=${SFN_BUILD_DIR:-build}
RUN=${SFN_RUN_DIR:-runs/main-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN/targets"

echo "== 1/3 federated training (sfn-sim) -> $RUN"
"$BUILD_DIR/simulator/sfn-sim" --config experiments/configs/fmnist-default.toml -o "$RUN" "$@"

echo "== 2/3 latency table of this machine (sfn-client profile)"
# The targets file names its latency table relative to itself: profile into a copy's folder.
cp experiments/configs/targets/fmnist-devices.toml "$RUN/targets/"
"$BUILD_DIR/client/sfn-client" profile --out "$RUN/targets/laptop-lut.json" \
  --device-name "laptop ($(hostname))" --threads 1

echo "== 3/3 one-shot search and extraction (sfn-search)"
"$BUILD_DIR/searcher/sfn-search" keygen --out "$RUN/keys" > /dev/null
"$BUILD_DIR/searcher/sfn-search" --checkpoint "$RUN" --targets "$RUN/targets/fmnist-devices.toml" \
  --out "$RUN/models" --key "$RUN/keys/signing.key" \
  --population 24 --generations 6 --val-samples 2000 --latency-repeats 20
"$BUILD_DIR/searcher/sfn-search" verify "$RUN/models" --pubkey "$RUN/keys/signing.pub"

echo
echo "run folder: $RUN"

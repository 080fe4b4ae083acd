#!/usr/bin/env bash
# Trainable BN end to end (issue 14, item 1): BN statistics are re-estimated on training
# images before every evaluation, including the final test-set evaluation and the search.
#   1. sfn-sim, 2 rounds of tests/simulator/digest.toml with supernet.bn = "trainable",
#      exits 0 and its summary.json holds sane validation and test accuracies.
#   2. sfn-search on that run folder (small population) exits 0, writes results.csv with a
#      feasible winner and sane accuracies, and its exported model verifies.
# Usage: trainable_bn.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
SIM=$BUILD/simulator/sfn-sim
SEARCH=$BUILD/searcher/sfn-search
source "$SRC/tests/process_lib.sh"
require_binaries "$SIM" "$SEARCH"
make_work trainable-bn
RUN=$WORK/run

# --- 1: sfn-sim with trainable BN ---
(cd "$SRC/tests/simulator" && "$SIM" -c digest.toml -o "$RUN" -q \
  --set 'supernet.bn="trainable"' --set run.rounds=2) > "$WORK/sim.log" 2>&1 ||
  fail "sfn-sim with trainable BN exited with $?"
[ -f "$RUN/summary.json" ] || fail "sfn-sim wrote no summary.json"
python3 - "$RUN/summary.json" <<'PY' || fail "summary.json accuracies"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["rounds"] == 2, s["rounds"]
final = s["final"]
assert [f["name"] for f in final] == ["max", "min"], final
for f in final:
    for k in ("val_accuracy", "test_accuracy"):
        assert 0.0 <= f[k] <= 1.0, (f["name"], k, f[k])
# 4 classes: better than chance after 2 rounds on the learnable synthetic set
assert max(f["test_accuracy"] for f in final) > 0.3, final
PY
echo "ok 1 - sfn-sim, 2 rounds with trainable BN: $(python3 -c '
import json,sys; print(" ".join("%s test %.3f" % (f["name"], f["test_accuracy"])
for f in json.load(open(sys.argv[1]))["final"]))' "$RUN/summary.json")"

# --- 2: sfn-search on the trainable-BN SuperNet ---
cat > "$WORK/targets.toml" <<'TOML'
[[target]]
name = "any"
max_macs = 1e12
TOML
"$SEARCH" keygen -o "$WORK/keys" > /dev/null
"$SEARCH" --checkpoint "$RUN" --targets "$WORK/targets.toml" --out "$WORK/search" \
  --key "$WORK/keys/signing.key" --population 6 --generations 2 --val-samples 100 --bn-samples 200 --batch 100 \
  --latency-repeats 3 --plot-timeout-s 20 > "$WORK/search.log" 2>&1 ||
  fail "sfn-search on a trainable-BN SuperNet exited with $?"
CSV=$WORK/search/results.csv
[ -f "$CSV" ] || fail "sfn-search wrote no results.csv"
python3 - "$CSV" <<'PY' || fail "results.csv contents"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 1 and rows[0]["feasible"] == "true", rows
for k in ("val_accuracy_search", "val_accuracy", "test_accuracy"):
    v = float(rows[0][k])
    assert 0.0 <= v <= 1.0, (k, v)
PY
"$SEARCH" verify "$WORK/search/any" --pubkey "$WORK/keys/signing.pub" \
  > "$WORK/verify.log" 2>&1 || fail "the exported model does not verify"
echo "ok 2 - sfn-search on the trainable-BN SuperNet: $(sed -n 2p "$CSV" | cut -d, -f4,9-11)"
echo "2 passed, 0 failed"

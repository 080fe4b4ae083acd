#!/usr/bin/env bash
# ctest "experiments_smoke": runs the smoke set through experiments/run.sh from scratch, checks
# the CSVs, plots and report it must produce, then runs it again and checks that every run is
# recognised as complete (resume) and the report is regenerated identically.
#
# Usage: check_smoke.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
OUT=$BUILD/experiments-smoke
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export SFN_BUILD_DIR=$BUILD

fail() { echo "check_smoke: FAIL: $*" >&2; exit 1; }

bash "$SRC/experiments/run.sh" smoke --out "$OUT" --fresh 2>"$OUT.log" || { cat "$OUT.log" >&2; fail "run.sh failed"; }
R=$OUT/report
for f in report.md runs.csv final_accuracy.csv accuracy_summary.csv round_accuracy.csv cost.csv \
         cost_vs_targets.csv claims.csv accuracy_vs_macs_a1.png cost_vs_targets.png accuracy_per_round_a1.png; do
  [ -s "$R/$f" ] || fail "missing or empty $R/$f"
done
for p in "$R"/*.png; do
  [ "$(head -c 4 "$p" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "$p is not a PNG"
done

SEARCHED=0
[ -f "$OUT/search-missing" ] || SEARCHED=1
"$PY" - "$R" "$SEARCHED" <<'EOF' || fail "CSV contents"
import csv, sys
r, searched = sys.argv[1], sys.argv[2] == "1"
def rows(name):
    with open(f"{r}/{name}", newline="") as f:
        return list(csv.DictReader(f))
def expect(cond, what):
    if not cond:
        print(f"check_smoke: {what}", file=sys.stderr)
        sys.exit(1)

all_runs = rows("runs.csv")
runs = [x for x in all_runs if x["source"] == "fixed"]
# 1 SuperFedNAS + 4 iFedAvg (one per fixed target) + 3 ablations, 2 rounds each.
expect(len(runs) == 8, f"runs.csv has {len(runs)} fixed-target rows, expected 8")
# Phase 3: iFedAvg on each of the 2 searched winners.
winners = [x for x in all_runs if x["source"] == "search"]
expect(len(winners) == (2 if searched else 0), f"{len(winners)} iFedAvg runs of searched winners")
expect(all(x["method"] == "iFedAvg" and x["target"].startswith("win-") for x in winners), "winner runs")
expect(all(x["rounds"] == "2" for x in runs), "every run has 2 rounds")
expect(all(float(x["train_tmacs"]) > 0 and float(x["bytes_sent_mb"]) > 0 for x in runs), "costs counted")
ifa = {x["target"]: float(x["train_tmacs"]) for x in runs if x["method"] == "iFedAvg"}
expect(set(ifa) == {"MinNet", "Mid1", "Mid2", "MaxNet"}, f"iFedAvg targets {sorted(ifa)}")
# The fixed policy trains only its SubNet: the MaxNet run costs more than the MinNet run
# (same seed, so the same clients and sample counts).
expect(ifa["MinNet"] < ifa["Mid1"] < ifa["MaxNet"], f"iFedAvg costs ordered by size: {ifa}")

final = rows("final_accuracy.csv")
fixed = [x for x in final if x["source"] == "fixed"]
expect(len(fixed) == 4 + 4 + 3 * 4, f"final_accuracy.csv has {len(fixed)} fixed rows, expected 20")
expect(all(0.0 <= float(x["test_accuracy"]) <= 1.0 for x in fixed), "accuracies in [0, 1]")
macs = {}
for x in fixed:
    macs.setdefault(x["subnet_name"], set()).add(x["macs"])
expect(all(len(v) == 1 for v in macs.values()), f"one MACs value per target across methods: {macs}")
if searched:
    # 2 winners from the search + the same 2 SubNets trained alone by iFedAvg.
    expect(len([x for x in final if x["source"] == "search"]) == 4, "2 searched winners, 2 iFedAvg runs")
    expect(sum(1 for x in rows("claims.csv") if x["subject"].startswith("winner ")) == 2,
           "C1 compares the winners with their iFedAvg runs")

summ = rows("accuracy_summary.csv")
expect(len([x for x in summ if x["source"] == "fixed"]) == 20, "20 fixed summary rows")
rounds = rows("round_accuracy.csv")
expect(len(rounds) == 2 * 20, f"round_accuracy.csv has {len(rounds)} rows, expected 40 (2 rounds x 20)")

cvt = rows("cost_vs_targets.csv")
ref = [float(x["train_tmacs"]) for x in cvt if x["method"] == "SuperFedNAS"]
base = [float(x["train_tmacs"]) for x in cvt if x["method"] == "iFedAvg"]
expect(len(ref) == 20 and len(base) == 20, "20 points per method")
expect(max(ref) == min(ref), "SuperFedNAS flat")
expect(all(abs(base[i] - (i + 1) * base[0]) <= 1e-5 * base[i] for i in range(20)), "iFedAvg linear")
expect(any(x["method"] == "iFedAvg-measured-sum" for x in cvt), "measured sum point")

claims = rows("claims.csv")
names = {(x["claim"], x["subject"]) for x in claims}
expect(("C1 accuracy vs iFedAvg", "ALL") in names, "C1 verdict")
expect(sum(1 for x in claims if x["claim"].startswith("C2")) == (3 if searched else 2),
       "C2 verdicts (TMACs, GB, and with the measured search)")
if searched:
    with_search = sorted(int(x["n_targets"]) for x in cvt if x["method"] == "SuperFedNAS+search")
    expect(with_search == [2, 5], f"search cost measured at N = 2 and 5, got {with_search}")
expect(sum(1 for x in claims if x["claim"].startswith("C3")) == 3, "3 ablation verdicts")
expect(all(x["verdict"] in ("holds", "fails", "reproduced", "not reproduced", "inconclusive") for x in claims),
       "verdict words")
EOF

grep -q '^## Claims' "$R/report.md" || fail "report.md has no Claims section"
grep -q 'C2 cost vs number of targets' "$R/report.md" || fail "report.md lacks C2"
grep -q 'accuracy_vs_macs_a1.png' "$R/report.md" || fail "report.md does not show the plot"

# Second invocation: nothing is re-run, the report is regenerated from the same runs.
cp "$R/claims.csv" "$OUT.claims.csv"
bash "$SRC/experiments/run.sh" smoke --out "$OUT" 2>"$OUT.log2" || { cat "$OUT.log2" >&2; fail "second run.sh failed"; }
SKIPPED=$(grep -c 'complete, skipped' "$OUT.log2" || true)
EXPECTED=8
[ "$SEARCHED" = 1 ] && EXPECTED=10
[ "$SKIPPED" -ge "$EXPECTED" ] || fail "second invocation skipped $SKIPPED runs, expected $EXPECTED"
grep -q 'search .*: complete, skipped' "$OUT.log2" || [ "$SEARCHED" = 0 ] || fail "search was not skipped"
cmp -s "$R/claims.csv" "$OUT.claims.csv" || fail "report changed on regeneration"
echo "check_smoke: OK ($OUT)"

#!/usr/bin/env bash
# ctest "experiments_smoke": runs the smoke set through experiments/run.sh from scratch, checks
# the CSVs, plots and report it must produce, then runs it again and checks that every run is
# recognised as complete (resume) and the report is regenerated identically. Then the run
# order and per-target seeds (expset.py train-plan on small set files), and the archive that
# carries a set over sessions on fresh machines: the first run also archived into a temporary
# folder; with OUT deleted, a new invocation must restore every run and search from it without
# launching sfn-sim or sfn-search and give the same report. Last, a report over targets with
# unequal seeds (the smoke set with a second seed, seed 1 restored from the archive).
#
# Usage: check_smoke.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
OUT=$BUILD/experiments-smoke
ARCH=$BUILD/experiments-smoke-archive
TMP=$BUILD/experiments-smoke-tmp
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export SFN_BUILD_DIR=$BUILD
export PYTHONDONTWRITEBYTECODE=1
EXPSET=$SRC/experiments/tools/expset.py

fail() { echo "check_smoke: FAIL: $*" >&2; exit 1; }
# pycheck ARGS... <<'EOF': a Python check read from stdin with ARGS as sys.argv[1:] and
# smoke_checks.py (rows of a report's CSV files, expect()) importable.
pycheck() { PYTHONPATH="$SRC/experiments/tools${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$@"; }

rm -rf "$ARCH" "$TMP"
mkdir -p "$TMP"
# --archive needs sfn-search for a set that searches (checkpoints do not outlive a session).
ARCHIVE_ARGS=()
[ ! -x "$BUILD/searcher/sfn-search" ] || ARCHIVE_ARGS=(--archive "$ARCH")
bash "$SRC/experiments/run.sh" smoke --out "$OUT" --fresh "${ARCHIVE_ARGS[@]}" 2>"$OUT.log" ||
  { cat "$OUT.log" >&2; fail "run.sh failed"; }
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
pycheck "$R" "$SEARCHED" <<'EOF' || fail "CSV contents"
import sys
from smoke_checks import expect, report_rows
rows, searched = report_rows(sys.argv[1]), sys.argv[2] == "1"

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
# long_rounds (SuperFedNAS vs iFedAvg, both at 2 rounds here): the same numbers as C1's targets.
c1 = {x["subject"]: x for x in claims if x["claim"] == "C1 accuracy vs iFedAvg"}
long = {x["subject"]: x for x in claims if x["claim"] == "C1 at equal rounds, 2 rounds"}
expect("ALL" in long and all(long[k]["difference"] == c1[k]["difference"] for k in long if k != "ALL"),
       f"C1 at equal rounds: {sorted(long)}")
# variants = [RandomUniform]: C1 with RandomUniform in the reference's place, per target
# RandomUniform - iFedAvg (one seed here, so the difference of the two means).
accs = {(x["method"], x["subnet_name"]): float(x["test_mean"]) for x in summ
        if x["source"] == "fixed" and float(x["alpha"]) == 1.0}
var = {x["subject"]: x for x in claims if x["claim"] == "C1 with variant RandomUniform"}
expect("ALL" in var and len(var) == 5, f"C1 with variant RandomUniform: {sorted(var)}")
for subject, x in var.items():
    t = subject.split(" (")[0]
    if subject != "ALL":
        expect(abs(float(x["difference"]) - 100 * (accs[("RandomUniform", t)] - accs[("iFedAvg", t)])) < 0.02,
               f"C1 with variant RandomUniform, {t}: {x['difference']}")
expect(all(x["verdict"] in ("holds", "fails", "reproduced", "not reproduced", "inconclusive") for x in claims),
       "verdict words")
drift = rows("client_drift.csv")
sfn = {(x["subnet_name"], x["window"]) for x in drift if x["method"] == "SuperFedNAS"}
expect({(n, w) for n in ("MinNet", "MaxNet") for w in ("first quarter", "second half")} <= sfn,
       f"client drift of SuperFedNAS's MinNet and MaxNet clients in both windows, got {sorted(sfn)}")
expect(all(float(x["mean_change_rms"]) > 0 and int(x["updates"]) > 0 for x in drift), "client drift values")
expect(all(x["subnet_name"] != "other" for x in drift if x["method"] == "iFedAvg"),
       "iFedAvg's clients train only their target")
EOF

grep -q '^## Claims' "$R/report.md" || fail "report.md has no Claims section"
grep -q 'C2 cost vs number of targets' "$R/report.md" || fail "report.md lacks C2"
grep -q 'accuracy_vs_macs_a1.png' "$R/report.md" || fail "report.md does not show the plot"
grep -q '^| SuperFedNAS | 1 | 2 | 0.90 | ' "$R/report.md" || fail "report.md lacks the evidence table (alpha, beta, effective clients)"
grep -q '^| iFedAvg | 1 | 2 | none | 4.00 | 4.00 | ' "$R/report.md" || fail "evidence: iFedAvg's 4 equal clients per round"
grep -q '^### Client drift by SubNet' "$R/report.md" || fail "report.md lacks the client drift table"

# Second invocation: nothing is re-run, the report is regenerated from the same runs.
cp "$R/claims.csv" "$OUT.claims.csv"
bash "$SRC/experiments/run.sh" smoke --out "$OUT" "${ARCHIVE_ARGS[@]}" 2>"$OUT.log2" ||
  { cat "$OUT.log2" >&2; fail "second run.sh failed"; }
SKIPPED=$(grep -c 'complete, skipped' "$OUT.log2" || true)
EXPECTED=8
[ "$SEARCHED" = 1 ] && EXPECTED=10
[ "$SKIPPED" -ge "$EXPECTED" ] || fail "second invocation skipped $SKIPPED runs, expected $EXPECTED"
grep -q 'search .*: complete, skipped' "$OUT.log2" || [ "$SEARCHED" = 0 ] || fail "search was not skipped"
cmp -s "$R/claims.csv" "$OUT.claims.csv" || fail "report changed on regeneration"

# The run order and per-target seeds, on a set file that lists the ablation first: cell by
# cell (alpha 1 seed 1, alpha 100 seed 1, alpha 0.1 seed 1, then second and third seeds),
# SuperFedNAS then iFedAvg then the ablation within a cell; iFedAvg's later seeds train
# MinNet and MaxNet only.
SETS=$TMP/sets
mkdir -p "$SETS"
order_set() {  # $1: extra keys of the iFedAvg method, $2: extra keys of the RandomUniform method
  cat <<EOF
[set]
name = "order"
config = "$SRC/experiments/configs/fmnist-default.toml"
rounds = 2
[[target]]
name = "MinNet"
subnet = "min"
[[target]]
name = "Mid1"
subnet = "d=1-1-1-1;e=0.18-0.18-0.1-0.18-0.18-0.1-0.18-0.18-0.1-0.18-0.18-0.1"
[[target]]
name = "MaxNet"
subnet = "max"
[grid]
headline = [{ alpha = 1.0, seeds = [1, 2, 3] }, { alpha = 100.0, seeds = [1, 2] }, { alpha = 0.1, seeds = [1] }]
ablation = [{ alpha = 1.0, seeds = [1, 2] }]
[[method]]
name = "RandomUniform"
role = "supernet"
grid = "ablation"
$2
[[method]]
name = "iFedAvg"
role = "per-target"
grid = "headline"
$1
[[method]]
name = "SuperFedNAS"
role = "supernet"
grid = "headline"
search = true
EOF
}
order_set $'all_targets_seeds = 1\nextra_seed_targets = ["MinNet", "MaxNet"]' "" >"$SETS/order.toml"
"$PY" "$EXPSET" train-plan "$SETS/order.toml" "$TMP/order-out" >"$TMP/order.plan" || fail "train-plan of the order set"
cut -f2 "$TMP/order.plan" >"$TMP/order.txt"
cat >"$TMP/order.expected" <<'EOF'
SuperFedNAS/a1/s1
iFedAvg/a1/s1/MinNet
iFedAvg/a1/s1/Mid1
iFedAvg/a1/s1/MaxNet
RandomUniform/a1/s1
SuperFedNAS/a100/s1
iFedAvg/a100/s1/MinNet
iFedAvg/a100/s1/Mid1
iFedAvg/a100/s1/MaxNet
SuperFedNAS/a0.1/s1
iFedAvg/a0.1/s1/MinNet
iFedAvg/a0.1/s1/Mid1
iFedAvg/a0.1/s1/MaxNet
SuperFedNAS/a1/s2
iFedAvg/a1/s2/MinNet
iFedAvg/a1/s2/MaxNet
RandomUniform/a1/s2
SuperFedNAS/a100/s2
iFedAvg/a100/s2/MinNet
iFedAvg/a100/s2/MaxNet
SuperFedNAS/a1/s3
iFedAvg/a1/s3/MinNet
iFedAvg/a1/s3/MaxNet
EOF
diff "$TMP/order.expected" "$TMP/order.txt" >&2 || fail "train-plan order (expected <, got >)"
# Without the keys every seed trains every target: (3 + 2 + 1) seeds x 3 targets.
order_set "" "" >"$SETS/all.toml"
N=$("$PY" "$EXPSET" train-plan "$SETS/all.toml" "$TMP/order-out" | cut -f2 | grep -c '^iFedAvg/' || true)
[ "$N" = 18 ] || fail "without all_targets_seeds iFedAvg has $N runs, expected 18"
# Each misuse of the keys is refused with a message that names it.
bad() {  # $1: case, $2: iFedAvg keys, $3: RandomUniform keys, $4: what the error must say
  order_set "$2" "$3" >"$SETS/$1.toml"
  if "$PY" "$EXPSET" check "$SETS/$1.toml" "$TMP/order-out" >/dev/null 2>"$TMP/$1.err"; then
    fail "set with $1 keys was accepted"
  fi
  grep -qF -- "$4" "$TMP/$1.err" || { cat "$TMP/$1.err" >&2; fail "set with $1 keys: the error does not say '$4'"; }
}
bad negative 'all_targets_seeds = -1' '' 'all_targets_seeds: expected an integer >= 0'
bad string 'all_targets_seeds = "1"' '' 'all_targets_seeds: expected an integer >= 0'
# all_targets_seeds = 0: every seed trains extra_seed_targets only, (3 + 2 + 1) seeds x 2.
order_set $'all_targets_seeds = 0\nextra_seed_targets = ["MinNet", "MaxNet"]' "" >"$SETS/zero.toml"
N=$("$PY" "$EXPSET" train-plan "$SETS/zero.toml" "$TMP/order-out" | cut -f2 | grep -c '^iFedAvg/.*/M[ai][nx]Net$' || true)
M=$("$PY" "$EXPSET" train-plan "$SETS/zero.toml" "$TMP/order-out" | cut -f2 | grep -c '^iFedAvg/' || true)
[ "$N" = 12 ] && [ "$M" = 12 ] || fail "all_targets_seeds = 0: iFedAvg has $M runs ($N MinNet/MaxNet), expected 12"
# [report] keys that name methods are refused with a message that says what is expected.
bad_report() {  # $1: case, $2: [report] keys, $3: what the error must say
  { order_set "" ""; printf '[report]\n%s\n' "$2"; } >"$SETS/$1.toml"
  if "$PY" "$EXPSET" check "$SETS/$1.toml" "$TMP/order-out" >/dev/null 2>"$TMP/$1.err"; then
    fail "set with [report] $1 keys was accepted"
  fi
  grep -qF -- "$3" "$TMP/$1.err" || { cat "$TMP/$1.err" >&2; fail "[report] $1 keys: the error does not say '$3'"; }
}
# long_rounds must pair a SuperNet method with a per-target one; variants must be a list of
# SuperNet methods other than the reference.
bad_report long 'long_rounds = ["iFedAvg", "SuperFedNAS"]' 'long_rounds: expected [a supernet method, a per-target method]'
bad_report variant 'variants = ["iFedAvg"]' "variants: 'iFedAvg' is not a supernet method other than the reference"
bad_report variant_string 'variants = "RandomUniform"' 'variants: expected a list of method names'
bad unknown $'all_targets_seeds = 1\nextra_seed_targets = ["Mid9"]' '' "extra_seed_targets: 'Mid9' is not a [[target]] name"
bad duplicate $'all_targets_seeds = 1\nextra_seed_targets = ["MinNet", "MinNet"]' '' 'extra_seed_targets: duplicate'
bad alone 'extra_seed_targets = ["MinNet"]' '' 'extra_seed_targets needs all_targets_seeds'
bad supernet '' 'all_targets_seeds = 1' 'apply to role = "per-target" methods only'
# search = "GRID" searches only that grid's cells: SuperFedNAS's 6 runs + the cost search
# (its first headline run), then RandomUniform's 2; a grid with cells the method does not run
# is refused, and so is a name that is no grid.
searches() { "$PY" "$EXPSET" check "$1" "$TMP/order-out" | sed -n 's/.*, \([0-9]*\) searches$/\1/p'; }
order_set "" 'search = "ablation"' >"$SETS/searched.toml"
N=$(searches "$SETS/searched.toml")
[ "$N" = 9 ] || fail "RandomUniform with search = \"ablation\": $N searches planned, expected 9"
order_set "" "" | sed 's/^search = true$/search = "ablation"/' >"$SETS/searched.toml"
N=$(searches "$SETS/searched.toml")
[ "$N" = 3 ] || fail "SuperFedNAS with search = \"ablation\": $N searches planned, expected 2 + the cost search"
bad subset '' 'search = "headline"' "search: grid 'headline' has alpha 1 seed 3, which the method's grid 'ablation' does not run"
bad nogrid '' 'search = "winners"' "search: expected true, false or a [grid] name, got 'winners'"
# Budgets whose searches find the same SubNet share one iFedAvg run, named after the first.
{ order_set "" ""; printf '[search]\nmacs_fractions = [0.2, 0.5, 0.8]\nifedavg_winners_alphas = [1.0]\n'; } \
  >"$SETS/winners.toml"
WD=$TMP/order-out/search/SuperFedNAS/a1/s1
mkdir -p "$WD"
printf 'target,subnet,macs,params,val_accuracy,test_accuracy\n%s\n%s\n%s\n' \
  'b1,d=0-0-0-0;e=0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1,1,1,0.5,0.5' \
  'b2,d=1-0-0-0;e=0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1,2,2,0.6,0.6' \
  'b3,d=1-0-0-0;e=0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1,2,2,0.6,0.6' >"$WD/results.csv"
"$PY" "$EXPSET" winners-plan "$SETS/winners.toml" "$TMP/order-out" | cut -f2 >"$TMP/winners.txt"
printf 'iFedAvg/a1/s1/win-b1\niFedAvg/a1/s1/win-b2\n' |
  diff - "$TMP/winners.txt" >&2 || fail "winners-plan with a repeated winner (expected <, got >)"

if [ "$SEARCHED" = 0 ]; then
  echo "check_smoke: sfn-search not built: the archive checks need it and were not run" >&2
  echo "check_smoke: OK ($OUT, without the archive checks)"
  exit 0
fi

# A searched run is searched before the next training run starts: its checkpoint may not
# outlive the session.
line_of() { grep -n -- "$1" "$OUT.log" | head -n 1 | cut -d: -f1; }
S1=$(line_of '] search search/SuperFedNAS/a1/s1$')
S2=$(line_of '] search search-cost/SuperFedNAS/a1/s1$')
NEXT=$(line_of '\[2/8\] iFedAvg/a1/s1/MinNet$')
[ -n "$S1" ] && [ -n "$S2" ] && [ -n "$NEXT" ] && [ "$S1" -lt "$NEXT" ] && [ "$S2" -lt "$NEXT" ] ||
  fail "SuperFedNAS/a1/s1 was not searched right after its training (log lines $S1, $S2, next run $NEXT)"

# The archive holds small files only: no checkpoints, no exported models, nothing over 1 MB.
[ "$(find "$ARCH" -name summary.json | wc -l)" = "$EXPECTED" ] || fail "the archive lacks runs"
[ "$(find "$ARCH" -name results.csv | wc -l)" = 2 ] || fail "the archive lacks a search"
[ -z "$(find "$ARCH" -size +1024k)" ] || fail "the archive holds files over 1 MB: $(find "$ARCH" -size +1024k)"
[ -z "$(find "$ARCH" -name checkpoints -o -name '*.pt' -o -name sim.log -o -name search.log)" ] ||
  fail "the archive holds checkpoints, models or whole logs"
while read -r d; do
  [ -z "$(find "$d" -mindepth 1 -type d)" ] || fail "archived search $d holds folders (exported models?)"
  for f in results.json evaluated.csv wall_s.txt machine.json plan.txt search.log.tail; do
    [ -s "$d/$f" ] || fail "archived search lacks $d/$f"
  done
done < <(find "$ARCH" -name results.csv -printf '%h\n')
while read -r d; do
  for f in config.toml metrics.jsonl metrics.csv sim.log.tail machine.json plan.txt; do
    [ -s "$d/$f" ] || fail "archived run lacks $d/$f"
  done
  [ "$(wc -l <"$d/sim.log.tail")" -le 200 ] || fail "$d/sim.log.tail has more than 200 lines"
done < <(find "$ARCH/runs" -name summary.json -printf '%h\n')
[ -s "$ARCH/machine.json" ] || fail "the archive lacks machine.json"

# A fresh machine: OUT is gone, the archive is all there is. Stand-ins for sfn-sim and
# sfn-search record any launch and fail, so a run or search done again cannot go unnoticed.
cp -r "$R" "$TMP/report1"
rm -rf "$OUT"
FAKE=$TMP/fake-build
mkdir -p "$FAKE/simulator" "$FAKE/searcher"
for b in simulator/sfn-sim searcher/sfn-search; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/launched"\nexit 1\n' "$b" "$FAKE" >"$FAKE/$b"
  chmod +x "$FAKE/$b"
done
SFN_BUILD_DIR=$FAKE bash "$SRC/experiments/run.sh" smoke --out "$OUT" --archive "$ARCH" 2>"$OUT.log3" ||
  { cat "$OUT.log3" >&2; fail "run.sh from the archive failed"; }
[ ! -e "$FAKE/launched" ] || fail "restored runs were run again: $(cat "$FAKE/launched")"
RESTORED=$(grep -c 'restored .* from the archive' "$OUT.log3" || true)
[ "$RESTORED" = "$EXPECTED" ] || fail "restored $RESTORED runs from the archive, expected $EXPECTED"
grep -qF 'restored SuperFedNAS/a1/s1 with 2 search(es)' "$OUT.log3" || fail "searches not restored with their run"
SKIPPED=$(grep -c 'complete, skipped' "$OUT.log3" || true)
[ "$SKIPPED" -ge "$EXPECTED" ] || fail "after the restore $SKIPPED runs were skipped, expected $EXPECTED"
[ "$(grep -c 'search .*: complete, skipped' "$OUT.log3")" = 2 ] || fail "restored searches not skipped"
[ -z "$(find "$OUT" -name sim.log -o -name search.log -o -name checkpoints)" ] ||
  fail "a restored folder has a new log or checkpoint"
for f in "$TMP/report1"/*; do
  n=$(basename "$f")
  if [ "$n" = report.md ]; then  # it says when it was generated
    cmp -s <(grep -v '^Generated ' "$f") <(grep -v '^Generated ' "$R/$n") || fail "report.md differs after the restore"
  else
    cmp -s "$f" "$R/$n" || fail "report file $n differs after the restore"
  fi
done
# An archive made with other settings is refused, not mixed in.
sed 's|^rounds = 2|rounds = 3|' "$SRC/experiments/sets/smoke.toml" |
  sed "s|^config = .*|config = \"$SRC/experiments/configs/fmnist-default.toml\"|" >"$SETS/smoke3.toml"
if "$PY" "$EXPSET" restore "$SETS/smoke3.toml" "$TMP/stale-out" "$ARCH" 2>"$TMP/stale.err"; then
  fail "runs of 2 rounds were restored into a set of 3 rounds"
fi
grep -qF "'run.rounds=2', the set file now 'run.rounds=3'" "$TMP/stale.err" ||
  { cat "$TMP/stale.err" >&2; fail "the stale-archive error does not name the difference"; }

# The equal-compute claim on real runs: Sandwich stands in for a longer SuperFedNAS training.
# Its rows must compare the same accuracies as final_accuracy.csv, and its cost row must set
# Sandwich's one run against the sum of iFedAvg's four.
sed -e "s|^config = .*|config = \"$SRC/experiments/configs/fmnist-default.toml\"|" \
    -e '/^noise_pp = /a equal_compute = "Sandwich"' "$SRC/experiments/sets/smoke.toml" >"$SETS/eq.toml"
EQ=$TMP/eq-out
mkdir -p "$EQ"
ln -s "$OUT/runs" "$EQ/runs"
ln -s "$OUT/search" "$EQ/search"
"$PY" "$SRC/experiments/tools/report.py" "$SETS/eq.toml" "$EQ" >/dev/null 2>"$TMP/eq.err" ||
  { cat "$TMP/eq.err" >&2; fail "report.py with equal_compute failed"; }
pycheck "$EQ/report" <<'EOF' || fail "equal-compute claim"
import sys
from smoke_checks import expect, report_rows
rows = report_rows(sys.argv[1])
eq = [x for x in rows("claims.csv") if x["claim"] == "C1 at equal compute"]
acc = {(x["method"], x["subnet_name"]): 100 * float(x["test_accuracy"]) for x in rows("final_accuracy.csv")
       if x["source"] == "fixed"}
for t in ("MinNet", "Mid1", "Mid2", "MaxNet"):
    row = next((x for x in eq if x["subject"] == f"{t} (seeds 1)"), None)
    expect(row is not None, f"no equal-compute row for {t}")
    expect(abs(float(row["reference"]) - acc[("Sandwich", t)]) < 0.01, f"{t}: reference is not Sandwich's")
    expect(abs(float(row["other"]) - acc[("iFedAvg", t)]) < 0.01, f"{t}: other is not iFedAvg's")
    d = float(row["reference"]) - float(row["other"])
    expect(row["verdict"] == ("holds" if d >= -1.0 else "fails"), f"{t}: verdict {row['verdict']} for {d}")
cost = next((x for x in eq if x["subject"] == "client training TMACs (seed 1)"), None)
expect(cost is not None, "no equal-compute cost row")
runs = [x for x in rows("runs.csv") if x["source"] == "fixed"]
sw = sum(float(x["train_tmacs"]) for x in runs if x["method"] == "Sandwich")
fa = sum(float(x["train_tmacs"]) for x in runs if x["method"] == "iFedAvg")
expect(abs(float(cost["reference"]) - sw) <= 1e-3 * sw and abs(float(cost["other"]) - fa) <= 1e-3 * fa,
       f"cost row {cost['reference']} vs {cost['other']}, expected {sw} vs {fa}")
expect(cost["verdict"] == ("holds" if sw <= 1.05 * fa else "fails"), "cost verdict")
EOF
grep -qF '| C1 at equal compute | 1 | ALL |' "$EQ/report/report.md" || fail "report.md lacks the equal-compute verdict"

# Targets with fewer seeds, on real runs: the smoke set with a second seed in which iFedAvg
# trains MinNet only. Seed 1 comes from the archive; first --stop-after 0: nothing new starts.
sed -e "s|^config = .*|config = \"$SRC/experiments/configs/fmnist-default.toml\"|" \
    -e 's|^headline = .*|headline = [{ alpha = 1.0, seeds = [1, 2] }]|' \
    -e 's|^ifedavg_winners_alphas = .*|ifedavg_winners_alphas = []|' \
    -e '/^name = "iFedAvg"/a all_targets_seeds = 1\nextra_seed_targets = ["MinNet"]' \
    "$SRC/experiments/sets/smoke.toml" >"$SETS/seeds.toml"
OUT4=$TMP/seeds-out
bash "$SRC/experiments/run.sh" "$SETS/seeds.toml" --out "$OUT4" --archive "$ARCH" --stop-after 0 2>"$OUT.log4" ||
  { cat "$OUT.log4" >&2; fail "run.sh --stop-after 0 failed"; }
[ "$(grep -c 'not started (--stop-after' "$OUT.log4")" = 2 ] || fail "--stop-after 0 did not hold back the 2 new runs"
[ "$(grep -c 'restored .* from the archive' "$OUT.log4")" = 8 ] || fail "seed 1 was not restored for the seeds set"
[ -z "$(find "$OUT4" -name sim.log)" ] || fail "--stop-after 0 started a run"
grep -qF 'Incomplete:** 2 planned run' "$OUT4/report/report.md" || fail "the report does not name the 2 missing runs"
bash "$SRC/experiments/run.sh" "$SETS/seeds.toml" --out "$OUT4" --archive "$ARCH" 2>"$OUT.log5" ||
  { cat "$OUT.log5" >&2; fail "run.sh on the seeds set failed"; }
pycheck "$OUT4/report" <<'EOF' || fail "report over unequal seeds"
import statistics, sys
from smoke_checks import expect, report_rows
rows = report_rows(sys.argv[1])
summ = {(x["method"], x["subnet_name"]): x for x in rows("accuracy_summary.csv") if x["source"] == "fixed"}
expect(summ[("iFedAvg", "MinNet")]["seeds"] == "1 2", "iFedAvg MinNet over seeds 1 2")
expect(all(summ[("iFedAvg", t)]["n"] == "1" for t in ("Mid1", "Mid2", "MaxNet")), "iFedAvg Mid1, Mid2, MaxNet n=1")
expect(all(summ[("SuperFedNAS", t)]["n"] == "2" for t in ("MinNet", "Mid1", "Mid2", "MaxNet")), "SuperFedNAS n=2")
claims = {(x["claim"], x["subject"]): x for x in rows("claims.csv")}
expect(("C1 accuracy vs iFedAvg", "MinNet (seeds 1 2)") in claims, "C1 compares MinNet over seeds 1 2")
expect(("C1 accuracy vs iFedAvg", "Mid1 (seeds 1)") in claims, "C1 compares Mid1 over seed 1 only")
got = claims[("C1 accuracy vs iFedAvg", "ALL")]["seeds"]
expect(got == "MinNet: 1 2; Mid1: 1; Mid2: 1; MaxNet: 1", f"C1 verdict's seeds: {got}")
c3 = [x for k, x in claims.items() if k[0].startswith("C3")]
expect(len(c3) == 3 and all(x["seeds"] == "MinNet: 1; Mid1: 1; Mid2: 1; MaxNet: 1" for x in c3),
       "C3 compares the ablations' only seed")
# iFedAvg's cost of one target: each target's mean over its seeds, then the mean over the
# targets, so MinNet's second seed does not pull it towards the smallest SubNet.
runs = [x for x in rows("runs.csv") if x["method"] == "iFedAvg" and x["source"] == "fixed"]
expect(sorted(x["seed"] for x in runs if x["target"] == "MinNet") == ["1", "2"], "iFedAvg MinNet ran seeds 1 2")
per = {}
for x in runs:
    per.setdefault(x["target"], []).append(float(x["train_tmacs"]))
want = statistics.fmean(statistics.fmean(v) for v in per.values())
cvt = {(x["method"], x["n_targets"]): x for x in rows("cost_vs_targets.csv")}
got = float(cvt[("iFedAvg", "1")]["train_tmacs"])
expect(abs(got - want) <= 1e-5 * want, f"iFedAvg cost of 1 target {got}, expected {want}")
expect("over 1 seed(s)" in cvt[("iFedAvg-measured-sum", "4")]["basis"], "measured sum over the seed with every target")
EOF
grep -qF 'n = 2 (MinNet), 1 (Mid1, Mid2, MaxNet)' "$OUT4/report/report.md" || fail "report.md claims lack the seed counts"
grep -qF 'iFedAvg alpha 1 seed(s) 2' "$OUT4/report/report.md" || fail "the cost table does not leave out the partial seed"
grep -qF '(n=2)' "$OUT4/report/report.md" || fail "the accuracy table lacks n=2"

# readme_results.py: the generated section goes between the set's markers in a README, the
# text around them stays, a second paste changes nothing, and a README without the markers
# is refused (exit 2) and left as it was.
RR=$SRC/experiments/tools/readme_results.py
printf '# T\nbefore\n<!-- results:smoke begin -->\nold table\n<!-- results:smoke end -->\nafter\n' >"$TMP/README.md"
"$PY" "$RR" smoke "$TMP/README.md" "$OUT/report/results_section.md" >/dev/null || fail "readme_results.py failed"
grep -qxF 'old table' "$TMP/README.md" && fail "readme_results.py kept the old section"
grep -qxF before "$TMP/README.md" && grep -qxF after "$TMP/README.md" || fail "readme_results.py lost the text around the markers"
first=$(grep -m1 -v '^$' "$OUT/report/results_section.md")
[ "$(grep -A1 -xF '<!-- results:smoke begin -->' "$TMP/README.md" | tail -1)" = "$first" ] ||
  fail "the section does not follow its begin marker"
cp "$TMP/README.md" "$TMP/README.once"
"$PY" "$RR" smoke "$TMP/README.md" "$OUT/report/results_section.md" | grep -q unchanged ||
  fail "a second paste changed the README"
cmp -s "$TMP/README.md" "$TMP/README.once" || fail "a second paste changed the README"
printf 'no markers\n' >"$TMP/README.bare"
rc=0; "$PY" "$RR" smoke "$TMP/README.bare" "$OUT/report/results_section.md" 2>"$TMP/rr.err" || rc=$?
[ "$rc" = 2 ] && grep -qF 'results:smoke begin' "$TMP/rr.err" || fail "readme_results.py without markers: exit $rc"
[ "$(cat "$TMP/README.bare")" = "no markers" ] || fail "readme_results.py changed a README without markers"
rm -rf "$TMP"
echo "check_smoke: OK ($OUT, archive $ARCH)"

#!/usr/bin/env bash
# No silent loss of state (issue 11), as processes:
#   1. --resume (sfn-sim and sfn-server) refuses a changed seed, data or SuperNet setting
#      with exit 2, naming the key with the run's value and the new one, and leaves the
#      run folder as it was; the listed safe settings (run.rounds, eval.every...) may change;
#   2. config.toml holds the effective settings as TOML (--set and flags applied, defaults
#      written out, no comments); a run folder of the old form (the file as given plus
#      "# override:" lines) still resumes;
#   3. every keygen refuses an existing key without --force and replaces it with --force
#      (a new pair, secret 0600, no temporary file left); sfn-sim keygen --force renews the
#      fleet's keys and its allowlist;
#   4. sfn-search without --key writes no key, exports unsigned models (manifest "signed":
#      false, a warning), and `verify` fails them with exit 4 saying they are unsigned;
#      manifests hold no host paths and name where the latency was measured;
#   5. a usage error with --log-format json (either spelling) is one JSON log line; --help
#      has no blank line left by the hidden --run-dir alias.
# Usage: no_silent_loss.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
SIM=$BUILD/simulator/sfn-sim
SERVER=$BUILD/server/sfn-server
CLIENT=$BUILD/client/sfn-client
SEARCH=$BUILD/searcher/sfn-search
source "$SRC/tests/process_lib.sh"
require_binaries "$SIM" "$SERVER" "$CLIENT" "$SEARCH"
make_work no-silent-loss
CFG=$SRC/tests/simulator/digest.toml
LOCAL=(--bind 'tcp://127.0.0.1:*' --insecure --http off)
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- 1 and 2: --resume and config.toml ---
RUN=$WORK/run
SIM_RUN=("$SIM" -c "$CFG" -q --http off --set simulation.workers=1 --set checkpoint.every=1)
"${SIM_RUN[@]}" -o "$RUN" --set run.rounds=2 > "$WORK/sim.log" 2>&1 || fail "sfn-sim run failed"
python3 - "$RUN/config.toml" "$(realpath "$SRC/experiments/configs/devices/mixed.toml")" <<'EOF' ||
import sys, tomllib
text = open(sys.argv[1]).read()
assert "#" not in text, "config.toml has comments: " + text[:200]
c = tomllib.loads(text)
assert c["run"]["rounds"] == 2 and c["run"]["seed"] == 7, c["run"]           # --set, the file
assert c["simulation"]["workers"] == 1, c["simulation"]                         # --set
assert c["http"]["listen"] == "off", c["http"]                                  # --http
assert c["simulation"]["devices_file"] == sys.argv[2], c["simulation"]          # absolute
assert c["robust"]["probe_samples"] == 64 and "bT" in c["weighting"], c         # defaults
assert c["supernet"]["name"] == "tiny" and c["supernet"]["widths"], c["supernet"]
EOF
  fail "config.toml does not hold the effective settings"
(cd "$RUN" && sha256sum metrics.jsonl metrics.csv config.toml checkpoints/latest) > "$WORK/run.sha256"
unchanged() { (cd "$RUN" && sha256sum --quiet -c "$WORK/run.sha256") || fail "$1 changed the run folder"; }
refused 2 "run.seed = 7 -> 8" "${SIM_RUN[@]}" --resume "$RUN" --set run.seed=8
grep -qF "Only these may change on --resume: run.rounds" "$WORK/err.log" ||
  fail "the refusal does not list the safe settings"
unchanged "sfn-sim --resume with another seed"
refused 2 "data.alpha = 1.0 -> 0.3" "${SIM_RUN[@]}" --resume "$RUN" --set data.alpha=0.3
refused 2 'supernet.stem_width = 8 -> 16' "${SIM_RUN[@]}" --resume "$RUN" --set supernet.stem_width=16
refused 2 "train.lr = 0.05 -> 0.1" "$SERVER" -c "$CFG" --resume "$RUN" "${LOCAL[@]}" \
  --set simulation.workers=1 --set train.lr=0.1
unchanged "a refused --resume"
ok "--resume refuses a changed seed, data, SuperNet or training setting (sfn-sim and sfn-server: exit 2, key, old and new), and leaves the folder"

# Not -q: the note is an info line.
"$SIM" -c "$CFG" --http off --set simulation.workers=1 --set checkpoint.every=1 --resume "$RUN" \
  --set run.rounds=3 --set eval.every=1 --log-level info \
  > "$WORK/resume.log" 2>&1 || fail "sfn-sim --resume with more rounds failed"
log_has "$WORK/resume.log" "--resume: changed on resume: run.rounds = 2 -> 3" ||
  fail "the resume does not report the changed rounds"
python3 -c 'import json, sys; r = [json.loads(l)["round"] for l in open(sys.argv[1])]; sys.exit(r != [0, 1, 2])' \
  "$RUN/metrics.jsonl" || fail "the resumed run did not add round 2"
ok "--resume accepts the safe settings (run.rounds, eval.every) and says what changed"

# A folder of the old form: the config file as given, then an override line per --set.
OLD=$WORK/old
"${SIM_RUN[@]}" -o "$OLD" --set run.rounds=1 --set run.seed=5 > "$WORK/old.log" 2>&1 ||
  fail "sfn-sim run (old form) failed"
{ cat "$CFG"; printf '# override: %s\n' simulation.workers=1 checkpoint.every=1 run.rounds=1 \
  run.seed=5 'http.listen="off"'; } > "$OLD/config.toml"
refused 2 "run.seed = 5 -> 7" "${SIM_RUN[@]}" --resume "$OLD" --set run.rounds=2
"${SIM_RUN[@]}" --resume "$OLD" --set run.rounds=2 --set run.seed=5 > "$WORK/old.log" 2>&1 ||
  fail "a run folder with an old-form config.toml does not resume"
grep -qF "[run]" "$OLD/config.toml" && ! grep -q "override" "$OLD/config.toml" ||
  fail "the resumed old-form folder's config.toml was not rewritten as effective settings"
ok "a config.toml of the old form (file plus override comments) resumes, and its overrides count"

# --- 3: keygen --force ---
# keygen_force NAME STEM CMD...: CMD -o DIR writes DIR/STEM.key; again it is refused,
# with --force it is replaced.
keygen_force() {
  local name=$1 stem=$2
  shift 2
  local dir=$WORK/keys-$name
  "$@" -o "$dir" > /dev/null || fail "$name keygen failed"
  local before
  before=$(sha "$dir/$stem.key")
  refused 2 "'$dir/$stem.key' exists; keys are never replaced silently: pass --force" "$@" -o "$dir"
  [ "$(sha "$dir/$stem.key")" = "$before" ] || fail "$name keygen without --force changed the key"
  "$@" -o "$dir" --force > "$WORK/out.log" || fail "$name keygen --force failed"
  [ "$(sha "$dir/$stem.key")" != "$before" ] || fail "$name keygen --force kept the old key"
  [ "$(stat -c %a "$dir/$stem.key")" = 600 ] || fail "$name: the new secret key is not 0600"
  ! ls "$dir" | grep -q tmp || fail "$name keygen --force left a temporary file"
}
keygen_force server server "$SERVER" keygen
keygen_force client client "$CLIENT" keygen
keygen_force search signing "$SEARCH" keygen
"$SIM" keygen --clients 2 -o "$WORK/fleet" > /dev/null || fail "sfn-sim keygen failed"
before=$(sha "$WORK/fleet/client-000000.key")
allow=$(sha "$WORK/fleet/allow")
"$SIM" keys --clients 2 -o "$WORK/fleet" > /dev/null || fail "sfn-sim keys failed"
[ "$(sha "$WORK/fleet/client-000000.key")" = "$before" ] || fail "sfn-sim keys replaced a key without --force"
"$SIM" keygen --clients 2 -o "$WORK/fleet" --force > "$WORK/out.log" || fail "sfn-sim keygen --force failed"
log_has "$WORK/out.log" "--force: replaced 2 key pairs" || fail "sfn-sim keygen --force does not say so"
[ "$(sha "$WORK/fleet/client-000000.key")" != "$before" ] && [ "$(sha "$WORK/fleet/allow")" != "$allow" ] ||
  fail "sfn-sim keygen --force did not renew the keys and the allowlist"
[ "$(stat -c %a "$WORK/fleet/client-000001.key")" = 600 ] || fail "sfn-sim: a new key is not 0600"
ok "every keygen refuses an existing key without --force (exit 2) and replaces it with --force"

# --- 4: sfn-search without --key; manifests ---
printf '[[target]]\nname = "small"\nmax_macs = 1e9\n' > "$WORK/targets.toml"
SEARCH_ARGS=(--checkpoint "$RUN" --targets "$WORK/targets.toml" --population 4 --generations 1
  --val-samples 50 --latency-repeats 2 --plot-timeout-s 20)
"$SEARCH" "${SEARCH_ARGS[@]}" -o "$WORK/unsigned" > "$WORK/search.log" 2>&1 ||
  fail "sfn-search without --key failed"
log_has "$WORK/search.log" "no --key given: the models are exported UNSIGNED" || fail "no warning"
[ -z "$(find "$WORK/unsigned" -name '*.key')" ] && [ ! -e "$WORK/unsigned/keys" ] ||
  fail "sfn-search without --key wrote a key into its output folder"
[ ! -e "$WORK/unsigned/small/manifest.sig" ] || fail "an unsigned model has a signature"
rc=0
"$SEARCH" verify "$WORK/unsigned" --pubkey "$WORK/keys-search/signing.pub" > "$WORK/out.log" || rc=$?
[ "$rc" = 4 ] || fail "verify of an unsigned model: exit $rc, expected 4"
log_has "$WORK/out.log" "the model is unsigned" || fail "verify does not say the model is unsigned"
"$SEARCH" "${SEARCH_ARGS[@]}" -o "$WORK/signed" --key "$WORK/keys-search/signing.key" \
  > "$WORK/search.log" 2>&1 || fail "sfn-search --key failed"
"$SEARCH" verify "$WORK/signed" --pubkey "$WORK/keys-search/signing.pub" > "$WORK/out.log" ||
  fail "a signed model does not verify"
for m in "$WORK/unsigned/small/manifest.json" "$WORK/signed/small/manifest.json"; do
  python3 - "$m" "$WORK" "$SRC" "$(hostname)" <<'EOF' || fail "manifest $m"
import json, sys
path, work, src, host = sys.argv[1:]
text = open(path).read()
for p in (work, src, "/tmp/", "/home/", "/usr/share/"):
    assert p not in text, f"host path {p} in the manifest"
m = json.loads(text)
assert m["signed"] == ("/signed/" in path), m["signed"]
assert m["source"]["checkpoint"].startswith("ckpt-") and len(m["source"]["checkpoint_sha256"]) == 64
assert m["latency"]["measured_on"]["host"] == host, m["latency"]
assert m["latency"]["measured_on"]["cpu"], m["latency"]
EOF
done
ok "sfn-search without --key writes no key and exports unsigned models that verify refuses (exit 4); manifests hold no host paths and name the measuring machine"

# --- 5: the command line ---
for b in "$SERVER" "$CLIENT" "$SIM" "$SEARCH"; do
  name=$(basename "$b")
  for form in "--log-format json" "--log-format=json"; do
    # shellcheck disable=SC2086
    refused 2 "usage error: The following argument was not expected: --no-such-flag" \
      "$b" $form --no-such-flag
    [ "$(wc -l < "$WORK/err.log")" = 1 ] || fail "$name $form: more than one line"
    python3 -c 'import json, sys; l = json.load(open(sys.argv[1])); sys.exit(l["level"] != "error")' \
      "$WORK/err.log" || fail "$name $form: the usage error is not a JSON log line: $(cat "$WORK/err.log")"
  done
  "$b" --help > "$WORK/help.log" || fail "$name --help"
  # The hidden --run-dir (a CLI11 option in group "") left two blank lines after the options.
  python3 -c 'import sys; sys.exit("\n\n\n" in open(sys.argv[1]).read())' "$WORK/help.log" ||
    fail "$name --help has a stray blank line"
done
ok "a usage error with --log-format json is one JSON line (all four binaries); --help has no stray blank line"
echo "$PASSED passed, 0 failed"

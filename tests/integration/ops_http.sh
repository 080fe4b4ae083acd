#!/usr/bin/env bash
# The operator's view of a live run (issue 11), with real processes:
#
# endpoints
#   sfn-sim serves /healthz, /readyz, /metrics (Prometheus text), /status (JSON) and the
#   dashboard at / on --http 127.0.0.1:0 (its address in RUN/http_endpoint). Headless
#   Chromium renders the dashboard of the live run; the round and the MaxNet's accuracy it
#   shows are the ones /status reports (read before and after the page, so a round that
#   ends meanwhile cannot make the check flaky). A screenshot is saved to
#   BUILD_DIR/test-output/dashboard.png.
# sigterm
#   SIGTERM ends sfn-sim within 5 s in a round and in the final evaluation, and sfn-server
#   within 5 s while it waits for clients; each writes its final checkpoint first (a run, not
#   the final evaluation).
#
# Usage: ops_http.sh BUILD_DIR SOURCE_DIR [endpoints|sigterm|all]
set -euo pipefail
BUILD=$1
SRC=$2
PART=${3:-all}
SIM=$BUILD/simulator/sfn-sim
SERVER=$BUILD/server/sfn-server
CFG=$SRC/experiments/configs/integration.toml
source "$SRC/tests/process_lib.sh"
make_work ops-http

# The fmnist SuperNet on synthetic data: rounds of about a second, evaluated every round.
SETS=(--set 'data.dataset="synthetic"' --set data.synthetic_train=3000
      --set data.synthetic_test=500 --set round.clients_per_round=3 --set round.quorum=2
      --set simulation.clients=6 --set simulation.workers=1 --set simulation.torch_threads=1
      --set eval.every=1 --set checkpoint.every=0 --set train.batch_size=32)

get() { # get URL -> body on stdout; fails on a non-2xx answer
  python3 - "$1" << 'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    sys.stdout.write(r.read().decode())
PY
}
status_code() { # status_code URL -> the HTTP status
  python3 - "$1" << 'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
rounds_done() { get "$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["round"])'; }
# Conditions for wait_for (evaluated on every try, unlike a $(...) in its arguments).
is_ready() { [ "$(status_code "$1/readyz")" = 200 ]; }
rounds_at_least() { [ "$(rounds_done "$1")" -ge "$2" ]; }

endpoints() {
  local run=$WORK/run
  "$SIM" -c "$CFG" -o "$run" "${SETS[@]}" --set run.rounds=400 --http 127.0.0.1:0 \
    > "$WORK/sim.out" 2> "$WORK/sim.log" &
  local sim=$!
  PIDS+=("$sim")
  wait_for "the HTTP endpoint file" 120 test -s "$run/http_endpoint"
  local url
  url=http://$(cat "$run/http_endpoint")
  [ "$(status_code "$url/healthz")" = 200 ] || fail "/healthz is not 200"
  wait_for "/readyz to answer 200" 120 is_ready "$url"
  wait_for "two evaluated rounds" 300 rounds_at_least "$url" 2
  get "$url/metrics" > "$WORK/metrics.txt"
  for line in '^sfn_round [0-9]' '^sfn_phase{phase="training"} ' '^sfn_clients_registered 6' \
    '^sfn_validation_accuracy{subnet="max"} 0\.' '^sfn_round_duration_seconds_count [0-9]' \
    '^sfn_rejected_messages_total{reason="malformed"} 0' '^sfn_ready 1'; do
    grep -Eq "$line" "$WORK/metrics.txt" || fail "/metrics has no line matching $line"
  done
  ok "/healthz, /readyz and /metrics of a live sfn-sim run"

  mkdir -p "$BUILD/test-output"
  local browser=(chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage
                 --virtual-time-budget=4000)
  get "$url/status" > "$WORK/status-before.json"
  timeout 120 "${browser[@]}" --dump-dom "$url/" > "$WORK/dom.html" 2> "$WORK/chromium.log" ||
    fail "chromium could not render the dashboard"
  get "$url/status" > "$WORK/status-after.json"
  timeout 120 "${browser[@]}" --window-size=1280,1000 \
    --screenshot="$BUILD/test-output/dashboard.png" "$url/" >> "$WORK/chromium.log" 2>&1 ||
    fail "chromium could not take a screenshot"
  [ -s "$BUILD/test-output/dashboard.png" ] || fail "no screenshot"
  python3 - "$WORK/dom.html" "$WORK/status-before.json" "$WORK/status-after.json" << 'PY' ||
import html, json, re, sys
dom = open(sys.argv[1]).read()
before, after = (json.load(open(p)) for p in sys.argv[2:4])
def text(element_id):
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(element_id), dom)
    if not m:
        sys.exit(f"the rendered page has no element id={element_id}")
    return html.unescape(m.group(1)).strip()
shown = int(text("round"))
if not before["round"] <= shown <= after["round"]:
    sys.exit(f"page shows round {shown}, /status said {before['round']} then {after['round']}")
# The MaxNet accuracy the page shows is the one of the last evaluated round it knew of.
latest = [h for h in after["history"] if h["round"] < shown and "max" in h["accuracy"]]
if not latest:
    sys.exit("no evaluated round in /status before the page's round")
want = f'{latest[-1]["accuracy"]["max"]:.4f}'
if text("acc-max") != want:
    sys.exit(f"page shows MaxNet accuracy {text('acc-max')}, /status {want} (round {shown})")
print(f"dashboard: round {shown}, MaxNet accuracy {want}")
PY
    fail "the dashboard does not show what /status reports"
  ok "headless Chromium renders the live dashboard with /status's round and accuracy"
  kill -TERM "$sim"
  wait_exit "$sim" 30
}

# sigterm_within SECS PID WHAT: SIGTERM, then the process must be gone within SECS.
sigterm_within() {
  local secs=$1 pid=$2 what=$3
  local t0=$SECONDS
  kill -TERM "$pid"
  wait_exit "$pid" 30
  [ "$RC" != timeout ] || fail "$what: still running 30 s after SIGTERM"
  local took=$((SECONDS - t0))
  [ "$took" -le "$secs" ] || fail "$what: took ${took}s to stop after SIGTERM (limit ${secs}s)"
  echo "$what: stopped ${took}s after SIGTERM, exit code $RC"
}

sigterm() {
  # In a round (rounds of the fmnist SuperNet on synthetic data, many of them).
  "$SIM" -c "$CFG" -o "$WORK/r1" "${SETS[@]}" --set run.rounds=400 --http off \
    > "$WORK/r1.out" 2> "$WORK/r1.log" &
  local sim=$!
  PIDS+=("$sim")
  wait_for "a round to start" 300 grep -q "round 2:" "$WORK/r1.log"
  sigterm_within 5 "$sim" "sfn-sim in a round"
  ls "$WORK"/r1/checkpoints/ckpt-*.sfn > /dev/null 2>&1 || fail "no final checkpoint after SIGTERM"

  # In the final evaluation: a test set large enough that it takes well over 5 s.
  "$SIM" -c "$CFG" -o "$WORK/r2" "${SETS[@]}" --set run.rounds=1 --set data.synthetic_test=200000 \
    --http off > "$WORK/r2.out" 2> "$WORK/r2.log" &
  sim=$!
  PIDS+=("$sim")
  wait_for "the final evaluation" 600 grep -q "final evaluation of" "$WORK/r2.log"
  sigterm_within 5 "$sim" "sfn-sim in the final evaluation"

  # sfn-server waiting for clients that never come.
  "$SERVER" -c "$CFG" -o "$WORK/r3" --insecure --bind "tcp://127.0.0.1:*" --http off \
    "${SETS[@]}" > "$WORK/r3.log" 2>&1 &
  local server=$!
  PIDS+=("$server")
  wait_for "the server to wait for clients" 120 grep -q "waiting for 3 clients (have 0)" "$WORK/r3.log"
  sigterm_within 5 "$server" "sfn-server waiting for clients"
  ok "SIGTERM stops sfn-sim in a round and in the final evaluation, and a waiting sfn-server, within 5 s"
}

case "$PART" in
  endpoints) endpoints ;;
  sigterm) sigterm ;;
  all) endpoints; sigterm ;;
  *) fail "unknown part $PART" ;;
esac
echo "$PASSED passed, 0 failed"

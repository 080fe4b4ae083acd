# Shared by the process-level test scripts (source it after setting BUILD and SRC):
# a work folder removed on exit (KEEP=1 keeps it), background processes killed on exit,
# fail() with the tail of every log, and bounded waits. Never wait on a bare sleep.
#
#   require_binaries BIN...  each BIN is an executable, else "FAIL: BIN is not built" and
#                        exit 1 (call it before make_work: nothing to clean up yet)
#   make_work NAME       WORK=/tmp/sfn-NAME.XXXXXX; register a PID with PIDS+=($!)
#   fail MESSAGE...      print, show logs under $WORK (two levels), exit 1
#   wait_for WHAT SECS CMD...   until CMD succeeds, else fail
#   wait_exit PID SECS   sets RC to the exit code, or "timeout" if still running
#   ok WHAT              print "ok - WHAT" and count it in PASSED
#   log_has FILE TEXT    FILE contains TEXT (fixed string)
#   ended_with_server N FILE   a fleet's N clients ended with the server's Bye (see below)
#   py WHAT METRICS_FILE  a Python check over metrics.jsonl's rounds (see below)
#   refused CODE TEXT CMD...   CMD exits CODE and its stderr says TEXT, with no source path

# Not fail(): there is no WORK yet, and a missing binary has no logs to show.
require_binaries() {
  local b
  for b in "$@"; do
    [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; }
  done
}
PIDS=()
make_work() {
  WORK=$(mktemp -d "/tmp/sfn-$1.XXXXXX")
  trap cleanup EXIT
}
cleanup() {
  for p in "${PIDS[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
fail() {
  echo "FAIL: $*"
  local f
  for f in "$WORK"/*.log "$WORK"/*/*.log; do
    [ -f "$f" ] || continue
    echo "== $f"
    tail -25 "$f"
  done
  exit 1
}
wait_for() {
  local what=$1 secs=$2
  shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" && return 0
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for $what"
}
# Not meant for $(...): only this shell can wait for its children.
wait_exit() {
  local pid=$1 secs=$2
  local end=$((SECONDS + secs))
  RC=timeout
  while [ $SECONDS -lt $end ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      RC=0
      wait "$pid" || RC=$?
      return 0
    fi
    sleep 0.2
  done
}
PASSED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "ok - $*"
}
log_has() { grep -qF -- "$2" "$1"; }
# ended_with_server N FILE: a `sfn-sim --connect` summary in FILE says its N clients ended
# with the server: at least one by the server's Bye, the rest stopped by the fleet after it.
ended_with_server() {
  local n=$1 file=$2 bye stopped
  bye=$(sed -n 's/.*ended: \([0-9]*\) by server Bye, \([0-9]*\) stopped.*/\1/p' "$file")
  stopped=$(sed -n 's/.*ended: \([0-9]*\) by server Bye, \([0-9]*\) stopped.*/\2/p' "$file")
  [ -n "$bye" ] && [ "$bye" -ge 1 ] && [ $((bye + stopped)) = "$n" ]
}
# py DESCRIPTION METRICS_FILE <<'EOF' ... EOF: runs a Python check with `rows` (the rounds of
# metrics.jsonl, in order) and `check(cond, message)`; any failed check fails the test.
py() {
  local what=$1 file=$2
  python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
failed = []
def check(cond, message):
    if not cond:
        failed.append(message)
exec(sys.stdin.read())
for m in failed:
    print("  check failed:", m)
sys.exit(1 if failed else 0)
' "$file" || fail "$what"
}

# refused CODE TEXT CMD...: CMD exits with CODE within 120 s and says TEXT on stderr, with no
# source location or internal check in it (operators get messages, not code).
refused() {
  local code=$1 text=$2
  shift 2
  local rc=0
  timeout 120 "$@" > "$WORK/out.log" 2> "$WORK/err.log" < /dev/null || rc=$?
  [ "$rc" = "$code" ] || fail "exit $rc, expected $code: $*"
  grep -qF -- "$text" "$WORK/err.log" || fail "stderr does not say '$text': $*"
  if grep -qE '\.(cpp|h|hpp):[0-9]+|check failed' "$WORK/err.log"; then
    fail "stderr shows a source location or a check: $*"
  fi
}

#!/usr/bin/env bash
# check_deploy.py must catch what it claims to: each case breaks one thing in a copy of
# deploy/ and expects the checker to fail naming it (and the untouched copy to pass). The
# cases run as on a machine without kubectl (--no-kubectl): the structure check alone must
# catch them; the untouched copy is checked both ways.
# Usage: check_deploy_breaks.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
source "$SRC/tests/process_lib.sh"
make_work check-deploy-breaks
CHECK=("$SRC/tests/deploy/check_deploy.py" --no-kubectl "--help-cache=$WORK/help" "$BUILD" "$SRC")

fresh() {
  rm -rf "$WORK/deploy"
  cp -r "$SRC/deploy" "$WORK/deploy"
}
# breaks FILE SED_EXPR EXPECTED_TEXT: the checker fails on the broken copy and says TEXT.
breaks() {
  local file=$1 expr=$2 expected=$3
  fresh
  local before
  before=$(md5sum "$WORK/deploy/$file")
  sed -i "$expr" "$WORK/deploy/$file"
  [ "$before" != "$(md5sum "$WORK/deploy/$file")" ] || fail "the sed on $file changed nothing"
  local rc=0
  /usr/bin/python3 "${CHECK[@]}" "$WORK/deploy" > "$WORK/out.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$file ($expr): checker exit $rc, expected 1"
  log_has "$WORK/out.log" "$expected" || fail "$file ($expr): no '$expected' in the output"
  ok "caught in $file: $expected"
}

fresh
/usr/bin/python3 "${CHECK[@]}" "$WORK/deploy" > "$WORK/out.log" 2>&1 || fail "the copy fails"
log_has "$WORK/out.log" "0 rendered by kubectl" || fail "--no-kubectl still ran kubectl"
/usr/bin/python3 "$SRC/tests/deploy/check_deploy.py" "--help-cache=$WORK/help" "$BUILD" "$SRC" \
  "$WORK/deploy" > "$WORK/out.log" 2>&1 || fail "the copy fails with kubectl"
ok "an untouched copy passes, with and without kubectl"
breaks docker-compose.yml 's/--min-clients=/--min-client=/' "sfn-server has no flag --min-client"
breaks k8s/base/server.yaml 's/"--http=0.0.0.0:9464"/"--http=0.0.0.0:9465"/' \
  "are not the default 9464"
breaks k8s/overlays/sim-shards/job.yaml 's/completions: 3/completions: 4/' "must be equal"
breaks k8s/overlays/sim-shards/job.yaml 's/--shards=3/--shard-count=3/' \
  "sfn-sim has no flag --shard-count"
breaks k8s/overlays/search/job.yaml 's/claimName: run-sfn-server-0/claimName: runs/' \
  "not the server's PVC"
breaks k8s/base/kustomization.yaml 's/files: \[sfn-server.toml\]/files: [..\/sfn-server.toml]/' \
  "configMapGenerator sfn-server-config: no file ../sfn-server.toml"
breaks k8s/base/services.yaml 's/targetPort: http/targetPort: metrics/' \
  "targetPort metrics is no port of the selected pods"
breaks Dockerfile 's#9464/healthz#9464/health#' "no HEALTHCHECK on 127.0.0.1:9464/healthz"
breaks k8s/overlays/sim-shards/job.yaml 's#install -d -m 0700 /run/sfn/fleet \&\& ##' \
  "init container keys: fails"
breaks k8s/base/server.yaml "s#-m 0600 /secret/server.key#-m 0640 /secret/server.key#" \
  "server.key is readable by group or others"
breaks k8s/base/client.yaml 's#/run/sfn/keys/client.key &&#/run/sfn/keys/own.key \&\&#' \
  "--key /run/sfn/keys/client.key: the init containers leave nothing there"
breaks Dockerfile 's# /usr/bin/sfn-client-start.sh##' \
  "does not check /usr/bin/sfn-client-start.sh"
breaks sfn-keys-init.sh 's/sfn-client keygen --out/sfn-client keygen --output/' \
  "sfn-client keygen has no flag --output"
breaks k8s/base/server.yaml 's#mountPath: /etc/sfn/config#mountPath: /etc/sfn/conf#' \
  "is on no volume"
echo "$PASSED passed, 0 failed"

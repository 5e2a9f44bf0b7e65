#!/usr/bin/env bash
# Runs Satellite's tests: `hack/test.sh` runs all of them, `hack/test.sh e2e` only the
# end-to-end ones. The end-to-end tests need the local environment, which this brings up
# (hack/dev-up.sh is idempotent) and leaves running for inspection; `make dev-down` stops it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"
what=${1:-all}

if [ "$what" = all ]; then
  log "static checks"
  go vet ./...
  unformatted=$(gofmt -l .)
  [ -z "$unformatted" ] || die "gofmt needed: $unformatted"
  log "unit tests"
  go test -race -short -count=1 ./...
  log "fuzzing every parser of host output, ${FUZZTIME:=5s} a target (hack/fuzz.sh)"
  FUZZTIME=$FUZZTIME bash hack/fuzz.sh
fi

log "local environment"
bash hack/dev-up.sh
log "end-to-end and integration tests (containerd 2.x and Debian's containerd 1.6 hosts)"
go test -count=1 -timeout 60m -v -run 'TestIntegration' ./... 2>&1 | tee "$DEV/logs/e2e-test.log" | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' || true
# The verdict is go test's, read from its summary lines.
if grep -qE '^(FAIL|panic)' "$DEV/logs/e2e-test.log" || ! grep -qE '^ok ' "$DEV/logs/e2e-test.log"; then
  # The whole output of each failed test (its last 400 lines), since the log goes with the
  # environment when CI takes it down.
  for name in $(grep -oE '^--- FAIL: Test[A-Za-z0-9_]+' "$DEV/logs/e2e-test.log" | awk '{print $3}'); do
    log "output of $name"
    awk -v n="$name" '$0 ~ "^=== RUN   "n"$" {on=1} on {print} $0 ~ "^--- FAIL: "n" " {on=0}' "$DEV/logs/e2e-test.log" | tail -n 400
  done
  grep -A40 -E '^panic' "$DEV/logs/e2e-test.log" | head -80 || true
  log "the nodes, and the last warnings and errors each Satellite logged"
  kubectl_admin get nodes -o wide || true
  for f in "$DEV"/logs/satellite*.log; do
    echo "== $f"
    grep -E '^panic|fatal error|level=(ERROR|WARN)' "$f" | grep -v 'Force deleting pod in running state' | tail -n 25 | cut -c1-400 || true
  done
  # Where each Satellite's goroutines wait, the largest groups first (a stuck one shows here).
  for port in 10270 10271; do
    echo "== goroutines of the Satellite with debug port $port"
    curl -s --max-time 5 "http://127.0.0.1:$port/debug/pprof/goroutine?debug=1" |
      awk '/^goroutine profile/ {print; next} /^[0-9]+ @/ {n=$1; k=0; next} /^#/ && n >= 4 && k < 3 {print n "\t" $3; k++}' | head -n 40 || true
  done
  # Last, what each failed test reported, since the end of a long output is what is read.
  log "what the failed tests reported"
  for name in $(grep -oE '^--- FAIL: Test[A-Za-z0-9_]+' "$DEV/logs/e2e-test.log" | awk '{print $3}'); do
    awk -v n="$name" '$0 ~ "^=== RUN   "n"$" {on=1} on && /_test.go:[0-9]+:/ {print} $0 ~ "^--- FAIL: "n" " {on=0}' "$DEV/logs/e2e-test.log" | tail -n 15 | cut -c1-400
    echo "--- FAIL: $name"
  done
  die "end-to-end tests failed (full output: $DEV/logs/e2e-test.log)"
fi
passed=$(grep -cE '^\s*--- PASS' "$DEV/logs/e2e-test.log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$DEV/logs/e2e-test.log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$DEV/logs/e2e-test.log" || true)
echo "e2e: $passed passed, $failed failed, $skipped skipped"

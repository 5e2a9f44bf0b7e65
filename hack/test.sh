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
  die "end-to-end tests failed (full output: $DEV/logs/e2e-test.log)"
fi
passed=$(grep -cE '^\s*--- PASS' "$DEV/logs/e2e-test.log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$DEV/logs/e2e-test.log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$DEV/logs/e2e-test.log" || true)
echo "e2e: $passed passed, $failed failed, $skipped skipped"

#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go file) for a bounded time, one after the
# other: `go test -fuzz` takes one package and one target at a time.
#
#   hack/fuzz.sh                        every target, FUZZTIME (default 10s) each
#   FUZZTIME=2m hack/fuzz.sh            longer, to look for new bugs
#   hack/fuzz.sh ./remote/doctor        the targets of some packages only
#
# FUZZPARALLEL (default 2) is the number of fuzzing workers. A target that fails leaves the
# input that broke it in its package's testdata/fuzz/<target>/: commit it with the fix, and
# it runs as a regression seed in every plain `go test` from then on (the seeds of every
# target run there anyway, as unit tests). The script goes on with the other targets and
# fails at the end, naming the targets that failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO"
fuzztime=${FUZZTIME:-10s}
parallel=${FUZZPARALLEL:-2}
[ $# -gt 0 ] || set -- ./...

# `go test -list` prints a package's matching names, then "ok <package> <time>".
listing=$(go test -list '^Fuzz' "$@") || die "listing the fuzz targets failed:
$listing"
targets=()
names=()
while read -r first second _; do
  case $first in
    Fuzz*) names+=("$first") ;;
    ok)
      for n in "${names[@]}"; do targets+=("$second $n"); done
      names=()
      ;;
  esac
done <<<"$listing"
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets in $*"

log "${#targets[@]} fuzz targets, $fuzztime each, $parallel workers"
failed=()
start=$SECONDS
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  t0=$SECONDS
  if out=$(go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg" 2>&1); then
    log "ok   $pkg $name ($((SECONDS - t0))s)"
  else
    log "FAIL $pkg $name ($((SECONDS - t0))s)"
    printf '%s\n' "$out" | grep -v '^fuzz: elapsed' >&2
    failed+=("$pkg $name")
  fi
done
log "fuzzing took $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  die "fuzz targets failed (inputs in their packages' testdata/fuzz/): ${failed[*]}"
fi

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
# coordinatorRace tells whether a failed run is Go's fuzzing coordinator racing its own
# -fuzztime deadline (golang/go#75804, fixed in Go 1.27): the run ends "context deadline
# exceeded" and no failing input was written. A crash or a hang in a target always writes its
# input ("Failing input written to ..."), so this never hides one.
coordinatorRace() {
  ! grep -q 'Failing input written to' <<<"$1" && grep -qx '[[:space:]]*context deadline exceeded' <<<"$1"
}

fuzzOne() {
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -parallel "$parallel" "$1" 2>&1
}

for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  t0=$SECONDS
  ok=0
  for attempt in 1 2 3; do
    if out=$(fuzzOne "$pkg" "$name"); then
      ok=1
      break
    fi
    coordinatorRace "$out" || break
    log "     $pkg $name: Go's fuzzing coordinator raced its deadline (golang/go#75804, no input written); running it again"
  done
  if [ $ok = 1 ]; then
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

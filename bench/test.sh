#!/usr/bin/env bash
# beamctl test against go test on Beam's own snippet tests
# (examples/snippets), warm, in one run: separate worker processes cost a
# process start per pipeline, which go test's in-process workers do not.
# -count=1 keeps go test from reporting a cached result. Needs hyperfine.
#
#   bench/test.sh [RUNS]      results go to bench/results/test-*
source "$(dirname "$0")/lib.sh"
runs=${1:-7}
bench_dirs
build_beamctl
cd examples/snippets

echo "== warm: Beam's snippet tests, host"
timed test-host 1 "$runs" \
	-n "go test" "go test -count=1 ." \
	-n "beamctl test" "$work/beamctl test --vet=off --count 1 ."

echo "== medians (the target: <= 1.5)"
medians "$res" test host

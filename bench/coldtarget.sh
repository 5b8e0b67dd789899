#!/usr/bin/env bash
# A cold build of a worker for another architecture beside a launcher that
# is up to date: beamctl build --target linux/ppc64le against plain
# GOOS=linux GOARCH=ppc64le go build, in one run, on wordcount in a module
# of its own. Before each run the Go build cache is reset to one that
# holds this machine's packages alone, so every run compiles the Beam SDK
# for ppc64le. Needs hyperfine.
#
#   bench/coldtarget.sh [RUNS]      results go to bench/results/coldtarget*
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
bench_dirs
build_beamctl
wordcount_module "$work/wc"
cd "$work/wc"

# The launcher built, and this machine's packages compiled, into a cache
# kept aside; each run starts from a copy of it.
GOCACHE=$work/gocache-host "$work/beamctl" build . --target host --out "$work/dist-host" >/dev/null 2>&1
export GOCACHE=$work/gocache
reset="rm -rf $GOCACHE && cp -a $work/gocache-host $GOCACHE"

timed coldtarget 0 "$runs" --prepare "$reset" \
	-n "GOOS=linux GOARCH=ppc64le go build" "GOOS=linux GOARCH=ppc64le CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $work/plain ." \
	-n "beamctl build --target linux/ppc64le" "$work/beamctl build . --target linux/ppc64le --out $work/dist"

echo "== medians (the target: <= 1.05)"
python3 - "$res/coldtarget.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"{r[0]['median']:.1f} s  {r[1]['median']:.1f} s  {r[1]['median'] / r[0]['median']:.2f}x")
PY

#!/usr/bin/env bash
# The inner loop: edit a DoFn, run the pipeline again. Measures beamctl run
# on the embedded runner against the Beam SDK's own local path, go run
# . --runner=prism, in one run, on wordcount in a module of its own over
# 20,000 lines: after a one-line edit, and with nothing changed; then the
# edit loop with a linux/arm64 worker under qemu-user. Needs hyperfine.
#
#   bench/inner.sh [RUNS]      results go to bench/results/inner-*
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-7}
bench_dirs
build_beamctl
wordcount_module "$work/wc"
input_lines 20000 "$work/input.txt"
cd "$work/wc"

args="--input=$work/input.txt --output=$work/out"
gorun="go run . --runner=prism $args-gorun.txt"
bctl="$work/beamctl run . --target host --out $work/dist -- $args-beamctl.txt"
arm="$work/beamctl run . --target linux/arm64 --out $work/dist-arm -- $args-arm.txt"
edit=$(code_edit main.go)

# Warm both paths: the SDK's own, and beamctl's build cache.
eval "$gorun" >/dev/null 2>&1
eval "$bctl" >/dev/null 2>&1

echo "== after a one-line edit, host target"
timed inner-edit 1 "$runs" --prepare "$edit" \
	-n "go run . --runner=prism" "$gorun" -n "beamctl run" "$bctl"

echo "== nothing changed, host target"
timed inner-noop 2 "$runs" \
	-n "go run . --runner=prism" "$gorun" -n "beamctl run" "$bctl"

echo "== after a one-line edit, linux/arm64 worker under qemu-user"
eval "$arm" >/dev/null 2>&1
timed inner-arm 1 "$runs" --prepare "$edit" \
	-n "go run . --runner=prism (host)" "$gorun" -n "beamctl run --target linux/arm64" "$arm"

# Every run must have counted the same words.
same_counts "$work"/out-{gorun,beamctl,arm}.txt

echo "== medians (the targets: edit <= 1.0, nothing changed <= 1.25)"
medians "$res" inner edit noop arm

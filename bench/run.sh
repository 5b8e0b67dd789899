#!/usr/bin/env bash
# Measures beamctl run on the embedded runner against the Beam SDK's own
# path (the same launcher with --runner=prism, workers in process), in one
# run, on examples/wordcount over 1,000,000 lines; then the linux/arm64
# worker under qemu-user against the native one. Needs hyperfine.
#
#   bench/run.sh [LINES]      results go to bench/results/
source "$(dirname "$0")/lib.sh"
lines=${1:-1000000}
bench_dirs
build_beamctl
input_lines "$lines" "$work/input.txt"
echo "input: $(wc -l <"$work/input.txt") lines, $(du -h "$work/input.txt" | cut -f1)"

# Warm the build so both sides start from the same binaries.
"$work/beamctl" build ./examples/wordcount --target host,linux/arm64 --out "$work/dist" >/dev/null 2>&1
launcher=$work/dist/wordcount-launcher-$(go env GOOS)-$(go env GOARCH)

run="$work/beamctl run ./examples/wordcount --target host --out $work/dist -- --input=$work/input.txt --output=$work/beamctl-out.txt"
sdk="$launcher --runner=prism --input=$work/input.txt --output=$work/sdk-out.txt"
timed run 1 5 \
	-n "beamctl run (embedded runner)" "$run" \
	-n "launcher --runner=prism (SDK, in-process loopback)" "$sdk"

echo "== beamctl's own peak RSS during run (reported under --verbose)"
"$work/beamctl" run ./examples/wordcount --target host --out "$work/dist" -v -- \
	--input="$work/input.txt" --output="$work/beamctl-out.txt" 2>&1 | grep -o 'peak_rss_mib=[0-9.]*' | tee "$res/run-rss.txt"
ls -l "$work/dist"/wordcount-worker-* | awk '{print $5, $9}' >>"$res/run-rss.txt"

echo "== linux/arm64 worker under qemu-user vs native"
arm="$work/beamctl run ./examples/wordcount --target linux/arm64 --out $work/dist -- --input=$work/input.txt --output=$work/arm-out.txt"
timed qemu 1 3 \
	-n "beamctl run --target host" "$run" \
	-n "beamctl run --target linux/arm64 (qemu-user)" "$arm"

# The three runs must agree.
same_counts "$work"/{beamctl,sdk,arm}-out.txt

#!/usr/bin/env bash
# The inner loop: edit a DoFn, run the pipeline again. Measures beamctl run
# on the embedded runner against the Beam SDK's own local path, go run
# . --runner=prism, in one run, on wordcount in a module of its own over
# 20,000 lines: after a one-line edit, and with nothing changed; then the
# edit loop with a linux/arm64 worker under qemu-user, and run --watch's
# time from a save to its result. Needs hyperfine.
#
#   bench/inner.sh [RUNS]      results go to bench/results/inner-*
source "$(dirname "$0")/lib.sh"
runs=${1:-7}
edit_loop 20000

gorun="go run . --runner=prism $args-gorun.txt"
bctl="$work/beamctl run . --target host --out $work/dist -- $args-beamctl.txt"
arm="$work/beamctl run . --target linux/arm64 --out $work/dist-arm -- $args-arm.txt"

echo "== after a one-line edit, host target"
time_edits inner-edit "go run . --runner=prism" "$gorun" "beamctl run" "$bctl"

echo "== nothing changed, host target"
timed inner-noop 2 "$runs" \
	-n "go run . --runner=prism" "$gorun" -n "beamctl run" "$bctl"

echo "== after a one-line edit, linux/arm64 worker under qemu-user"
time_edits inner-arm "go run . --runner=prism (host)" "$gorun" "beamctl run --target linux/arm64" "$arm"

echo "== run --watch: from a one-line edit to the run's result, host target"
watch_edits inner-watch inner-edit "$runs" "$edit" \
	"$work/beamctl run --watch . --target host --out $work/dist-watch --output json -- $args-watch.txt"

# Every run must have counted the same words.
same_counts "$work"/out-{gorun,beamctl,arm,watch}.txt

echo "== medians (the targets: edit <= 0.9, nothing changed <= 1.0, watch <= 0.7)"
medians "$res" inner edit noop arm watch

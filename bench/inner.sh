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
root=$PWD
res=$root/bench/results
mkdir -p "$res"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/beamctl" ./cmd/beamctl
export BEAMCTL_CACHE_DIR=$work/cache
wordcount_module "$work/wc"
input_lines 20000 "$work/input.txt"
cd "$work/wc"

args="--input=$work/input.txt --output=$work/out"
gorun="go run . --runner=prism $args-gorun.txt"
bctl="$work/beamctl run . --target host --out $work/dist -- $args-beamctl.txt"
arm="$work/beamctl run . --target linux/arm64 --out $work/dist-arm -- $args-arm.txt"
# A one-line edit that changes the DoFn's code, as a user's would.
edit="printf '\nfunc init() { _ = %s }\n' \$(date +%s%N) >> main.go"

# Warm both paths: the SDK's own, and beamctl's build cache.
eval "$gorun" >/dev/null 2>&1
eval "$bctl" >/dev/null 2>&1

echo "== after a one-line edit, host target"
hyperfine --warmup 1 --runs "$runs" --prepare "$edit" --export-markdown "$res/inner-edit.md" --export-json "$res/inner-edit.json" \
	-n "go run . --runner=prism" "$gorun" -n "beamctl run" "$bctl"

echo "== nothing changed, host target"
hyperfine --warmup 2 --runs "$runs" --export-markdown "$res/inner-noop.md" --export-json "$res/inner-noop.json" \
	-n "go run . --runner=prism" "$gorun" -n "beamctl run" "$bctl"

echo "== after a one-line edit, linux/arm64 worker under qemu-user"
eval "$arm" >/dev/null 2>&1
hyperfine --warmup 1 --runs "$runs" --prepare "$edit" --export-markdown "$res/inner-arm.md" --export-json "$res/inner-arm.json" \
	-n "go run . --runner=prism (host)" "$gorun" -n "beamctl run --target linux/arm64" "$arm"

# Every run must have counted the same words.
for f in gorun beamctl arm; do sort "$work/out-$f.txt"* | sha256sum; done | uniq -c

echo "== medians (the targets: edit <= 1.0, nothing changed <= 1.25)"
python3 - "$res" <<'PY'
import json, sys
for name in ("edit", "noop", "arm"):
    r = json.load(open(f"{sys.argv[1]}/inner-{name}.json"))["results"]
    base, b = r[0]["median"], r[1]["median"]
    print(f"{name:5}  {r[0]['command'][:24]:24} {base:7.3f} s   {r[1]['command'][:32]:32} {b:7.3f} s   {b / base:.2f}x")
PY

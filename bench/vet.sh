#!/usr/bin/env bash
# What the pipeline checks cost the inner loop: beamctl run after a
# one-line edit with the checks (the default) against the same run with
# --vet=off, in one run, on wordcount in a module of its own; and beamctl
# vet with nothing changed against go vet, the check a user runs today.
# Needs hyperfine.
#
#   bench/vet.sh [RUNS]      results go to bench/results/vet-*
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
input_lines 2000 "$work/input.txt"
cd "$work/wc"

args="--input=$work/input.txt --output=$work/out"
on="$work/beamctl run . --target host --out $work/dist -- $args-on.txt"
off="$work/beamctl run . --vet=off --target host --out $work/dist -- $args-off.txt"
# A one-line edit that changes the package, as a user's would.
edit="printf '\nfunc init() { _ = %s }\n' \$(date +%s%N) >> main.go"

eval "$on" >/dev/null 2>&1
eval "$off" >/dev/null 2>&1

echo "== after a one-line edit: checks on, checks off"
hyperfine --warmup 1 --runs "$runs" --prepare "$edit" --export-markdown "$res/vet-edit.md" --export-json "$res/vet-edit.json" \
	-n "beamctl run --vet=off" "$off" -n "beamctl run" "$on"

echo "== nothing changed: beamctl vet, go vet"
"$work/beamctl" vet . >/dev/null
go vet . >/dev/null
hyperfine --warmup 2 --runs "$runs" --export-markdown "$res/vet-noop.md" --export-json "$res/vet-noop.json" \
	-n "go vet ." "go vet ." -n "beamctl vet ." "$work/beamctl vet ."

for f in on off; do sort "$work/out-$f.txt"* | sha256sum; done | uniq -c

echo "== medians (the targets: checks on / off after an edit <= 1.10; beamctl vet unchanged <= 0.3 s)"
python3 - "$res" <<'PY'
import json, sys
for name in ("edit", "noop"):
    r = json.load(open(f"{sys.argv[1]}/vet-{name}.json"))["results"]
    base, b = r[0]["median"], r[1]["median"]
    print(f"{name:5}  {r[0]['command'][:24]:24} {base:7.3f} s   {r[1]['command'][:24]:24} {b:7.3f} s   {b / base:.2f}x")
PY

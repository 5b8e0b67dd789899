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
bench_dirs
build_beamctl
wordcount_module "$work/wc"
input_lines 2000 "$work/input.txt"
cd "$work/wc"

args="--input=$work/input.txt --output=$work/out"
on="$work/beamctl run . --target host --out $work/dist -- $args-on.txt"
off="$work/beamctl run . --vet=off --target host --out $work/dist -- $args-off.txt"
edit=$(code_edit main.go)

eval "$on" >/dev/null 2>&1
eval "$off" >/dev/null 2>&1

echo "== after a one-line edit: checks on, checks off"
timed vet-edit 1 "$runs" --prepare "$edit" \
	-n "beamctl run --vet=off" "$off" -n "beamctl run" "$on"

echo "== nothing changed: beamctl vet, go vet"
"$work/beamctl" vet . >/dev/null
go vet . >/dev/null
timed vet-noop 2 "$runs" \
	-n "go vet ." "go vet ." -n "beamctl vet ." "$work/beamctl vet ."

same_counts "$work"/out-{on,off}.txt

echo "== medians (the targets: checks on / off after an edit <= 1.10; beamctl vet unchanged <= 0.3 s)"
medians "$res" vet edit noop

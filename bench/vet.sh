#!/usr/bin/env bash
# What the pipeline checks cost the inner loop: beamctl run after a
# one-line edit with the checks (the default) against the same run with
# --vet=off, in one run, on wordcount in a module of its own; and beamctl
# vet with nothing changed against go vet, the check a user runs today.
# Needs hyperfine.
#
#   bench/vet.sh [RUNS]      results go to bench/results/vet-*
source "$(dirname "$0")/lib.sh"
runs=${1:-7}
edit_loop 2000

on="$work/beamctl run . --target host --out $work/dist -- $args-on.txt"
off="$work/beamctl run . --vet=off --target host --out $work/dist -- $args-off.txt"

echo "== after a one-line edit: checks on, checks off"
time_edits vet-edit "beamctl run --vet=off" "$off" "beamctl run" "$on"

echo "== nothing changed: beamctl vet, go vet"
"$work/beamctl" vet . >/dev/null
go vet . >/dev/null
timed vet-noop 2 "$runs" \
	-n "go vet ." "go vet ." -n "beamctl vet ." "$work/beamctl vet ."

same_counts "$work"/out-{on,off}.txt

echo "== medians (the targets: checks on / off after an edit <= 1.10; beamctl vet unchanged <= 0.3 s)"
medians "$res" vet edit noop

#!/usr/bin/env bash
# Measures this checkout's beamctl against the beamctl of another revision,
# in one run: no-op rebuild, rebuild after a one-line edit (host +
# linux/arm64), and run on the embedded runner. Needs hyperfine.
#
#   bench/compare.sh REV [LINES]      results go to bench/results/compare-*
source "$(dirname "$0")/lib.sh"
rev=${1:?usage: bench/compare.sh REV [LINES]}
lines=${2:-200000}
bench_dirs
at_exit 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1'

go build -o "$work/new" ./cmd/beamctl
git worktree add --detach -q "$work/base" "$rev"
(cd "$work/base" && go build -o "$work/old" ./cmd/beamctl)

wordcount_module "$work/wc"
input_lines "$lines" "$work/input.txt"
cd "$work/wc"

# Each side has a build cache of its own, so neither reuses the other's
# outputs; both are warmed before timing.
b() { echo "BEAMCTL_CACHE_DIR=$work/cache-$1 $work/$1 build . --target linux/arm64 --out $work/dist-$1"; }
for s in old new; do eval "$(b $s)" >/dev/null; done

echo "== no-op rebuild"
timed compare-noop 2 10 \
	-n "beamctl $rev" "$(b old)" -n "beamctl (this checkout)" "$(b new)"

echo "== rebuild after editing one source file"
edit="printf '\n// edited %s\n' \$(date +%s%N) >> $work/wc/main.go"
timed compare-edit 0 5 --prepare "$edit" \
	-n "beamctl $rev" "$(b old)" -n "beamctl (this checkout)" "$(b new)"

echo "== run on the embedded runner, $lines lines"
r() { echo "BEAMCTL_CACHE_DIR=$work/cache-$1 $work/$1 run . --target host --out $work/dist-$1 -- --input=$work/input.txt --output=$work/out-$1.txt"; }
timed compare-run 1 5 \
	-n "beamctl $rev" "$(r old)" -n "beamctl (this checkout)" "$(r new)"
same_counts "$work"/out-{old,new}.txt

echo "== beamctl build outputs, both revisions (must be byte-identical)"
cd "$root"
for s in old new; do
	BEAMCTL_CACHE_DIR=$work/cache-id-$s "$work/$s" build ./examples/wordcount --target host,linux/arm64 --out "$work/id-$s" >/dev/null 2>&1
done
for s in old new; do (cd "$work/id-$s" && sha256sum wordcount-*); done | sort | uniq -c | tee "$res/compare-identical.txt"

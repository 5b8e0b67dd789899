#!/usr/bin/env bash
# Fuzzes every parser of input beamctl does not control, each for a given
# time, then adds the inputs the fuzzer found interesting to the committed
# corpus (PKG/testdata/fuzz/TARGET), which go test runs as seeds on every
# run of the tests. A failing input is written there by go test itself and
# fails the script.
#
#   bench/fuzz.sh [TIME] [TARGET...]   e.g. bench/fuzz.sh 5m; results go to bench/results/fuzz.md
#
# Each target's package is compiled once with coverage instrumentation,
# dependencies included: a minute or more per package before the clock
# starts.
source "$(dirname "$0")/lib.sh"
bench_dirs
time=${1:-1m}
shift || true

# package target
targets=(
	"./build FuzzParseTarget"
	"./build FuzzReadManifest"
	"./cmd/beamctl FuzzConfigFile"
	"./stage/image FuzzParseTag"
	"./stage/image FuzzParseRef"
	"./submit FuzzParseEndpoint"
	"./boot FuzzProvisionInfo"
	"./dataflow FuzzLogReader"
	"./internal/peercred FuzzSocketTable"
)

want() {
	[ $# -eq 1 ] && return 0
	local t
	for t in "${@:2}"; do [ "$t" = "$1" ] && return 0; done
	return 1
}

export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
cache=$(go env GOCACHE)/fuzz/$(go list -m)
out=$res/fuzz.md
{
	echo "# bench/fuzz.sh $time ($(date -u +%F), $(go version | cut -d' ' -f3), $(nproc) CPUs)"
	echo
	echo "| target | package | inputs run | corpus | result |"
	echo "|---|---|---|---|---|"
} >"$work/table"
failed=0
for entry in "${targets[@]}"; do
	read -r pkg target <<<"$entry"
	want "$target" "$@" || continue
	echo "== $target ($pkg) for $time"
	log=$work/$target.log
	result=ok
	if ! go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "$pkg" >"$log" 2>&1; then
		result=FAILED
		failed=1
		cat "$log"
	fi
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
	corpus=$pkg/testdata/fuzz/$target
	mkdir -p "$corpus"
	found=$cache/${pkg#./}/$target
	[ -d "$found" ] && cp -n "$found"/* "$corpus"/ 2>/dev/null || true
	echo "| $target | ${pkg#./} | $execs | $(ls "$corpus" | wc -l) | $result |" >>"$work/table"
done
cp "$work/table" "$out"
cat "$out"
exit $failed

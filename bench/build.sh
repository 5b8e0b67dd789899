#!/usr/bin/env bash
# Measures beamctl build against the plain go build commands a user would
# otherwise run, in one run, on examples/wordcount for the host (launcher)
# and linux/arm64 (worker). Needs hyperfine (apt-get install hyperfine).
#
#   bench/build.sh [noop] [edit] [size] [cold] [refused]    results go to bench/results/
#
# With no arguments it runs noop, edit and size; cold (empty GOCACHE) and
# refused (a 32-bit target, which go build fails on only after compiling
# the SDK's dependencies) take minutes and run only when asked for.
source "$(dirname "$0")/lib.sh"
bench_dirs
build_beamctl

# The pipeline is copied into a module of its own so the edit benchmark
# can change a source file without touching the repository.
wordcount_module "$work/wc"
cd "$work/wc"

scenarios=${*:-noop edit size}
want() { [[ " $scenarios " == *" $1 "* ]]; }

beamctl="$work/beamctl build . --target linux/arm64 --out $work/dist"
host="CGO_ENABLED=0 go build -trimpath -o $work/plain/wordcount-host ."
arm="GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $work/plain/wordcount-arm64 ."
mkdir -p "$work/plain"

if want noop; then
echo "== no-op rebuild"
timed noop 2 10 \
	-n "beamctl build (host + linux/arm64)" "$beamctl" \
	-n "go build host; go build arm64 (sequential)" "$host && $arm" \
	-n "go build host & go build arm64 (concurrent)" "$host & $arm & wait"

fi

if want edit; then
echo "== rebuild after editing one source file"
edit="printf '\n// edited %s\n' \$(date +%s%N) >> $work/wc/main.go"
timed edit 1 5 --prepare "$edit" \
	-n "beamctl build (host + linux/arm64)" "$beamctl" \
	-n "go build host; go build arm64 (sequential)" "$host && $arm"

fi

if want size; then
echo "== worker size"
"$work/beamctl" build . --target linux/arm64 --out "$work/stripped" --output json >"$work/stripped.json"
"$work/beamctl" build . --target linux/arm64 --out "$work/unstripped" --strip=false --output json >"$work/unstripped.json"
python3 - "$work/stripped.json" "$work/unstripped.json" >"$res/size.md" <<'PY'
import json, sys
s = [b for b in json.load(open(sys.argv[1]))["binaries"] if b["role"] == "worker"][0]["size"]
u = [b for b in json.load(open(sys.argv[2]))["binaries"] if b["role"] == "worker"][0]["size"]
print("| worker linux/arm64 | size |\n|:---|---:|")
print(f"| stripped (default) | {s/2**20:.1f} MiB |")
print(f"| --strip=false | {u/2**20:.1f} MiB |")
print(f"| stripped / unstripped | {s/u:.2f} |")
PY
cat "$res/size.md"
fi

if want cold; then
	echo "== cold build (empty GOCACHE)"
	export GOCACHE=$work/gocache
	clean="rm -rf $work/gocache $work/cache $work/dist $work/plain; mkdir -p $work/plain"
	timed cold 0 1 --prepare "$clean" \
		-n "beamctl build (host + linux/arm64)" "$beamctl" \
		-n "go build host; go build arm64 (sequential)" "$host && $arm"
fi

if want refused; then
	echo "== a 32-bit target, which the Beam SDK does not build for"
	export GOCACHE=$work/gocache-arm
	# go build fails only once it reaches the SDK's util/syscallx, from an
	# empty cache as a first try would; beamctl refuses before building.
	timed refused 0 "${RUNS:-3}" -i --prepare "rm -rf $GOCACHE" \
		-n "GOOS=linux GOARCH=arm go build (fails)" "GOOS=linux GOARCH=arm CGO_ENABLED=0 go build -trimpath -o $work/plain/arm ." \
		-n "beamctl build --target linux/arm/v7 (exit 2)" "$work/beamctl build . --target linux/arm/v7 --out $work/dist-arm"
fi

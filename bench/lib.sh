# Set-up shared by the benchmark scripts. Source it first: it sets strict
# mode and moves to the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# bench_dirs sets root (the repository), res (bench/results, made if
# missing) and work (a scratch directory). On exit, the commands given to
# at_exit run, then work is removed.
bench_dirs() {
	root=$PWD
	res=$root/bench/results
	mkdir -p "$res"
	work=$(mktemp -d)
	trap bench_exit EXIT
}

bench_at_exit=()

# at_exit CMD has CMD evaluated when the script ends, before work goes.
at_exit() { bench_at_exit+=("$1"); }

bench_exit() {
	local cmd
	for cmd in "${bench_at_exit[@]}"; do
		eval "$cmd" || true
	done
	rm -rf "$work"
}

# stop PID ends a background process and waits for it, if it still runs.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# build_beamctl builds this checkout's beamctl into $work/beamctl, and
# gives it a build cache of its own in $work.
build_beamctl() {
	go build -o "$work/beamctl" ./cmd/beamctl
	export BEAMCTL_CACHE_DIR=$work/cache
}

# wordcount_module DIR copies examples/wordcount into DIR as a module of its
# own, so a benchmark can edit it without touching the repository.
wordcount_module() {
	mkdir -p "$1"
	cp examples/wordcount/main.go "$1/"
	sed 's#^module .*#module example.com/wordcount#' examples/linestats/go.mod >"$1/go.mod"
	cp examples/linestats/go.sum "$1/"
}

# edit_loop LINES sets up a benchmark of the edit-run loop: this
# checkout's beamctl, wordcount in a module of its own in $work/wc (the
# current directory then) over LINES lines of input; args are its
# arguments, to be ended with a name for its output, and edit the command
# of a one-line edit of its code.
edit_loop() {
	bench_dirs
	build_beamctl
	wordcount_module "$work/wc"
	input_lines "$1" "$work/input.txt"
	cd "$work/wc"
	args="--input=$work/input.txt --output=$work/out"
	edit=$(code_edit main.go)
}

# time_edits NAME LABEL CMD LABEL CMD times the two commands, warmed
# first, $runs times each after the edit of edit_loop, into $res/NAME.
time_edits() {
	local name=$1
	shift
	warm "$2" "$4"
	timed "$name" 1 "$runs" --prepare "$edit" -n "$1" "$2" -n "$3" "$4"
}

# input_lines N FILE writes N lines of wordcount's sample input to FILE.
input_lines() {
	python3 - "$1" examples/wordcount/testdata/input.txt >"$2" <<'PY'
import sys
n, src = int(sys.argv[1]), open(sys.argv[2]).read().splitlines()
out = sys.stdout
for i in range(n):
    out.write(src[i % len(src)] + "\n")
PY
}

# free_port prints a TCP port that is free on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# listening HOST PORT succeeds once something accepts connections there.
listening() { (exec 3<>"/dev/tcp/$1/$2"); }

# await NAME PID LOG CMD... runs CMD every 0.1 s until it succeeds, for at
# most 30 s; if the process PID exits first, or the time runs out, it
# prints NAME's LOG and exits the script.
await() {
	local name=$1 pid=$2 log=$3
	shift 3
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then
			return
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "$name did not start:" >&2
	cat "$log" >&2
	exit 1
}

# code_edit FILE prints a command that changes FILE's code by one line,
# differently each time it runs, as a user's edit would.
code_edit() {
	echo "printf '\\nfunc init() { _ = %s }\\n' \$(date +%s%N) >> $1"
}

# warm CMD... runs each command line once, quietly, so that the timed
# runs start from warm caches.
warm() {
	local c
	for c; do eval "$c" >/dev/null 2>&1; done
}

# timed NAME WARMUP RUNS ARGS... has hyperfine time the commands ARGS name
# (with -n LABEL COMMAND, after options such as --prepare) RUNS times after
# WARMUP warm-up runs, into $res/NAME.md and $res/NAME.json.
timed() {
	local name=$1 warmup=$2 runs=$3
	shift 3
	hyperfine --warmup "$warmup" --runs "$runs" --export-markdown "$res/$name.md" --export-json "$res/$name.json" "$@"
}

# same_counts PREFIX... prints how many of the outputs agree: one line per
# distinct digest of the sorted lines of the files PREFIX* (a pipeline
# writes its output in shards).
same_counts() {
	local p
	for p; do sort "$p"* | sha256sum; done | uniq -c
}

# medians DIR PREFIX NAME... prints, per NAME, the medians of the two
# commands hyperfine timed into DIR/PREFIX-NAME.json and the second's
# ratio to the first.
medians() {
	python3 - "$@" <<'PY'
import json, sys
res, prefix = sys.argv[1], sys.argv[2]
for name in sys.argv[3:]:
    r = json.load(open(f"{res}/{prefix}-{name}.json"))["results"]
    base, b = r[0]["median"], r[1]["median"]
    print(f"{name:5}  {r[0]['command'][:24]:24} {base:7.3f} s   {r[1]['command'][:32]:32} {b:7.3f} s   {b / base:.2f}x")
PY
}

# watch_edits NAME BASE RUNS EDIT CMD starts CMD, a run --watch with
# --output json, and times RUNS edits (after one warm-up edit) from the
# save to the result line of the run it starts, each run checked DONE;
# $res/NAME.json gets hyperfine's form, the first result the one of
# $res/BASE.json, the second the watch's.
watch_edits() {
	python3 - "$res" "$work" "$@" <<'PY'
import json, signal, statistics, subprocess, sys, threading, time
res, work, name, base, runs, edit, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7]
log = f"{work}/{name}.stderr"
p = subprocess.Popen("exec " + cmd, shell=True, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
def fail(msg):
    p.kill()
    sys.exit(msg + "\n" + open(log).read()[-3000:])
def result(n):
    timer = threading.Timer(120, lambda: p.send_signal(signal.SIGQUIT))
    timer.start()
    try:
        for line in p.stdout:
            try:
                l = json.loads(line)
            except ValueError:
                continue
            if l.get("run") == n:
                if l.get("state") != "DONE":
                    fail(f"run {n}: {l}")
                return l
    finally:
        timer.cancel()
    fail(f"run --watch ended, or gave no result within 2m, before run {n}")
result(1)
times = []
for i in range(runs + 1):
    subprocess.run(edit, shell=True, check=True)
    t0 = time.monotonic()
    result(i + 2)
    if i > 0:
        times.append(time.monotonic() - t0)
p.send_signal(signal.SIGINT)
p.wait()
w = {"command": "beamctl run --watch", "mean": statistics.mean(times), "stddev": statistics.stdev(times),
     "median": statistics.median(times), "min": min(times), "max": max(times), "times": times}
b = json.load(open(f"{res}/{base}.json"))["results"][0]
json.dump({"results": [b, w]}, open(f"{res}/{name}.json", "w"), indent=1)
print(f"  beamctl run --watch, save to result: {w['mean']:.3f} s ± {w['stddev']:.3f} (median {w['median']:.3f}, {runs} runs)")
PY
}

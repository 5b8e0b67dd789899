#!/usr/bin/env bash
# Two soaks. First, beamctl worker-pool: JOBS sequential wordcount jobs submitted
# to the upstream prism job server with --environment external, each
# worker started by one long-running pool. Every 10 jobs it samples the
# pool process: resident memory, open descriptors, threads, and entries in
# its temporary directory. The figure is the growth from job 10 to the
# last (target: flat within noise, at most 5 MiB, 0 descriptors, 0
# entries). Every job must succeed and count the same words.
#
# Then RUNS runs on the embedded runner in one beamctl run --watch session,
# each started by a save of the pipeline's source (the same bytes: the
# build is up to date, so the loop's own cost is what repeats), sampled
# the same way every 10 runs.
#
#   bench/soak.sh [JOBS] [RUNS]      results go to bench/results/soak.txt
source "$(dirname "$0")/lib.sh"
jobs=${1:-300}
runs=${2:-100}
bench_dirs
build_beamctl
prism_pid= pool_pid= watch_pid=
at_exit '[[ -n $watch_pid ]] && stop "$watch_pid"; [[ -n $pool_pid ]] && stop "$pool_pid"; [[ -n $prism_pid ]] && stop "$prism_pid"'

go build -o "$work/prism" github.com/apache/beam/sdks/v2/go/cmd/prism
"$work/beamctl" build ./examples/wordcount --target host --out "$work/dist" >/dev/null 2>&1
head -200 examples/wordcount/testdata/input.txt >"$work/input.txt"

port=$(free_port)
"$work/prism" --job_port="$port" --serve_http=false --log_level=warn >>"$work/prism.log" 2>&1 &
prism_pid=$!
await "prism on port $port" "$prism_pid" "$work/prism.log" listening 127.0.0.1 "$port"

pool=$(free_port)
mkdir -p "$work/pooltmp"
TMPDIR=$work/pooltmp "$work/beamctl" worker-pool --address "127.0.0.1:$pool" >>"$work/pool.log" 2>&1 &
pool_pid=$!
await "worker-pool on port $pool" "$pool_pid" "$work/pool.log" listening 127.0.0.1 "$pool"

# sample N PID TMPDIR prints what process PID holds after job or run N.
sample() {
	local rss fds threads tmp
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$2/status")
	threads=$(awk '/^Threads:/ {print $2}' "/proc/$2/status")
	fds=$(ls "/proc/$2/fd" | wc -l)
	tmp=$(ls -A "$3" | wc -l)
	echo "job=$1 rss_kib=$rss fds=$fds threads=$threads tmp_entries=$tmp"
}

out=$res/soak.txt
{
	echo "# bench/soak.sh $jobs ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(go version | cut -d' ' -f3), $(nproc) CPUs)"
	echo "## worker-pool, $jobs jobs from prism"
	sample 0 "$pool_pid" "$work/pooltmp"
} | tee "$out"
want=
start=$(date +%s)
for i in $(seq 1 "$jobs"); do
	rm -f "$work"/out*
	if ! "$work/beamctl" submit "$work/dist" --endpoint "127.0.0.1:$port" --environment external \
		--environment-config "127.0.0.1:$pool" -- --input="$work/input.txt" --output="$work/out" >"$work/submit.log" 2>&1; then
		echo "job $i failed:" >&2
		cat "$work/submit.log" "$work/pool.log" >&2
		exit 1
	fi
	got=$(sort "$work"/out* | sha256sum)
	want=${want:-$got}
	if [[ $got != "$want" ]]; then
		echo "job $i counted differently" >&2
		exit 1
	fi
	if ((i % 10 == 0)); then sample "$i" "$pool_pid" "$work/pooltmp" | tee -a "$out"; fi
done
echo "# $jobs jobs in $(($(date +%s) - start)) s, every one DONE with the same counts" | tee -a "$out"

# growth SECTION prints the growth from job 10 to the last sample of the
# section of $out headed SECTION.
growth() {
	awk -v section="$1" '
		/^## / { on = index($0, section) > 0; next }
		on && /^job=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			if (v["job"] == 10) { r0 = v["rss_kib"]; f0 = v["fds"]; t0 = v["threads"]; e0 = v["tmp_entries"] }
			r = v["rss_kib"]; f = v["fds"]; t = v["threads"]; e = v["tmp_entries"]; last = v["job"] }
		END { printf "# growth from 10 to %d: rss %+.1f MiB, fds %+d, threads %+d, temp entries %+d\n", last, (r - r0) / 1024, f - f0, t - t0, e - e0 }
	' "$out"
}
growth worker-pool | tee -a "$out"
stop "$pool_pid"
pool_pid=

# The watch session: a module of its own, so that saves touch no file of
# this repository.
wordcount_module "$work/wc"
mkdir -p "$work/watchtmp"
(cd "$work/wc" && TMPDIR=$work/watchtmp exec "$work/beamctl" run --watch . --target host --out "$work/dist-watch" --output json \
	-- --input="$work/input.txt" --output="$work/watch-out") >"$work/watch.json" 2>"$work/watch.log" </dev/null &
watch_pid=$!
# results N waits until the session has printed N result lines.
results() {
	local n=$1 waited=0
	until (($(grep -c '"job_id"' "$work/watch.json" || true) >= n)); do
		if ! kill -0 "$watch_pid" 2>/dev/null || ((waited > 1200)); then
			echo "run --watch stopped at run $n:" >&2
			cat "$work/watch.log" >&2
			exit 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
}
results 1
echo "## run --watch, $runs runs" | tee -a "$out"
sample 1 "$watch_pid" "$work/watchtmp" | tee -a "$out"
start=$(date +%s)
for i in $(seq 2 "$runs"); do
	cp "$work/wc/main.go" "$work/main.go.tmp" && cat "$work/main.go.tmp" >"$work/wc/main.go"
	results "$i"
	if ((i % 10 == 0)); then sample "$i" "$watch_pid" "$work/watchtmp" | tee -a "$out"; fi
done
bad=$(grep '"job_id"' "$work/watch.json" | grep -vc '"state": *"DONE"' || true)
if ((bad > 0)); then
	echo "$bad runs did not end DONE" >&2
	exit 1
fi
echo "# $runs runs in $(($(date +%s) - start)) s after the first, every one DONE" | tee -a "$out"
growth "run --watch" | tee -a "$out"

#!/usr/bin/env bash
# A soak of beamctl worker-pool: JOBS sequential wordcount jobs submitted
# to the upstream prism job server with --environment external, each
# worker started by one long-running pool. Every 10 jobs it samples the
# pool process: resident memory, open descriptors, threads, and entries in
# its temporary directory. The figure is the growth from job 10 to the
# last (target: flat within noise, at most 5 MiB, 0 descriptors, 0
# entries). Every job must succeed and count the same words.
#
#   bench/soak.sh [JOBS]      results go to bench/results/soak.txt
source "$(dirname "$0")/lib.sh"
jobs=${1:-300}
bench_dirs
build_beamctl
prism_pid= pool_pid=
at_exit '[[ -n $pool_pid ]] && stop "$pool_pid"; [[ -n $prism_pid ]] && stop "$prism_pid"'

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

sample() {
	local rss fds threads tmp
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pool_pid/status")
	threads=$(awk '/^Threads:/ {print $2}' "/proc/$pool_pid/status")
	fds=$(ls "/proc/$pool_pid/fd" | wc -l)
	tmp=$(ls -A "$work/pooltmp" | wc -l)
	echo "job=$1 rss_kib=$rss fds=$fds threads=$threads tmp_entries=$tmp"
}

out=$res/soak.txt
{
	echo "# bench/soak.sh $jobs ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(go version | cut -d' ' -f3), $(nproc) CPUs)"
	sample 0
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
	if ((i % 10 == 0)); then sample "$i" | tee -a "$out"; fi
done
echo "# $jobs jobs in $(($(date +%s) - start)) s, every one DONE with the same counts" | tee -a "$out"

# Growth from job 10 to the last sample.
awk '
	/^job=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["job"] == 10) { r0 = v["rss_kib"]; f0 = v["fds"]; t0 = v["threads"]; e0 = v["tmp_entries"] }
		r = v["rss_kib"]; f = v["fds"]; t = v["threads"]; e = v["tmp_entries"]; last = v["job"] }
	END { printf "# growth from job 10 to job %d: rss %+.1f MiB, fds %+d, threads %+d, temp entries %+d\n", last, (r - r0) / 1024, f - f0, t - t0, e - e0 }
' "$out" | tee -a "$out"

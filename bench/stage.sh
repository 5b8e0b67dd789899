#!/usr/bin/env bash
# Measures staging of the unstripped examples/wordcount worker (~130 MB) to
# the upstream prism job server on 127.0.0.1: beamctl's stage.Artifacts
# against the Beam SDK's runnerlib.Stage, side by side in one run. Each
# method runs in a process of its own (peak RSS is per process), twice, in
# the order sdk, beamctl, beamctl-rehash, then back; prism is restarted for
# every process because it keeps staged artifacts in memory.
#
# beamctl stages the way submit does: the worker was hashed when it was
# verified before Prepare, so staging sends it without hashing it again.
# beamctl-rehash touches the worker first, which makes staging hash it while
# sending, as for a file modified moments before.
#
#   bench/stage.sh [RUNS]      results go to bench/results/stage.txt
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
bench_dirs
prism_pid=
stop_prism() {
	if [[ -n $prism_pid ]]; then
		stop "$prism_pid"
		prism_pid=
	fi
}
at_exit stop_prism

# The worker comes first: a file modified in the last two seconds is hashed
# again whenever it is staged.
CGO_ENABLED=0 go build -trimpath -o "$work/worker" ./examples/wordcount
go build -o "$work/prism" github.com/apache/beam/sdks/v2/go/cmd/prism
CGO_ENABLED=0 go build -trimpath -o "$work/stagebench" ./bench/stagebench

start_prism() {
	local port
	port=$(free_port)
	"$work/prism" --job_port="$port" --serve_http=false --log_level=warn >>"$work/prism.log" 2>&1 &
	prism_pid=$!
	await "prism on port $port" "$prism_pid" "$work/prism.log" listening 127.0.0.1 "$port"
	endpoint=127.0.0.1:$port
}

out=$res/stage.txt
{
	echo "# bench/stage.sh $runs  ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(go version | cut -d' ' -f3-), $(nproc) CPUs)"
	echo "# worker: $(stat -c %s "$work/worker") bytes"
} >"$out"
for method in sdk beamctl beamctl-rehash beamctl-rehash beamctl sdk; do
	start_prism
	"$work/stagebench" -endpoint "$endpoint" -worker "$work/worker" -method "$method" -runs "$runs" | tee -a "$out"
	stop_prism
done

# Per method over all runs of both processes: mean and median wall time,
# mean CPU time of the staging process, the larger peak RSS.
awk '
	function fields() { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
	/ run=/ {
		fields(); m = f["method"]; n[m]++; secs[m] += f["seconds"]; cpu[m] += f["cpu_s"]; mb[m] = f["size_mb"]
		all[m, n[m]] = f["seconds"]
	}
	/ runs=/ { fields(); m = f["method"]; if (f["peak_rss_mib"] > rss[m]) rss[m] = f["peak_rss_mib"] }
	function median(m,   i, j, t, a) {
		for (i = 1; i <= n[m]; i++) a[i] = all[m, i]
		for (i = 2; i <= n[m]; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n[m] % 2 ? a[(n[m] + 1) / 2] : (a[n[m] / 2] + a[n[m] / 2 + 1]) / 2
	}
	END {
		print ""
		print "| method | MB/s (mean) | mean s | median s | CPU s per run | peak RSS MiB | throughput vs sdk |"
		print "|---|---:|---:|---:|---:|---:|---:|"
		split("sdk beamctl beamctl-rehash", order, " ")
		for (k = 1; k <= 3; k++) {
			m = order[k]; mean = secs[m] / n[m]
			printf "| %s | %.1f | %.3f | %.3f | %.3f | %.1f | %.2fx |\n", m, mb[m] / mean, mean, median(m), cpu[m] / n[m], rss[m], (secs["sdk"] / n["sdk"]) / mean
		}
		printf "\n%d runs per method of %.1f MB (MB = 10^6 bytes)\n", n["sdk"], mb["sdk"]
	}' "$out" | tee -a "$out"

#!/usr/bin/env bash
# Measures what signing adds to a re-stage of an unchanged pipeline:
# beamctl stage of wordcount's linux/amd64 + linux/arm64 image into a
# registry that already has it, without and with --sign-key, in one
# hyperfine run, and what each re-stage uploads (from stage --output json).
# Signing makes 7 Sigstore bundles (per platform a signature, a provenance
# and an SBOM attestation; the index a signature), each a small referrer
# artifact; the image itself is not sent again.
#
# The registry is Debian's docker-registry on 127.0.0.1 (no referrers API:
# the bundles go into the referrers tag, the slower path). The key is an
# ECDSA P-256 PEM key from openssl, the kind cosign generate-key-pair makes.
#
#   bench/sign.sh [RUNS]      results go to bench/results/sign-<date>.md
source "$(dirname "$0")/lib.sh"
runs=${1:-10}
bench_dirs
out=$res/sign-$(date -u +%Y-%m-%d).md
command -v hyperfine >/dev/null || apt-get install -y hyperfine
command -v docker-registry >/dev/null || apt-get install -y docker-registry
mapfile -t stray < <(compgen -e | grep '^REGISTRY_' || true)
unset "${stray[@]}"

build_beamctl
wordcount_module "$work/wc"
cd "$work/wc"

port=$(free_port)
host=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<-EOF2
	version: 0.1
	log:
	  level: warn
	storage:
	  filesystem:
	    rootdirectory: $work/registry/storage
	http:
	  addr: $host
	  secret: bench-sign
EOF2
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pid=$!
at_exit "stop $pid"
await registry "$pid" "$work/registry/log" curl -fsS --noproxy '*' "http://$host/v2/"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem" 2>/dev/null
"$work/beamctl" build . --boot --target linux/amd64,linux/arm64 --out dist >/dev/null 2>&1
repo=$host/team/wordcount
plain="$work/beamctl stage dist --image $repo:v1"
signed="$plain --sign-key $work/key.pem"
# The image is in the registry before the runs: each run is a re-stage.
$plain >/dev/null 2>&1
$signed >/dev/null 2>&1

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/hyperfine.md" \
	-n "beamctl stage (re-stage)" "$plain" \
	-n "beamctl stage --sign-key (re-stage)" "$signed" >&2

uploads() { "$@" --output json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["bytes_uploaded"], r["blobs_uploaded"], r.get("signatures", 0))'; }
read -r pb pn ps < <(uploads $plain)
read -r sb sn ss < <(uploads $signed)
{
	echo "# Signing on re-stage ($(date -u +%Y-%m-%d))"
	echo
	echo "\`bench/sign.sh $runs\`: wordcount, linux/amd64 + linux/arm64, already in the registry."
	echo
	cat "$work/hyperfine.md"
	echo
	echo "| re-stage | bytes uploaded | blobs uploaded | bundles |"
	echo "|:---|---:|---:|---:|"
	echo "| beamctl stage | $pb | $pn | $ps |"
	echo "| beamctl stage --sign-key | $sb | $sn | $ss |"
} >"$out"
cat "$out"

#!/usr/bin/env bash
# Measures pushing worker images for linux/amd64 (the host) and linux/arm64
# with ko against beamctl stage, in one run, on examples/wordcount in a
# module of its own:
#
#   first   first push into a fresh repository with an empty image-tool
#           cache ($XDG_CACHE_HOME): a new repository and a new cache for
#           every run, so nothing is reused
#   repush  the unchanged pipeline pushed again into the same repository,
#           caches warm
#
# and, for one push of each, the bytes it sent (from the registry's access
# log) and the compressed size of its linux/amd64 image (the sum of the
# layer sizes in its manifest). The Go build cache stays warm throughout:
# this compares the image tools, not the compiler.
#
# Each tool runs as a user would run it, plus a variant for reference: ko
# with its defaults and with -ldflags=-s -w (beamctl strips its workers,
# ko does not); beamctl with its own minimal base layer and with --base
# set to ko's base image.
#
# Nothing leaves the machine: two docker-registry processes (Debian's CNCF
# distribution registry) on 127.0.0.1 stand in for the public registry the
# base image comes from and for the user's own registry. Being two, a push
# cannot mount the base layers from the base's repository, as it could not
# in real use either. ko and crane are installed at pinned versions into
# bench/.tools; hyperfine and docker-registry come from Debian.
#
#   bench/image.sh [RUNS]      results go to bench/results/image-<date>.md
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
if ((runs < 5)); then
	echo "bench/image.sh: RUNS must be at least 5 for the median to mean much" >&2
	exit 2
fi
bench_dirs
out=$res/image-$(date -u +%Y-%m-%d).md

ko_version=v0.19.1
crane_version=v0.22.1
tools=$root/bench/.tools
platforms=linux/amd64,linux/arm64

# The system's hyperfine and registry, from Debian when missing.
need() {
	command -v "$1" >/dev/null || apt-get install -y "$2"
}
need hyperfine hyperfine
need docker-registry docker-registry

# Pinned, so that results from different days compare the same ko.
install_tool() { # NAME PACKAGE VERSION
	if [[ $("$tools/$1" version 2>/dev/null) != "$3" ]]; then
		GOBIN=$tools go install "$2@$3"
	fi
}
install_tool ko github.com/google/ko "$ko_version"
install_tool crane github.com/google/go-containerregistry/cmd/crane "$crane_version"
ko=$tools/ko
crane=$tools/crane

# Every run gets a fresh XDG_CACHE_HOME, which would move the Go build cache
# with it: pin that one where it is, warm.
GOCACHE=$(go env GOCACHE)
export GOCACHE
# beamctl's caches follow XDG_CACHE_HOME only when not given one.
unset BEAMCTL_CACHE_DIR
# The registry reads REGISTRY_* variables as overrides of its configuration.
mapfile -t stray < <(compgen -e | grep '^REGISTRY_' || true)
unset "${stray[@]}"

go build -o "$work/beamctl" ./cmd/beamctl
wordcount_module "$work/wc"

# start_registry NAME starts a registry storing under $work/registry-NAME
# and sets host to its address. Its access log, one line a request, goes to
# access.log there.
start_registry() {
	local dir=$work/registry-$1 port
	mkdir -p "$dir/storage"
	port=$(free_port)
	host=127.0.0.1:$port
	cat >"$dir/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: false
		storage:
		  filesystem:
		    rootdirectory: $dir/storage
		http:
		  addr: $host
		  secret: bench-image-$1
	EOF
	docker-registry serve "$dir/config.yml" >"$dir/access.log" 2>"$dir/registry.log" &
	local pid=$!
	at_exit "stop $pid"
	await "registry $1 on $host" "$pid" "$dir/registry.log" curl -fsS --noproxy '*' "http://$host/v2/"
}
start_registry base
base_host=$host
start_registry target
target=$host
storage=$work/registry-target/storage
access=$work/registry-target/access.log

# A small static base for both platforms, like distroless/static: a
# nonroot user, /tmp and CA certificates. ko's default base is on cgr.dev,
# out of reach here; beamctl --base gets the same one.
mkdir -p "$work/base-root/etc/ssl/certs" "$work/base-root/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/base-root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$work/base-root/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$work/base-root/etc/ssl/certs/"
chmod 1777 "$work/base-root/tmp"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/base-root" -cf "$work/base.tar" etc tmp
base=$base_host/base:static
manifests=()
for p in ${platforms//,/ }; do
	tag=$base_host/base:${p#*/}
	"$crane" append --oci-empty-base -f "$work/base.tar" -t "$tag" >/dev/null 2>>"$work/crane.log"
	# An empty base has no platform; the index needs one per manifest.
	"$crane" mutate --set-platform "$p" --user 65532 -t "$tag" "$tag" >/dev/null 2>>"$work/crane.log"
	manifests+=(-m "$tag")
done
"$crane" index append "${manifests[@]}" -t "$base" >/dev/null 2>>"$work/crane.log"
export KO_DEFAULTBASEIMAGE=$base

# ko's only knob for ldflags on a bare ko build is its configuration file.
cat >"$work/ko-stripped.yaml" <<-'EOF'
	defaultLdflags: ["-s", "-w"]
EOF

# The variants measured, in table order, with their labels.
variants=(ko ko-stripped)
declare -A label=(
	[ko]="ko build (defaults)"
	[ko-stripped]="ko build, ldflags -s -w"
	[beamctl]="beamctl stage"
	[beamctl-base]="beamctl stage --base (ko's base)"
)
notes=()
stage_help=$("$work/beamctl" stage --help 2>&1 || true)
if [[ $stage_help == *--image* ]]; then
	variants+=(beamctl)
	if [[ $stage_help == *--base* ]]; then
		variants+=(beamctl-base)
	else
		notes+=("beamctl stage has no --base yet: the beamctl --base row was skipped.")
	fi
else
	notes+=("beamctl stage has no --image yet: the beamctl rows were skipped.")
fi
complete=true
((${#notes[@]} == 0)) || complete=false

# cmd VARIANT REPO XDG prints the command line that pushes the variant's
# image to REPO with XDG_CACHE_HOME=XDG, for eval and for hyperfine.
cmd() {
	local env="XDG_CACHE_HOME=$3"
	case $1 in
	ko) echo "$env KO_DOCKER_REPO=$2 $ko build --bare --platform=$platforms ." ;;
	ko-stripped) echo "$env KO_CONFIG_PATH=$work/ko-stripped.yaml KO_DOCKER_REPO=$2 $ko build --bare --platform=$platforms ." ;;
	beamctl) echo "$env $work/beamctl stage . --image $2 --target $platforms" ;;
	beamctl-base) echo "$env $work/beamctl stage . --image $2 --target $platforms --base $base" ;;
	esac
}

# uploaded OFFSET REPO prints the bytes sent to REPO since the access log
# was OFFSET bytes long, the number of blobs and manifests they were, as
# "BYTES BLOBS MANIFESTS". A blob counts when an upload completes (201 to
# the PUT closing the session, or to a POST carrying the digest); a
# cross-repository mount sends nothing and does not count. Sizes come from
# the registry's storage. It first has the registry log a marked request:
# once that shows, the log holds every request before it.
uploaded() {
	python3 - "$access" "$storage" "$target" "$1" "$2" <<-'PY'
		import os, re, sys, time, urllib.parse, urllib.request, uuid
		log, storage, host, offset, repo = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
		token = uuid.uuid4().hex
		opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
		opener.open(f"http://{host}/v2/?bench-mark={token}").read()
		deadline = time.time() + 30
		while token not in open(log, errors="replace").read():
		    if time.time() > deadline:
		        sys.exit(f"the registry did not log {token}")
		    time.sleep(0.05)
		v2 = os.path.join(storage, "docker/registry/v2")
		def size(digest):
		    algo, hex_ = digest.split(":")
		    return os.path.getsize(os.path.join(v2, "blobs", algo, hex_[:2], hex_, "data"))
		request = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" ([0-9]{3}) ')
		prefix = f"/v2/{repo}/"
		total = blobs = manifests = 0
		with open(log, "rb") as f:
		    f.seek(offset)
		    lines = f.read().decode(errors="replace").splitlines()
		for line in lines:
		    m = request.search(line)
		    if not m or m.group(3) != "201":
		        continue
		    method, u = m.group(1), urllib.parse.urlsplit(m.group(2))
		    if not u.path.startswith(prefix):
		        continue
		    rest, q = u.path[len(prefix):], urllib.parse.parse_qs(u.query)
		    if rest.startswith("blobs/uploads/") and (method == "PUT" or (method == "POST" and "digest" in q)):
		        total += size(q["digest"][0])
		        blobs += 1
		    elif rest.startswith("manifests/") and method == "PUT":
		        ref = rest[len("manifests/"):]
		        if ":" not in ref:
		            ref = open(os.path.join(v2, "repositories", repo, "_manifests/tags", ref, "current/link")).read().strip()
		        total += size(ref)
		        manifests += 1
		print(total, blobs, manifests)
	PY
}

# amd64_size REF prints the sum of the layer sizes of REF's linux/amd64
# image: what a node of that platform pulls, compressed.
amd64_size() {
	python3 - "$crane" "$1" <<-'PY'
		import json, subprocess, sys
		crane, ref = sys.argv[1], sys.argv[2]
		def manifest(r):
		    return json.loads(subprocess.run([crane, "manifest", r], check=True, capture_output=True).stdout)
		m = manifest(ref)
		if "manifests" in m:
		    d = [x for x in m["manifests"] if x.get("platform", {}).get("os") == "linux" and x["platform"].get("architecture") == "amd64"]
		    m = manifest(ref.split("@")[0] + "@" + d[0]["digest"])
		print(sum(layer["size"] for layer in m["layers"]))
	PY
}

# push SCENARIO VARIANT REPO XDG pushes once, outside hyperfine, and
# appends to probes.tsv the image reference it printed and what it uploaded.
push() {
	local scenario=$1 before ref
	shift
	before=$(stat -c %s "$access")
	if ! ref=$(cd "$work/wc" && eval "$(cmd "$@")" 2>"$work/push.log"); then
		echo "$1 failed to push to $2:" >&2
		cat "$work/push.log" >&2
		exit 1
	fi
	ref=$(grep -o "^$target/[^ ]*@sha256:[0-9a-f]*" <<<"$ref" | tail -n1) || {
		echo "$1 printed no $target/...@sha256: reference" >&2
		exit 1
	}
	printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$1" "$ref" "$(uploaded "$before" "${2#"$target"/}")" "$(amd64_size "$ref")" >>"$work/probes.tsv"
}

# One push of each variant into a fresh repository with a fresh cache, then
# one more of the unchanged pipeline into the same one: what each sends.
# The first pushes also warm the Go build cache for every variant's flags.
for v in "${variants[@]}"; do
	echo "== $v: one first push and one re-push, for bytes and size"
	push first "$v" "$target/$v-probe" "$work/xdg-$v"
	push repush "$v" "$target/$v-probe" "$work/xdg-$v"
done

cd "$work/wc"

echo "== first push: a fresh repository and an empty cache every run"
# The prepare step counts runs; the command reads the count when it runs.
echo 0 >"$work/count"
prepare="n=\$(cat $work/count); echo \$((n + 1)) >$work/count; rm -rf $work/xdg-first; mkdir $work/xdg-first"
first=()
for v in "${variants[@]}"; do
	first+=(-n "${label[$v]}" "$(cmd "$v" "$target/$v-first-\$(cat $work/count)" "$work/xdg-first")")
done
hyperfine --warmup 1 --runs "$runs" --prepare "$prepare" --export-json "$work/first.json" "${first[@]}"
# Every run, warm-up included, must have had a repository of its own.
for v in "${variants[@]}"; do
	n=$(find "$storage/docker/registry/v2/repositories" -mindepth 1 -maxdepth 1 -name "$v-first-*" | wc -l)
	if ((n != runs + 1)); then
		echo "$v pushed into $n repositories in $((runs + 1)) runs" >&2
		exit 1
	fi
done

echo "== re-push of the unchanged pipeline, caches warm"
repush=()
for v in "${variants[@]}"; do
	repush+=(-n "${label[$v]}" "$(cmd "$v" "$target/$v-probe" "$work/xdg-$v")")
done
hyperfine --warmup 1 --runs "$runs" --export-json "$work/repush.json" "${repush[@]}"

labels=()
for v in ko ko-stripped beamctl beamctl-base; do
	labels+=("$v=${label[$v]}")
done
{
	echo "# bench/image.sh $runs  ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(go version | cut -d' ' -f3-), $(nproc) CPUs)"
	echo
	echo "beamctl $(git -C "$root" rev-parse --short HEAD), ko $ko_version, crane $crane_version, docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')."
	echo "Images for $platforms of examples/wordcount, pushed to a local registry; base $(stat -c %s "$work/base.tar") bytes uncompressed."
	echo "ko runs with its defaults (-trimpath, CGO_ENABLED=0, no -ldflags, an SPDX SBOM pushed beside each image) unless the row says otherwise."
	echo
	python3 - "$work/first.json" "$work/repush.json" "$work/probes.tsv" "${labels[@]}" <<-'PY'
		import json, sys
		first, repush, probes = sys.argv[1:4]
		labels = dict(a.split("=", 1) for a in sys.argv[4:])
		order = list(labels)
		times = {}
		for scenario, path in (("first", first), ("repush", repush)):
		    for r in json.load(open(path))["results"]:
		        times[scenario, r["command"]] = r
		pushed = {}
		for line in open(probes):
		    scenario, variant, ref, upload, size = line.rstrip("\n").split("\t")
		    pushed[scenario, variant] = (ref, [int(x) for x in upload.split()], int(size))
		def human(n):
		    for unit, div in (("MiB", 2**20), ("KiB", 2**10)):
		        if n >= div:
		            return f"{n / div:.2f} {unit}"
		    return f"{n} B"
		scenarios = {"first": "first push (fresh repo, empty cache)", "repush": "re-push, unchanged (warm)"}
		print("| scenario | tool | median | min–max | bytes uploaded | image size (linux/amd64) |")
		print("|:---|:---|---:|---:|---:|---:|")
		notes = []
		for scenario in scenarios:
		    for v in order:
		        name = labels[v]
		        if (scenario, v) not in pushed:
		            print(f"| {scenarios[scenario]} | {name} | skipped | | | |")
		            continue
		        t = times[scenario, name]
		        ref, (total, blobs, manifests), size = pushed[scenario, v]
		        print(f"| {scenarios[scenario]} | {name} | {t['median']:.2f} s | {t['min']:.2f}–{t['max']:.2f} s "
		              f"| {human(total)} ({blobs} blobs, {manifests} manifests) | {human(size)} |")
		        if scenario == "repush" and ref != pushed["first", v][0]:
		            notes.append(f"{name}: the re-push changed the image, {pushed['first', v][0]} to {ref}.")
		print()
		print("Bytes uploaded: blobs and manifests a single push sent, from the registry's access log; "
		      "a blob the registry already holds in that repository is not sent again. "
		      "Image size: the compressed layers of the linux/amd64 image, what a node of that platform pulls.")
		for n in notes:
		    print()
		    print(n)
	PY
	for n in "${notes[@]}"; do
		echo
		echo "$n"
	done
} >"$out"
cat "$out"
if ! $complete; then
	echo "bench/image.sh: $out is partial (see its notes)" >&2
fi

# Set-up shared by the benchmark scripts; source it from the repository
# root.

# wordcount_module DIR copies examples/wordcount into DIR as a module of its
# own, so a benchmark can edit it without touching the repository.
wordcount_module() {
	mkdir -p "$1"
	cp examples/wordcount/main.go "$1/"
	sed 's#^module .*#module example.com/wordcount#' examples/linestats/go.mod >"$1/go.mod"
	cp examples/linestats/go.sum "$1/"
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

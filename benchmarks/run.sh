#!/usr/bin/env bash
# Runs the side-by-side benchmarks and writes, in results/ (or $OUT):
#   raw.txt        the go test output
#   benchstat.txt  benchstat's comparison, libraries side by side
#   table.md       a markdown table per workload, with each library's ratio to
#                  otelpatterns, headed by the date, the machine and the command
#
#   bash benchmarks/run.sh                 # the whole set, -count=6
#   COUNT=10 BENCH=Pool bash benchmarks/run.sh
#   SMOKE=1 bash benchmarks/run.sh         # each benchmark once: do they build and run?
#   REUSE=1 bash benchmarks/run.sh         # only remake the tables from results/raw.txt
set -euo pipefail
cd "$(dirname "$0")"

bench=${BENCH:-.}
if [ "${SMOKE:-}" = 1 ]; then
	go test -run '^$' -bench "$bench" -benchtime=1x -count=1 . > /dev/null
	echo "benchmarks: smoke run ok"
	exit 0
fi

count=${COUNT:-6}
out=${OUT:-results}
benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat > /dev/null || go install "golang.org/x/perf/cmd/benchstat@$benchstat_version"

mkdir -p "$out"
if [ "${REUSE:-}" != 1 ]; then
	echo "== go test -run '^\$' -bench '$bench' -count=$count ."
	go test -run '^$' -bench "$bench" -count="$count" . | tee "$out/raw.txt"
fi
benchstat -col /lib "$out/raw.txt" > "$out/benchstat.txt"
{
	echo "Measured $(date -u +%Y-%m-%d) on $(go env GOOS)/$(go env GOARCH), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //' || echo unknown CPU)), $(go version | cut -d' ' -f3),"
	echo "with \`cd benchmarks && COUNT=$count BENCH='$bench' bash run.sh\` (the medians of $count runs; ratios are to otelpatterns, above 1 means slower than it)."
	echo
	go run ./cmd/benchtable < "$out/raw.txt"
} > "$out/table.md"
echo "== wrote $out/raw.txt, $out/benchstat.txt and $out/table.md"

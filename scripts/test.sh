#!/usr/bin/env bash
# Every check of every module in this repository: gofmt, go mod tidy, go vet,
# staticcheck, go test -race, and each benchmark run once. This is the
# README's test command; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

staticcheck_version=0.8.2
gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
if ! staticcheck -version 2>/dev/null | grep -qF "($staticcheck_version)"; then
	echo "== installing staticcheck v$staticcheck_version"
	go install "honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
	printf 'gofmt would change:\n%s\n' "$unformatted" >&2
	exit 1
fi

started=$SECONDS
modules=0
packages=0
for mod in $(git ls-files --cached --others --exclude-standard 'go.mod' '*/go.mod' | xargs -n1 dirname | sort); do
	echo "== module ./$mod"
	(
		cd "$mod"
		go mod tidy -diff
		go vet ./...
		staticcheck ./...
		go test -race -count=1 -timeout=5m ./...
		echo "-- benchmarks, once each (a smoke test that they build and run)"
		go test -run '^$' -bench . -benchtime=1x ./... > /dev/null
	)
	modules=$((modules + 1))
	packages=$((packages + $(cd "$mod" && go list ./... | wc -l)))
done
echo "== passed: $modules modules, $packages packages, in $((SECONDS - started)) s"

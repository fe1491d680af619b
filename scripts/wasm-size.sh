#!/usr/bin/env bash
# Prints the size of the shipped WebAssembly module(s): raw, gzip -9 and
# brotli -q 11, built as scripts/build-site.sh builds them.
#
#   scripts/wasm-size.sh [PACKAGE...]     (default: ./wasm)
#
# With WASMSIZE_TABLE=1 it also builds each package with its symbols and
# prints the code bytes by Go package (internal/wasmsize).
# Environment: GO (go binary), WASM_GCFLAGS (as in scripts/build-site.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
command -v brotli >/dev/null || { echo "wasm-size: brotli is missing (apt-get install brotli)" >&2; exit 1; }
[ $# -gt 0 ] || set -- ./wasm
gcflags=${WASM_GCFLAGS-github.com/flowercdn/flower/...=-l}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }
total_raw=0 total_gz=0 total_br=0
printf '%-28s %10s %10s %10s\n' module raw gzip brotli
for pkg in "$@"; do
	out=$tmp/$(echo "$pkg" | tr '/.' '__').wasm
	(cd "$repo" && GOOS=js GOARCH=wasm CGO_ENABLED=0 "$GO" build -gcflags="$gcflags" -ldflags="-s -w" -o "$out" "$pkg")
	raw=$(stat -c %s "$out")
	gz=$(gzip -9 -n -c "$out" | wc -c)
	br=$(brotli -q 11 -c "$out" | wc -c)
	total_raw=$((total_raw + raw)) total_gz=$((total_gz + gz)) total_br=$((total_br + br))
	printf '%-28s %10s %10s %10s\n' "$pkg" "$(mb "$raw")" "$(mb "$gz")" "$(mb "$br")"
	if [ "${WASMSIZE_TABLE:-}" = 1 ]; then
		(cd "$repo" && GOOS=js GOARCH=wasm CGO_ENABLED=0 "$GO" build -gcflags="$gcflags" -o "$out.sym" "$pkg" &&
			"$GO" run ./internal/wasmsize -pkg "$pkg" -n 30 "$out.sym")
	fi
done
if [ $# -gt 1 ]; then
	printf '%-28s %10s %10s %10s\n' total "$(mb "$total_raw")" "$(mb "$total_gz")" "$(mb "$total_br")"
fi

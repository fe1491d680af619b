#!/usr/bin/env bash
# Builds the signed demo site, ready for `flower origin --dir SITE_DIR`.
#
#   scripts/build-site.sh SITE_DIR BASE_URL BOOTSTRAP_URL KEYFILE
#
#   SITE_DIR       output directory (emptied first if it holds an earlier build)
#   BASE_URL       the origin the site is served at, e.g. http://127.0.0.1:8080
#   BOOTSTRAP_URL  the bootstrap service pages use, e.g. http://127.0.0.1:7700
#   KEYFILE        the site's private key; made with `flower keygen` if missing
#
# It copies site/demo/, the generated pictures and video (`flower demo-assets`,
# cached under $FLOWER_CACHE), the browser peer (site/flower/, site/flower-sw.js,
# Go's wasm_exec.js and ./wasm built as flower/flower.wasm, with .br and .gz
# copies), fills in the script tag's data-bootstrap and data-site-key (pages and
# the visitor dashboard, flower/dashboard.html), and
# signs the site with `flower sign`. Missing tools (brotli, ffmpeg) are
# installed with apt-get when running as root.
#
# Environment: GO (go binary), FLOWER (a built flower binary; default: built
# into the cache), FLOWER_CACHE (default bin/cache), WASM_GCFLAGS (the wasm
# build's -gcflags; default: no inlining in github.com/flowercdn/flower/...),
# WASM_LDFLAGS (its -ldflags; default "-s -w"; WASM_LDFLAGS=" " keeps the
# function names, for a DevTools CPU profile of the peer).
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 SITE_DIR BASE_URL BOOTSTRAP_URL KEYFILE" >&2
	exit 2
fi
site=$1 base=${2%/} boot=${3%/} keyfile=$4
repo=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
cache=${FLOWER_CACHE:-$repo/bin/cache}
marker=.flower-demo-site
export CGO_ENABLED=0

die() { echo "build-site: $*" >&2; exit 1; }
url_re='^https?://[A-Za-z0-9.:-]+(:[0-9]+)?$|^https?://\[[0-9A-Fa-f:]+\](:[0-9]+)?$'
[[ $base =~ $url_re ]] || die "BASE_URL $base: want scheme://host[:port]"
[[ $boot =~ $url_re ]] || die "BOOTSTRAP_URL $boot: want scheme://host[:port]"

# need CMD PACKAGE: install a missing tool with apt-get (CI runs as root on Debian).
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "build-site: installing $2 (apt-get)" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "$2" >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$2" >/dev/null; } ||
			die "could not install $2"
		command -v "$1" >/dev/null 2>&1 && return 0
	fi
	die "$1 is missing; install the $2 package"
}
need brotli brotli
need gzip gzip
need ffmpeg ffmpeg

# The browser peer's sources (issue 9) must be there.
missing=()
for f in wasm site/flower/flower.js site/flower-sw.js; do
	[ -e "$repo/$f" ] || missing+=("$f")
done
[ ${#missing[@]} -eq 0 ] || die "the browser peer is missing: ${missing[*]}"
wasm_exec=$("$GO" env GOROOT)/lib/wasm/wasm_exec.js
[ -f "$wasm_exec" ] || wasm_exec=$("$GO" env GOROOT)/misc/wasm/wasm_exec.js
[ -f "$wasm_exec" ] || die "wasm_exec.js not found under $("$GO" env GOROOT)"

mkdir -p "$cache"
if [ -z "${FLOWER:-}" ]; then
	FLOWER=$cache/flower
	(cd "$repo" && "$GO" build -o "$FLOWER" ./cmd/flower) || die "go build ./cmd/flower failed"
fi

# The output directory: new, or an earlier build (it holds the marker file).
# It is emptied in place, so a server already serving it keeps working.
if [ -e "$site" ]; then
	[ -d "$site" ] || die "$site is not a directory"
	if [ -n "$(ls -A "$site")" ] && [ ! -e "$site/$marker" ]; then
		die "$site is not empty and holds no earlier demo build ($marker); refusing to empty it"
	fi
	find "$site" -mindepth 1 -maxdepth 1 ! -name "$marker" -exec rm -rf {} +
fi
mkdir -p "$site/flower"
: >"$site/$marker"

# Pages, styles, scripts.
cp -R "$repo/site/demo/." "$site/"

# Generated media, cached by the generator's source and ffmpeg's version.
key=$( { cat "$repo"/site/demogen/*.go; ffmpeg -version | head -1; } | sha256sum | cut -c1-16)
assets=$cache/demo-assets-$key
if [ ! -d "$assets" ]; then
	tmp=$(mktemp -d "$cache/demo-assets.XXXXXX")
	"$FLOWER" demo-assets --out "$tmp" >/dev/null || { rm -rf "$tmp"; die "flower demo-assets failed"; }
	mv "$tmp" "$assets" 2>/dev/null || rm -rf "$tmp" # another build won the race
fi
cp -R "$assets/." "$site/"

# The browser peer.
cp -R "$repo/site/flower/." "$site/flower/"
cp "$repo/site/flower-sw.js" "$site/flower-sw.js"
cp "$wasm_exec" "$site/flower/wasm_exec.js"
# No inlining in our own packages: 3% smaller with brotli (docs/browser.md,
# "Size"); the per-byte work (hashing, copying) is in the standard library,
# which keeps its inlining. scripts/wasm-size.sh builds the same way.
wasm_gcflags=${WASM_GCFLAGS-github.com/flowercdn/flower/...=-l}
(cd "$repo" && GOOS=js GOARCH=wasm "$GO" build -gcflags="$wasm_gcflags" -ldflags="${WASM_LDFLAGS--s -w}" -o "$site/flower/flower.wasm" ./wasm) ||
	die "GOOS=js GOARCH=wasm go build ./wasm failed"
# brotli -q 11 takes a while on a 10 MB module: cache by content.
sum=$(sha256sum "$site/flower/flower.wasm" | cut -c1-32)
for enc in br gz; do
	c=$cache/flower-wasm-$sum.$enc
	if [ ! -f "$c" ]; then
		case $enc in
		br) brotli -q 11 -c "$site/flower/flower.wasm" >"$c.tmp.$$" ;;
		gz) gzip -9 -n -c "$site/flower/flower.wasm" >"$c.tmp.$$" ;;
		esac
		mv "$c.tmp.$$" "$c"
	fi
	cp "$c" "$site/flower/flower.wasm.$enc"
done

# The key, and the script tag's attributes.
if [ ! -f "$keyfile" ]; then
	mkdir -p "$(dirname "$keyfile")"
	"$FLOWER" keygen --out "$keyfile" >/dev/null
fi
pub=$("$FLOWER" keygen --pub "$keyfile")
for f in "$site"/*.html "$site"/flower/dashboard.html; do
	sed -i -e "s|data-bootstrap=\"BOOTSTRAP_URL\"|data-bootstrap=\"$boot\"|" \
		-e "s|data-site-key=\"SITE_KEY\"|data-site-key=\"$pub\"|" "$f"
done

# Sign. Pages and the peer's own files match no share pattern: not shared.
skipped=$(mktemp)
trap 'rm -f "$skipped"' EXIT
"$FLOWER" sign --key "$keyfile" --dir "$site" --base "$base" \
	--share '/img/*' --share '/css/*' --share '/js/*' --share '/video/*' --share '/me/*' --share '/live/*' 2>"$skipped" ||
	{ cat "$skipped" >&2; die "flower sign failed"; }
echo "build-site: $site for $base, bootstrap $boot, key $pub; $(grep -c 'skipped' "$skipped" || true) files not shared (pages, /flower/)"

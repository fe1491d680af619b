#!/usr/bin/env bash
# Installs what the browser end-to-end tests need: Debian's `chromium` (the
# headless browser that tests/browser drives), `brotli` (to measure and ship
# compressed sizes) and `ffmpeg` (the demo site's video, site/demogen). Quiet and quick when both are present; otherwise
# installs them with apt-get, as root or through sudo, and runs
# `apt-get update` only when the install fails without it.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v brotli >/dev/null 2>&1 || need+=(brotli)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	echo "install-browser: need ${need[*]}; run as root or with passwordless sudo:" >&2
	echo "  apt-get update && apt-get install -y ${need[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-browser: need ${need[*]}, and apt-get is missing (Debian/Ubuntu only)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
install() { "${as_root[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"; }
echo "install-browser: installing ${need[*]}" >&2
if ! install >/dev/null; then
	echo "install-browser: install failed; running apt-get update and retrying" >&2
	"${as_root[@]}" apt-get update -q >/dev/null
	install >/dev/null
fi
echo "install-browser: $(chromium --version 2>/dev/null || echo 'chromium installed')" >&2

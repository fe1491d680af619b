#!/usr/bin/env bash
# `make run`: the Flower-CDN demo on this machine. Builds the binaries and the
# signed demo site, then runs, until Ctrl-C:
#   - the bootstrap service   (bin/flower-bootstrap)  on $BOOT_ADDR   (127.0.0.1:7700)
#   - the demo origin         (bin/flower origin)     on $ORIGIN_ADDR (127.0.0.1:8080)
#   - one native seeder       (bin/flower peer --prefetch), its cache in bin/demo/seeder
# Logs: the origin's requests on this terminal and in bin/demo/origin.jsonl;
# the bootstrap's and the seeder's in bin/demo/*.log.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
MAKE=${MAKE:-make}
BOOT_ADDR=${BOOT_ADDR:-127.0.0.1:7700}
ORIGIN_ADDR=${ORIGIN_ADDR:-127.0.0.1:8080}
boot=http://$BOOT_ADDR
site=http://$ORIGIN_ADDR
run=bin/demo

command -v curl >/dev/null 2>&1 || {
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl >/dev/null
	else
		echo "run-demo: curl is missing" >&2
		exit 1
	fi
}

"$MAKE" --no-print-directory build site GO="$GO" SITE_BASE="$site" SITE_BOOTSTRAP="$boot"
mkdir -p "$run"

pids=()
names=()
stop_all() {
	trap - EXIT INT TERM
	[ ${#pids[@]} -eq 0 ] && return
	echo
	echo "run-demo: stopping ${names[*]}"
	local i
	for i in "${!pids[@]}"; do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		local alive=0
		for i in "${!pids[@]}"; do
			kill -0 "${pids[$i]}" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.2
	done
	for i in "${!pids[@]}"; do
		if kill -0 "${pids[$i]}" 2>/dev/null; then
			echo "run-demo: ${names[$i]} did not stop in 10 s; killing it" >&2
			kill -KILL "${pids[$i]}" 2>/dev/null || true
		fi
	done
	wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, remembered for stop_all.
start() {
	local name=$1
	shift
	"$@" &
	pids+=($!)
	names+=("$name")
}

# wait_for NAME LOG WHAT CHECK...: polls CHECK (a command) until it succeeds,
# failing if the last started process exits or 60 s pass.
wait_for() {
	local name=$1 log=$2 what=$3
	shift 3
	local pid=${pids[-1]}
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then
			echo "run-demo: $name is up ($what)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run-demo: $name exited; the end of $log:" >&2
			tail -n 20 "$log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	echo "run-demo: $name did not come up in 60 s; the end of $log:" >&2
	tail -n 20 "$log" >&2 || true
	exit 1
}

# The operator page's token: new for each run, in the environment rather
# than on the command line (docs/operator-metrics.md).
operator_token=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export FLOWER_OPERATOR_TOKEN=$operator_token
start bootstrap ./bin/flower-bootstrap --listen "$BOOT_ADDR" --allow-origins "$site" >"$run/bootstrap.log" 2>&1
unset FLOWER_OPERATOR_TOKEN
wait_for bootstrap "$run/bootstrap.log" "$boot" curl -fsS "$boot/healthz"

: >"$run/origin.jsonl"
start origin ./bin/flower origin --dir bin/site --listen "$ORIGIN_ADDR" --log "$run/origin.jsonl"
wait_for origin "(this terminal)" "$site" curl -fsS "$site/.well-known/flower-cdn.json"

start seeder ./bin/flower peer --bootstrap "$boot" --site "$site" --cache-dir "$run/seeder" \
	--prefetch --webrtc-loopback >"$run/seeder.log" 2>&1
wait_for seeder "$run/seeder.log" "prefetched the site's signed objects" grep -q "serving" "$run/seeder.log"

cat <<EOF

  Flower-CDN demo running. Open $site/ in Chromium or Firefox.

  Dashboards:
  - the visitor's (what this browser keeps, serves and fetched; pause, upload
    cap, clear, leave): $site/flower/dashboard.html
  - the operator's (offload ratio, peers by locality and role, P2P and origin
    bytes over time; peers report every 30 s):
    $boot/dashboard?token=$operator_token
    and the same as Prometheus metrics: $boot/metrics (flower_site_*)

  What to look at:
  - DevTools > Application > Service Workers: /flower-sw.js, activated for $site/
  - DevTools > Console: await flower.stats()   (peer role, hits from peers, bytes served)
  - DevTools > Network: with the worker in control, pictures and the video on
    gallery.html, garden.html and video.html come "from ServiceWorker"
  - this terminal: the origin's request log (msg=request path=... status=...);
    objects served by peers never show up here. Also in $run/origin.jsonl.
  - a second browser profile (or a private window) is a second peer:
    open the gallery there after the first and watch the origin stay quiet
  - $site/about.html: log in (/me/login) for a private badge that is never shared
  - the seeder's log: $run/seeder.log; the bootstrap's: $run/bootstrap.log

  Ctrl-C stops all three.

EOF
# Wait for Ctrl-C, or for one of them to exit on its own. The terminal's
# SIGINT also reaches the three (they are in this process group): one that
# stops first is not a failure.
interrupted=
trap 'interrupted=1' INT TERM
while [ -z "$interrupted" ]; do
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			sleep 0.5
			[ -n "$interrupted" ] && break 2
			echo "run-demo: ${names[$i]} exited" >&2
			exit 1
		fi
	done
	sleep 1 || true
done
exit 0

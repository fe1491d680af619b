#!/usr/bin/env bash
# Benchmark the bootstrap service with `flower loadtest` against the real
# binary on this machine (client and server share it). Prints one JSON object
# per scenario on stdout; progress goes to stderr.
#
#   scripts/bench-bootstrap.sh            # 10k and 50k peers
#   BENCH_100K=1 scripts/bench-bootstrap.sh   # also 100k
#   RATE=2 DURATION=20s scripts/bench-bootstrap.sh
#
# One process can hold at most RLIMIT_NOFILE sockets. The script raises
# `ulimit -n` to the hard limit; when that is still below the peers wanted, the
# scenario runs several bootstrap instances joined over NATS (a nats-server
# built from the Go module) and the load generator splits itself into worker
# processes, so the RSS reported is the sum over instances.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-2}            # signalling messages per second per peer
DURATION=${DURATION:-20s}
PAYLOAD=${PAYLOAD:-200}
BIN=${BIN:-bin}
BASEPORT=${BASEPORT:-17700}
GO=${GO:-go}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
echo "open-file limit: $NOFILE (hard $(ulimit -Hn))" >&2

mkdir -p "$BIN"
$GO build -o "$BIN/flower-bootstrap" ./cmd/flower-bootstrap
$GO build -o "$BIN/flower" ./cmd/flower
$GO build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}
trap cleanup EXIT

wait_ready() { # url
	for _ in $(seq 1 100); do
		curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "not ready: $1" >&2
	return 1
}

# scenario PEERS
scenario() {
	local peers=$1
	local per=$((NOFILE - 300))
	local inst=$(((peers + per - 1) / per))
	local natsurl="" urls=""
	local sflags=(--ip-rate 0 --max-peers-per-ip 0 --peer-rate 1000 --peer-burst 1000
		--max-peers $((peers / inst + 1000)) --log-level warn)
	if ((inst > 1)); then
		local nport=$((BASEPORT + 99))
		"$BIN/nats-server" -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 &
		PIDS+=($!)
		natsurl="nats://127.0.0.1:$nport"
		sleep 0.5
		sflags+=(--nats "$natsurl")
	fi
	for i in $(seq 1 "$inst"); do
		local port=$((BASEPORT + i))
		"$BIN/flower-bootstrap" --listen "127.0.0.1:$port" "${sflags[@]}" 2>>"$BIN/bench-bootstrap-server.log" &
		PIDS+=($!)
		wait_ready "http://127.0.0.1:$port"
		urls+="${urls:+,}ws://127.0.0.1:$port/v1/ws"
	done
	echo "== $peers peers, $inst instance(s)${natsurl:+ over NATS}, $RATE msg/s per peer for $DURATION" >&2
	"$BIN/flower" loadtest --url "$urls" --peers "$peers" --duration "$DURATION" --rate "$RATE" \
		--payload "$PAYLOAD" --settle 5s --json
	cleanup
}

scenario 10000
scenario 50000
if [[ "${BENCH_100K:-0}" == 1 ]]; then
	scenario 100000
fi

#!/usr/bin/env bash
# Simulator benchmark (`make bench`): the 10,000-peer / 1,000,000-query run
# with churn (target: <= 60 s and <= 2 GB RSS on 2 cores) and a 100,000-peer
# run, each under /usr/bin/time -v. Prints wall time, peak RSS and the key
# metrics of each system; the full JSON goes to bin/bench-*.json.
# By default it runs the systems the benchmark has always run (flower,
# squirrel, origin); BENCH_ALL=1 (`make bench BENCH_ALL=1`) adds the Pastry
# baselines squirrel_pns and squirrel_pns_dir (docs/simulator.md gives what
# they cost).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/flower}
[ -x "$BIN" ] || { echo "bench-sim: $BIN missing: run make build first" >&2; exit 1; }
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
	echo "bench-sim: installing GNU time (Debian package time)" >&2
	{ apt-get update -qq && apt-get install -y -qq time; } >/dev/null || { echo "bench-sim: could not install GNU time" >&2; exit 1; }
fi
mkdir -p bin
SYSTEMS=flower,squirrel,origin
if [ "${BENCH_ALL:-0}" = 1 ]; then
	SYSTEMS=flower,squirrel,squirrel_pns,squirrel_pns_dir,origin
fi

run() {
	local name=$1
	shift
	echo "== $name: flower sim $* --systems $SYSTEMS"
	"$TIME" -v -o "bin/bench-$name.time" "$BIN" sim "$@" --systems "$SYSTEMS" --json >"bin/bench-$name.json"
	awk -F': ' '/Elapsed \(wall clock\)/ {print "wall clock:     " $2}
		/Maximum resident set size/ {printf "max RSS:        %.0f MB\n", $2/1024}
		/User time/ {print "user CPU s:     " $2}' "bin/bench-$name.time"
	python3 - "bin/bench-$name.json" <<'PY' 2>/dev/null || grep -o '"elapsed_s":[0-9.]*' "bin/bench-$name.json"
import json, sys
d = json.load(open(sys.argv[1]))
print("simulated:      %.0f s of trace, elapsed_s %.1f, peak_rss %.0f MB" % (d["config"]["trace_end_s"], d["elapsed_s"], d["peak_rss_bytes"] / 2**20))
print("%-16s %9s %9s %9s %9s %9s %9s %9s" % ("system", "hit", "hit+loc", "lookupms", "p95ms", "hops", "xferms", "failed"))
for name, m in d["systems"].items():
    print("%-16s %9.3f %9.3f %9.1f %9.1f %9.2f %9.1f %9d" % (name, m["hit_ratio"], m["hit_ratio_with_local"], m["lookup_ms_mean"],
          m["lookup_ms_p95"], m["lookup_hops_mean"], m["transfer_ms_mean"], m["failed_queries"]))
PY
	echo
}

run 10k --peers 10000 --queries 1000000 --seed 1 --churn 60m/60m
run 100k --peers 100000 --queries 1000000 --seed 1 --churn 60m/60m

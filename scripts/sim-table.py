#!/usr/bin/env python3
"""Markdown rows from `flower sim --json` output (docs/simulator.md's tables).

usage: scripts/sim-table.py LABEL=FILE.json ...

One row per system and file: hit ratio (without and with the own cache),
lookup mean (Flower-CDN's ratio against that system), p95 and hops, transfer
mean (ratio), origin byte fraction and background bytes per online peer per
minute. A ratio above 1 means Flower-CDN is that many times lower (better).
"""
import json
import sys

NAMES = {
    "flower": "Flower-CDN",
    "squirrel": "Squirrel, Chord",
    "squirrel_pns": "Squirrel, PNS home-store",
    "squirrel_pns_dir": "Squirrel, PNS directory",
    "origin": "origin-only",
}


def ratio(a, b):
    if a <= 0 or b <= 0:
        return "-"
    return "%.2fx" % (b / a)


def main(args):
    if not args:
        sys.exit(__doc__)
    print("| run | system | hit ratio | incl. local | lookup ms mean (Flower ratio) | lookup p95 | hops | "
          "transfer ms (Flower ratio) | origin bytes | overhead B/peer/min | failed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for arg in args:
        label, _, path = arg.partition("=")
        with open(path) as f:
            d = json.load(f)
        systems = d["systems"]
        fl = systems.get("flower")
        for name, m in systems.items():
            lr = tr = ""
            if fl is not None and name != "flower":
                lr = " (%s)" % ratio(fl["lookup_ms_mean"], m["lookup_ms_mean"])
                tr = " (%s)" % ratio(fl["transfer_ms_mean"], m["transfer_ms_mean"])
            print("| %s | %s | %.3f | %.3f | %.1f%s | %.0f | %.2f | %.1f%s | %.3f | %s | %d |" % (
                label, NAMES.get(name, name), m["hit_ratio"], m["hit_ratio_with_local"],
                m["lookup_ms_mean"], lr, m["lookup_ms_p95"], m["lookup_hops_mean"],
                m["transfer_ms_mean"], tr, m["origin_fraction"],
                "{:,.0f}".format(m["overhead_bytes_per_peer_min"]), m["failed_queries"]))


if __name__ == "__main__":
    main(sys.argv[1:])

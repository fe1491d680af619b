package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// pastryWorld is a static world of n peers with a Pastry overlay over the
// peers that are up (every peer but those down).
func pastryWorld(t *testing.T, n int, seed uint64, down func(i int) bool) (*World, *pastry) {
	t.Helper()
	cfg := smallConfig()
	cfg.Peers = n
	cfg.Localities = 6
	cfg.Queries = 10
	cfg.ChurnOn, cfg.ChurnOff = 0, 0
	cfg.Seed = seed
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pa := newPastry(w)
	for i := range w.PeerIDs {
		if down == nil || !down(i) {
			pa.up(int32(i))
		}
	}
	return w, pa
}

// bruteClosest is the live peer numerically closest to key (circular
// distance, a tie to the successor), by brute force.
func bruteClosest(pa *pastry, key uint64) int32 {
	best, bd := int32(-1), uint64(math.MaxUint64)
	for i, x := range pa.ring.pos {
		d := dist(x, key)
		if best < 0 || d < bd || d == bd && x-key < pa.ppos[best]-key {
			best, bd = pa.ring.node[i], d
		}
	}
	return best
}

// TestPastryRoute: on a static network, routing ends at the live peer
// numerically closest to the key (against brute force) in at most
// ceil(log16 N) + 1 hops, and every hop goes to a live peer.
func TestPastryRoute(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		n    int
		down float64 // fraction of peers offline (the network is static while routing)
	}{{1, 0}, {2, 0}, {17, 0}, {18, 0}, {300, 0}, {300, 0.5}, {2000, 0}, {2000, 0.3}, {10000, 0}} {
		_, pa := pastryWorld(t, tc.n, uint64(tc.n), func(int) bool { return rng.Float64() < tc.down })
		live := len(pa.ring.pos)
		if live == 0 {
			continue
		}
		bound := int(math.Ceil(math.Log(float64(live))/math.Log(16))) + 1
		var path []int32
		total, maxHops := 0, 0
		const trials = 3000
		for i := 0; i < trials; i++ {
			key := rng.Uint64()
			if i%5 == 0 {
				key = pa.ring.pos[rng.IntN(live)] + uint64(rng.IntN(3)) - 1 // at or next to a peer's id
			}
			from := pa.ring.node[rng.IntN(live)]
			want := bruteClosest(pa, key)
			if got := pa.ring.node[pa.closest(key)]; got != want {
				t.Fatalf("n=%d closest(%x) = %d, want %d", tc.n, key, got, want)
			}
			path = pa.route(from, key, path)
			end := from
			for _, h := range path {
				if pa.ring.pos[pa.ring.search(pa.ppos[h])] != pa.ppos[h] {
					t.Fatalf("n=%d: hop to an offline peer %d", tc.n, h)
				}
				end = h
			}
			if end != want {
				t.Fatalf("n=%d route from %d to %x ends at %d, want %d", tc.n, from, key, end, want)
			}
			if len(path) > bound {
				t.Fatalf("n=%d live=%d: %d hops, bound ceil(log16 N)+1 = %d", tc.n, live, len(path), bound)
			}
			total += len(path)
			maxHops = max(maxHops, len(path))
		}
		t.Logf("n=%d live=%d: mean hops %.2f, max %d, bound %d", tc.n, live, float64(total)/trials, maxHops, bound)
	}
}

// TestPastryPNS: every routing-table entry is, among the live peers with
// the entry's prefix, the one nearest to the node (against brute force),
// and stays so as peers leave and join.
func TestPastryPNS(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w, pa := pastryWorld(t, 400, 11, func(int) bool { return rng.Float64() < 0.2 })
	online := make([]bool, len(w.PeerIDs))
	for _, n := range pa.ring.node {
		online[n] = true
	}
	check := func(round int) {
		checked := 0
		for n := range w.PeerIDs {
			if !online[n] {
				continue
			}
			np := pa.ppos[n]
			for row := 0; row < 4; row++ {
				for d := 0; d < pastryBase; d++ {
					if d == digit(np, row) {
						continue
					}
					want, wl := int32(-1), time.Duration(0)
					for c := range w.PeerIDs {
						cp := pa.ppos[c]
						if !online[c] || shpl(cp, np) < row || digit(cp, row) != d {
							continue
						}
						if l := w.Lat(int32(n), int32(c)); want < 0 || l < wl || l == wl && cp < pa.ppos[want] {
							want, wl = int32(c), l
						}
					}
					if got := pa.entry(int32(n), row, d); got != want {
						t.Fatalf("round %d: entry (%d,%d) of %d = %d, want %d", round, row, d, n, got, want)
					}
					if want >= 0 {
						checked++
					}
				}
			}
		}
		if checked < 1000 {
			t.Fatalf("round %d: only %d non-empty entries checked", round, checked)
		}
	}
	check(0)
	for round := 1; round <= 3; round++ {
		for i := 0; i < 60; i++ {
			p := rng.IntN(len(w.PeerIDs))
			if online[p] {
				pa.down(int32(p))
			} else {
				pa.up(int32(p))
			}
			online[p] = !online[p]
		}
		check(round)
	}
	// Proximity shows: row-0 entries are mostly in the node's own locality.
	same, all := 0, 0
	for n := range w.PeerIDs {
		if !online[n] {
			continue
		}
		for d := 0; d < pastryBase; d++ {
			if e := pa.entry(int32(n), 0, d); e >= 0 && d != digit(pa.ppos[n], 0) {
				all++
				if w.Loc[e] == w.Loc[n] {
					same++
				}
			}
		}
	}
	if float64(same) < 0.8*float64(all) {
		t.Fatalf("only %d of %d row-0 entries in the node's locality", same, all)
	}
}

// TestSquirrelDirRedirects: the directory scheme forwards a query only to a
// real recent downloader: another peer that had itself downloaded the
// object (from a delegate or the origin) in a query issued earlier; the
// directories never exceed dirSize and hold no peer twice.
func TestSquirrelDirRedirects(t *testing.T) {
	for _, churn := range []bool{false, true} {
		cfg := smallConfig()
		cfg.Core.CacheBytes = 1 << 20 // small caches: delegates evict, pointers go stale
		if !churn {
			cfg.ChurnOn, cfg.ChurnOff = 0, 0
		}
		w, err := NewWorld(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := newSquirrelDir(w, newPastry(w))
		if err := s.run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		m := s.metrics()
		if m.FailedQueries != 0 {
			t.Fatalf("churn=%v: %d failed queries", churn, m.FailedQueries)
		}
		// firstDL[(peer, obj)]: issue time of the peer's first query for obj
		// that it downloaded.
		firstDL := map[uint64]time.Duration{}
		served := 0
		for qi := range w.QueryPos {
			te := w.Trace[w.QueryPos[qi]]
			switch s.res.out[qi] {
			case outPeer, outOrigin:
				if _, ok := firstDL[lruKey(te.Peer, te.Obj)]; !ok {
					firstDL[lruKey(te.Peer, te.Obj)] = te.At
				}
			}
			if d := s.asked[qi]; d >= 0 {
				// Forwarded to d: d must have downloaded obj in an earlier query.
				if at, ok := firstDL[lruKey(d, te.Obj)]; !ok || at >= te.At || d == te.Peer {
					t.Fatalf("churn=%v query %d of %d: forwarded to %d, not an earlier downloader of object %d", churn, qi, te.Peer, d, te.Obj)
				}
			}
			if s.res.out[qi] != outPeer {
				continue
			}
			if s.asked[qi] < 0 {
				t.Fatalf("churn=%v query %d: peer hit without a delegate", churn, qi)
			}
			served++
		}
		if served < 100 || m.Anomalies["squirrel_dir_stale"] == 0 {
			t.Fatalf("churn=%v: %d queries served by delegates, %d stale pointers: the test exercises too little", churn, served, m.Anomalies["squirrel_dir_stale"])
		}
		for key, i := range s.dirs {
			e := s.ent[i]
			if e.n > dirSize {
				t.Fatalf("directory of %x has %d delegates", key, e.n)
			}
			for a := 0; a < int(e.n); a++ {
				if _, ok := firstDL[uint64(e.del[a])<<32|key&0xffffffff]; !ok {
					t.Fatalf("directory of %x lists %d, which never downloaded it", key, e.del[a])
				}
				for b := a + 1; b < int(e.n); b++ {
					if e.del[a] == e.del[b] {
						t.Fatalf("directory of %x lists %d twice", key, e.del[a])
					}
				}
			}
		}
	}
}

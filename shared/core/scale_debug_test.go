package core

import (
	"github.com/flowercdn/flower/shared/directory"

	"fmt"
	"github.com/flowercdn/flower/shared/summary"
	"github.com/flowercdn/flower/shared/wire"

	"os"
	"sort"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

func TestScaleDebug(t *testing.T) {
	if os.Getenv("FLOWER_DEBUG") == "" {
		return
	}
	cfg := DefaultConfig()
	tn := newTestNet(t, cfg, 600, 11)
	var sites []ids.SiteID
	for i := 0; i < 10; i++ {
		sites = append(sites, ids.SiteID(tn.rnd.Uint64()))
	}
	tn.fetched = map[[2]uint64]int{}
	stat := map[string]int{}
	joins := 0
	debugJoin = func(n *Node, key ids.Key, succ ids.Member) {
		joins++
		if joins > 400 || len(tn.directories()[key]) == 0 {
			return
		}
		holders := tn.directories()[key]
		var all []ids.Member
		for _, o := range tn.nodes {
			for _, k := range o.DirKeys() {
				all = append(all, ids.Member{Key: k, ID: o.ID()})
			}
		}
		t.Logf("t=%v join %x by %s succ %v (true succ %v) existing holders %v", tn.now, key, n.id.Short(), succ, bruteSucc(all, key+1), holders)
	}
	type ko struct {
		x   *directory.Index
		obj ids.ObjectID
	}
	addedAt := map[ko]time.Duration{}
	directory.DebugAdded = func(x *directory.Index, obj ids.ObjectID) {
		if _, ok := addedAt[ko{x, obj}]; !ok {
			addedAt[ko{x, obj}] = tn.now
		}
	}
	debugNotFound = func(n *Node, p *position, m *wire.Query) {
		inOther, inSum := 0, 0
		for _, o := range tn.nodes {
			for _, q := range o.positions {
				if q.site == p.site && q != p && q.index.Holds(m.Obj) {
					inOther++
					if r := p.sums.Get(q.key); r != nil && summary.Test(r.Summary, m.Obj) {
						inSum++
					}
				}
			}
		}
		k := fmt.Sprint(m.Mode)
		switch {
		case inOther == 0:
			k += "nowhere"
		case inSum == 0:
			k += "stale_summary"
			for _, o := range tn.nodes {
				for _, q := range o.positions {
					if q.site == p.site && q != p && q.index.Holds(m.Obj) {
						age := tn.now - addedAt[ko{q.index, m.Obj}]
						r := p.sums.Get(q.key)
						st := "nosum"
						if r != nil && r.Summary != nil {
							st = "sum"
						} else if r != nil {
							st = "known"
						}
						stat[fmt.Sprintf("age<%v_%s", age.Truncate(10*time.Second), st)]++
						if st == "nosum" && stat["printed"] < 6 && tn.now > 10*time.Minute {
							stat["printed"]++
							rq := q.sums.Get(p.key)
							t.Logf("t=%v p=%x (members %v) q=%x: q knows p: %v; p.lastSum %v q.lastSum %v", tn.now, p.key, p.sums.Members(), q.key, rq, p.lastSum, q.lastSum)
						}
					}
				}
			}
		default:
			k += "in_summary?"
		}
		stat[k]++
	}
	defer func() { debugNotFound = nil; t.Logf("notfound analysis %v", stat) }()

	var qs []qkey
	for tn.now < 20*time.Minute {
		for k := 0; k < 10; k++ {
			i := tn.rnd.IntN(len(tn.nodes))
			if tn.nodes[i].Online() {
				qs = append(qs, tn.query(i, sites[(i+k%2)%10], ids.ObjectID(tn.rnd.IntN(300))))
			}
		}
		tn.run(tn.now + 500*time.Millisecond)
		if tn.now%time.Minute == 0 {
			d := 0
			for _, h := range tn.directories() {
				if len(h) > 1 {
					d++
				}
			}
			t.Logf("t=%v dup keys %d positions %d", tn.now, d, len(tn.directories()))
		}
	}
	src := map[Source]int{}
	for _, q := range qs {
		src[tn.answers[q].Source]++
	}
	t.Logf("answers %v of %d", src, len(qs))
	why := map[string]int{}
	for _, nd := range tn.nodes {
		for k, v := range nd.Stats().Origin {
			why[k] += v
		}
	}
	t.Logf("origin reasons %v; distinct objects fetched %d", why, len(tn.fetched))
	dirs := tn.directories()
	byPetal := map[uint64][]ids.Key{}
	for k, h := range dirs {
		pre, loc, _ := tn.nodes[0].Layout().Split(k)
		byPetal[pre+uint64(loc)] = append(byPetal[pre+uint64(loc)], k)
		if len(h) > 1 {
			t.Logf("dup key %x holders %v", k, h)
			for _, i := range h {
				p := tn.nodes[i].position(k)
				t.Logf("   holder %d id %s pred %v succ %v epoch %d", i, tn.nodes[i].ID().Short(), p.ring.Pred, p.ring.Succs, p.epoch)
			}
		}
	}
	var counts []int
	for _, ks := range byPetal {
		counts = append(counts, len(ks))
	}
	sort.Ints(counts)
	t.Logf("petals %d, positions per petal %v", len(byPetal), counts)
	for k, h := range dirs {
		if len(h) == 1 {
			a, b := tn.nodes[h[0]].debugSums()
			t.Logf("key %x index %d sums %d/%d", k, tn.nodes[h[0]].IndexPeers(k), b, a)
		}
	}
}

func (n *Node) debugSums() (known, withSummary int) {
	for _, p := range n.positions {
		for _, m := range p.sums.Members() {
			known++
			if p.sums.Get(m.Key).Summary != nil {
				withSummary++
			}
		}
	}
	return
}

package sim

import (
	"cmp"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/registry"
)

// regOp is a change of one node's directory registrations on its way to the
// simulated bootstrap service, which it reaches at `at`.
type regOp struct {
	at      time.Duration
	node    int32
	site    ids.SiteID
	key     ids.Key
	add     bool
	failure bool // a removal because the holder went offline
}

// bootstrap is the simulated bootstrap service. It holds the same registry
// as the real service (shared/registry), fed only with what peers
// registered, after the one-way latency to the service; it answers an
// entry-point request from the registry as it stands when the request
// arrives (at most one window late), and the answer takes one way back. It
// also keeps the directory figures of the run.
type bootstrap struct {
	w       *World
	reg     *registry.Registry
	pending []regOp // on their way, in arrival order

	holders    map[ids.Key]int32 // registered holders per key
	vacant     map[ids.Key]time.Duration
	repairs    []float64
	failures   int64
	petalLive  []int32 // distinct registered keys per (site, locality)
	petalSplit []bool
	maxInst    int32 // most distinct live positions (instances) of one petal at once
	conflicts  int64 // a position got a second concurrent holder
	maxHolders int32
	dirChanges int64
}

func (b *bootstrap) init(w *World, reg *registry.Registry, petals int) {
	b.w = w
	b.reg = reg
	b.holders = map[ids.Key]int32{}
	b.vacant = map[ids.Key]time.Duration{}
	b.petalLive = make([]int32, petals)
	b.petalSplit = make([]bool, petals)
}

// queue adds a partition's registrations of the window.
func (b *bootstrap) queue(ops []regOp) { b.pending = append(b.pending, ops...) }

// sortQueue orders the pending registrations by arrival; equal times keep
// their (partition, issue) order.
func (b *bootstrap) sortQueue() {
	slices.SortStableFunc(b.pending, func(x, y regOp) int { return cmp.Compare(x.at, y.at) })
}

// applyUntil applies the registrations that reached the service by t.
func (b *bootstrap) applyUntil(t time.Duration) {
	n := 0
	for n < len(b.pending) && b.pending[n].at <= t {
		b.apply(&b.pending[n])
		n++
	}
	if n > 0 {
		b.pending = slices.Delete(b.pending, 0, n)
	}
}

// answer is the service's reply to node id's request.
func (b *bootstrap) answer(pt *part, id ids.PeerID, req core.EntryRequest) core.Entries {
	a := b.reg.Entries(registry.Query{Site: req.Site, Loc: req.Loc, N: req.N, Exclude: id}, pt.rng, 0)
	return core.Entries{Site: req.Site, Local: a.Local, Remote: a.Remote, Random: a.Random}
}

func (b *bootstrap) petal(site ids.SiteID, key ids.Key) (int, bool) {
	s, ok := b.w.siteIdx[site]
	if !ok {
		return 0, false
	}
	_, loc, _ := b.reg.Layout().Split(key)
	return int(s)*b.w.k + min(loc, b.w.k-1), true
}

// apply changes the registry and the directory figures.
func (b *bootstrap) apply(op *regOp) {
	m := ids.Member{Key: op.key, ID: b.w.PeerIDs[op.node]}
	pi, known := b.petal(op.site, op.key)
	if op.add {
		if err := b.reg.Add(m, 0, 0); err != nil {
			return
		}
		b.dirChanges++
		b.holders[op.key]++
		if h := b.holders[op.key]; h > 1 {
			// Two online peers both believe they hold the position (for
			// example, two joins raced): a conflict, not a new instance.
			b.conflicts++
			b.maxHolders = max(b.maxHolders, h)
			return
		}
		if t, ok := b.vacant[op.key]; ok {
			b.repairs = append(b.repairs, float64(op.at-t)/float64(time.Millisecond))
			delete(b.vacant, op.key)
		}
		if known {
			b.petalLive[pi]++
			if b.petalLive[pi] > 1 {
				b.petalSplit[pi] = true
			}
			b.maxInst = max(b.maxInst, b.petalLive[pi])
		}
		return
	}
	b.reg.Remove(m, 0)
	if b.holders[op.key]--; b.holders[op.key] > 0 {
		return
	}
	delete(b.holders, op.key)
	if op.failure {
		b.failures++
		b.vacant[op.key] = op.at
	}
	if known {
		b.petalLive[pi]--
	}
}

// Package directory holds a directory peer's state for its petal(ws, loc):
// the directory-index (object -> content peers holding it, with liveness),
// and the directory-summaries received from the other directories of the
// same website.
package directory

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

// Peer is what the index knows of one content peer.
type Peer struct {
	Objs      map[ids.ObjectID]struct{}
	FirstSeen time.Duration // when the index first heard of it
	// UpSince is when the peer's session began, as it said (Push.Up), on
	// the directory's clock; UpKnown whether it said.
	UpSince  time.Duration
	UpKnown  bool
	LastSeen time.Duration
	Load     int  // queries redirected to it
	Suspect  bool // a query sent to it went unanswered since it last spoke
}

// Index is directory-index(ws, loc).
type Index struct {
	holders map[ids.ObjectID][]ids.PeerID
	peers   map[ids.PeerID]*Peer
	sum     *summary.Builder
	changes int
	added   []ids.ObjectID // objects that entered the index since TakeChanges
	removed int            // objects that left it since TakeChanges
}

// NewIndex returns an empty index whose summary targets false-positive rate fp.
func NewIndex(fp float64) *Index {
	return &Index{
		holders: make(map[ids.ObjectID][]ids.PeerID),
		peers:   make(map[ids.PeerID]*Peer),
		sum:     summary.NewBuilder(fp),
	}
}

func (x *Index) all(yield func(ids.ObjectID) bool) {
	for obj := range x.holders {
		if !yield(obj) {
			return
		}
	}
}

// NumPeers is the number of content peers known.
func (x *Index) NumPeers() int { return len(x.peers) }

// NumObjects is the number of distinct objects indexed.
func (x *Index) NumObjects() int { return len(x.holders) }

// Peer returns what the index knows of id, or nil.
func (x *Index) Peer(id ids.PeerID) *Peer { return x.peers[id] }

// PeerIDs returns the known content peers in ascending order.
func (x *Index) PeerIDs() []ids.PeerID {
	out := make([]ids.PeerID, 0, len(x.peers))
	for id := range x.peers {
		out = append(out, id)
	}
	slices.SortFunc(out, comparePeer)
	return out
}

func comparePeer(a, b ids.PeerID) int { return bytes.Compare(a[:], b[:]) }

// Touch records that id is alive (processKeepalive).
func (x *Index) Touch(id ids.PeerID, now time.Duration) *Peer {
	p := x.peers[id]
	if p == nil {
		p = &Peer{Objs: make(map[ids.ObjectID]struct{}), FirstSeen: now}
		x.peers[id] = p
	}
	p.LastSeen = now
	p.Suspect = false
	return p
}

// Apply is processPush: full replaces what the index held for id.
func (x *Index) Apply(id ids.PeerID, now time.Duration, full bool, added, removed []ids.ObjectID) {
	p := x.Touch(id, now)
	if full && len(p.Objs) > 0 {
		keep := make(map[ids.ObjectID]struct{}, len(added))
		for _, obj := range added {
			keep[obj] = struct{}{}
		}
		var gone []ids.ObjectID
		for obj := range p.Objs {
			if _, ok := keep[obj]; !ok {
				gone = append(gone, obj)
			}
		}
		slices.Sort(gone) // drop order shapes the summary: keep it deterministic
		for _, obj := range gone {
			x.drop(id, p, obj)
		}
	}
	for _, obj := range removed {
		x.drop(id, p, obj)
	}
	for _, obj := range added {
		x.AddHolder(obj, id, now)
	}
}

// AddHolder records that id holds (or is about to hold) obj.
func (x *Index) AddHolder(obj ids.ObjectID, id ids.PeerID, now time.Duration) {
	p := x.peers[id]
	if p == nil {
		p = x.Touch(id, now)
	}
	if _, ok := p.Objs[obj]; ok {
		return
	}
	p.Objs[obj] = struct{}{}
	h, known := x.holders[obj]
	x.holders[obj] = append(h, id)
	if !known {
		x.changes++
		x.added = append(x.added, obj)
		x.sum.Add(obj, len(x.holders), x.all)
	}
}

func (x *Index) drop(id ids.PeerID, p *Peer, obj ids.ObjectID) {
	if _, ok := p.Objs[obj]; !ok {
		return
	}
	delete(p.Objs, obj)
	h := slices.DeleteFunc(x.holders[obj], func(q ids.PeerID) bool { return q == id })
	if len(h) == 0 {
		delete(x.holders, obj)
		x.changes++
		x.removed++
		x.sum.Remove(len(x.holders), x.all)
		return
	}
	x.holders[obj] = h
}

// RemovePeer forgets id and everything it held.
func (x *Index) RemovePeer(id ids.PeerID) {
	p := x.peers[id]
	if p == nil {
		return
	}
	objs := make([]ids.ObjectID, 0, len(p.Objs))
	for obj := range p.Objs {
		objs = append(objs, obj)
	}
	slices.Sort(objs) // drop order shapes the summary: keep it deterministic
	for _, obj := range objs {
		x.drop(id, p, obj)
	}
	delete(x.peers, id)
}

// Expire removes the peers not seen since before cutoff and returns them.
func (x *Index) Expire(cutoff time.Duration) []ids.PeerID {
	var gone []ids.PeerID
	for _, id := range x.PeerIDs() {
		if x.peers[id].LastSeen < cutoff {
			x.RemovePeer(id)
			gone = append(gone, id)
		}
	}
	return gone
}

// Pick chooses a holder of obj other than exclude: one heard from at or
// after staleBefore if there is any, the least loaded among those (ties
// broken at random). It counts the redirection in the holder's load.
func (x *Index) Pick(obj ids.ObjectID, exclude ids.PeerID, staleBefore time.Duration, rnd *rand.Rand) (ids.PeerID, bool) {
	return x.PickAvoiding(obj, []ids.PeerID{exclude}, staleBefore, rnd)
}

// PickAvoiding is Pick with a list of peers to leave out.
func (x *Index) PickAvoiding(obj ids.ObjectID, avoid []ids.PeerID, staleBefore time.Duration, rnd *rand.Rand) (ids.PeerID, bool) {
	var best ids.PeerID
	bestTier, bestLoad, ties := 0, 0, 0
	for _, id := range x.holders[obj] {
		if slices.Contains(avoid, id) {
			continue
		}
		p := x.peers[id]
		tier := 0
		if p.Suspect || p.LastSeen < staleBefore {
			tier = 1
		}
		switch {
		case ties == 0 || tier < bestTier || (tier == bestTier && p.Load < bestLoad):
			best, bestTier, bestLoad, ties = id, tier, p.Load, 1
		case tier == bestTier && p.Load == bestLoad:
			ties++
			if rnd.IntN(ties) == 0 {
				best = id
			}
		}
	}
	if ties == 0 {
		return ids.PeerID{}, false
	}
	x.peers[best].Load++
	return best, true
}

// DropObject records that id does not hold obj (it said so).
func (x *Index) DropObject(id ids.PeerID, obj ids.ObjectID) {
	if p := x.peers[id]; p != nil {
		x.drop(id, p, obj)
	}
}

// Suspect marks a peer whose answer to a query did not come in time: Pick
// prefers others until it speaks again (push or keepalive). Its entries
// stay; only missed keepalives (Expire) remove a peer.
func (x *Index) Suspect(id ids.PeerID) {
	if p := x.peers[id]; p != nil {
		p.Suspect = true
	}
}

// Changes counts index changes (objects appearing or disappearing) since
// the last TakeChanges.
func (x *Index) Changes() int { return x.changes }

// TakeChanges returns the objects that entered the index and how many left
// it since the last call, and resets the change counter.
func (x *Index) TakeChanges() (added []ids.ObjectID, removed int) {
	added, removed = x.added, x.removed
	x.added, x.removed, x.changes = nil, 0, 0
	return added, removed
}

// Summary is the directory summary: an immutable Bloom filter of the
// objects indexed.
func (x *Index) Summary() *bloom.BloomFilter { return x.sum.Snapshot() }

// Holds reports whether some content peer is indexed as holding obj.
func (x *Index) Holds(obj ids.ObjectID) bool {
	_, ok := x.holders[obj]
	return ok
}

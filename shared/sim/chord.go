package sim

import (
	"encoding/binary"
	"math/bits"
	"sort"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// ring is the Chord ring of the online peers for Squirrel: their 64-bit ring
// positions (the first 8 bytes of the peer id), sorted.
type ring struct {
	pos  []uint64
	node []int32
}

func ringPos(id ids.PeerID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

func (r *ring) search(x uint64) int {
	return sort.Search(len(r.pos), func(i int) bool { return r.pos[i] >= x })
}

func (r *ring) insert(x uint64, n int32) {
	i := r.search(x)
	r.pos = append(r.pos, 0)
	r.node = append(r.node, 0)
	copy(r.pos[i+1:], r.pos[i:])
	copy(r.node[i+1:], r.node[i:])
	r.pos[i], r.node[i] = x, n
}

func (r *ring) remove(x uint64) {
	i := r.search(x)
	if i == len(r.pos) || r.pos[i] != x {
		return
	}
	r.pos = append(r.pos[:i], r.pos[i+1:]...)
	r.node = append(r.node[:i], r.node[i+1:]...)
}

// succ is the ring index of the successor of key x: the first position >= x,
// wrapping around.
func (r *ring) succ(x uint64) int {
	i := r.search(x)
	if i == len(r.pos) {
		i = 0
	}
	return i
}

// route runs Chord's greedy lookup for key from the online peer at ring
// position fromPos, with ideal finger tables (finger i of n is the successor
// of n+2^i over the current ring): at each node, if key is in (n, succ(n)]
// the next hop is succ(n), the key's home; otherwise the closest finger that
// precedes key. It returns the ring indices of the path, excluding the start
// and ending at the home, in path (reused).
func (r *ring) route(fromPos, key uint64, path []int) []int {
	path = path[:0]
	n := len(r.pos)
	if n == 0 {
		return path
	}
	home := r.succ(key)
	cur := r.search(fromPos)
	for cur != home {
		cp := r.pos[cur]
		nxt := cur + 1
		if nxt == n {
			nxt = 0
		}
		d := key - cp // distance cur -> key, mod 2^64; > 0 since cur is not home
		if d <= r.pos[nxt]-cp || nxt == cur {
			cur = nxt
		} else {
			next := nxt
			for i := bits.Len64(d-1) - 1; i >= 0; i-- {
				f := r.succ(cp + 1<<uint(i))
				if fd := r.pos[f] - cp; fd != 0 && fd < d {
					next = f
					break
				}
			}
			cur = next
		}
		path = append(path, cur)
	}
	return path
}

// chord is the Chord overlay of the original Squirrel baseline: the ring of
// the online peers with ideal finger tables and no locality awareness.
type chord struct {
	ring  ring
	ppos  []uint64 // ring position of each peer
	rpath []int
}

func newChord(w *World) *chord {
	c := &chord{ppos: make([]uint64, len(w.PeerIDs))}
	for i, id := range w.PeerIDs {
		c.ppos[i] = ringPos(id)
	}
	return c
}

func (c *chord) up(p int32)   { c.ring.insert(c.ppos[p], p) }
func (c *chord) down(p int32) { c.ring.remove(c.ppos[p]) }

func (c *chord) route(from int32, key uint64, path []int32) []int32 {
	c.rpath = c.ring.route(c.ppos[from], key, c.rpath)
	path = path[:0]
	for _, ri := range c.rpath {
		path = append(path, c.ring.node[ri])
	}
	return path
}

func (c *chord) maintNames() []string { return []string{"chord_stabilize", "chord_fix_fingers"} }

// maintenance models the Chord maintenance that ideal routing does not
// simulate: every online peer stabilizes once per StabilizePeriod (GetPred,
// PredReply with a full successor list, Notify) and refreshes one finger per
// FixFingersPeriod (a lookup of the measured mean hop count, and its
// answer). Same periods and message sizes as Flower-CDN's D-ring.
func (c *chord) maintenance(w *World, meanHops float64) []int64 {
	cc := &w.cfg.Core
	succs := make([]ids.Member, cc.SuccessorListLen)
	stab := wire.Size(&wire.GetPred{}) + wire.Size(&wire.PredReply{OK: true, Succs: succs}) + wire.Size(&wire.Notify{})
	fix := meanHops*float64(wire.Size(&wire.FindSucc{})) + float64(wire.Size(&wire.FoundSucc{}))
	mins := w.PeerMins
	return []int64{
		int64(mins * float64(time.Minute) / float64(cc.StabilizePeriod) * float64(stab)),
		int64(mins * float64(time.Minute) / float64(cc.FixFingersPeriod) * fix),
	}
}

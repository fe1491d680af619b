package sim

import (
	"math/bits"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Pastry parameters (Rowstron and Druschel, Middleware 2001): ids of
// 64 bits read as 16 digits of b = 4 bits, a leaf set of L = 16 (8 on each
// side).
const (
	pastryB      = 4
	pastryBase   = 1 << pastryB
	pastryDigits = 64 / pastryB
	pastryLeaf   = 16
	// pastryMaxRows bounds the routing-table rows whose entries are cached;
	// deeper rows (empty in practice below a million peers) are computed
	// on each use.
	pastryMaxRows = 5
)

// pastry is a Pastry overlay over the online peers with proximity neighbour
// selection, given ideal state, its best case: the leaf set of a node is
// always its L/2 numeric neighbours on each side among the online peers, and
// routing-table entry (r, d) of node n is, among the online peers whose id
// shares n's first r digits and has d as digit r, the one nearest to n under
// the latency model. Entries are computed when first used and recomputed
// when a peer joins or leaves their candidate set, so that under churn the
// tables are always those of the current network: repair is instantaneous
// and free, as with the Chord baseline's ideal fingers; its cost is modelled
// by maintenance.
type pastry struct {
	w    *World
	ring ring // online peers by id (the first 8 bytes of the peer id)
	// byLoc[l]: the online peers of locality l by id. Any two peers of one
	// locality are nearer (at most 25 ms) than any two of different ones (at
	// least 60 ms), so an entry's nearest candidate is in the node's own
	// locality whenever it has one there: nearest searches that first.
	byLoc []ring
	ppos  []uint64 // id of each peer
	rows  int      // cached rows
	// tbl[p]: peer p's cached entries, rows*16, allocated when p first routes.
	tbl [][]pnsEntry
	// ver[r][b]: how many times the candidate set of bucket b of row r (the
	// ids that start with the r+1 digits of b) changed.
	ver [][]uint32
}

// byLoc relies on this: it does not compile if a locality's latencies could
// reach another's.
const _ = uint(interMinUS - intraMaxUS - 1)

// pnsEntry is a cached routing-table entry: the peer (-1: none) and the
// version of its candidate set it was computed at, plus one (0: never).
type pnsEntry struct {
	node int32
	ver  uint32
}

func newPastry(w *World) *pastry {
	pa := &pastry{w: w, ppos: make([]uint64, len(w.PeerIDs)), tbl: make([][]pnsEntry, len(w.PeerIDs)), byLoc: make([]ring, w.k)}
	for i, id := range w.PeerIDs {
		pa.ppos[i] = ringPos(id)
	}
	// ceil(log16 P) + 1 rows hold every non-empty row with high probability.
	pa.rows = 1
	for n := len(w.PeerIDs); n > 1 && pa.rows < pastryMaxRows; n = (n + pastryBase - 1) / pastryBase {
		pa.rows++
	}
	pa.ver = make([][]uint32, pa.rows)
	for r := range pa.ver {
		pa.ver[r] = make([]uint32, 1<<(pastryB*(r+1)))
	}
	return pa
}

func (pa *pastry) up(p int32) {
	pa.ring.insert(pa.ppos[p], p)
	pa.byLoc[pa.w.Loc[p]].insert(pa.ppos[p], p)
	pa.bump(pa.ppos[p])
}

func (pa *pastry) down(p int32) {
	pa.ring.remove(pa.ppos[p])
	pa.byLoc[pa.w.Loc[p]].remove(pa.ppos[p])
	pa.bump(pa.ppos[p])
}

// bump invalidates the cached entries whose candidate set contains id.
func (pa *pastry) bump(id uint64) {
	for r := range pa.ver {
		pa.ver[r][id>>(64-pastryB*(r+1))]++
	}
}

// digit returns digit i (0: most significant) of x.
func digit(x uint64, i int) int { return int(x>>(64-pastryB*(i+1))) & (pastryBase - 1) }

// shpl is the length of the longest common digit prefix of a and b.
func shpl(a, b uint64) int { return bits.LeadingZeros64(a^b) / pastryB }

// dist is the circular distance between two ids.
func dist(a, b uint64) uint64 { return min(a-b, b-a) }

// closest returns the ring index of the online peer numerically closest to
// key (circular distance; a tie goes to the successor). The ring must not be
// empty.
func (pa *pastry) closest(key uint64) int {
	r := &pa.ring
	s := r.succ(key)
	p := s - 1
	if p < 0 {
		p = len(r.pos) - 1
	}
	if dist(r.pos[p], key) < dist(r.pos[s], key) {
		return p
	}
	return s
}

// entry returns routing-table entry (row, d) of online peer n: the nearest
// online peer whose id starts with n's first row digits followed by d, or
// -1 if there is none.
func (pa *pastry) entry(n int32, row, d int) int32 {
	np := pa.ppos[n]
	var b uint64 // the row+1 digits of the bucket
	if row > 0 {
		b = np >> (64 - pastryB*row)
	}
	b = b<<pastryB | uint64(d)
	if row >= pa.rows {
		return pa.nearest(n, b, row+1)
	}
	t := pa.tbl[n]
	if t == nil {
		t = make([]pnsEntry, pa.rows*pastryBase)
		pa.tbl[n] = t
	}
	e := &t[row*pastryBase+d]
	if v := pa.ver[row][b] + 1; e.ver != v {
		e.node, e.ver = pa.nearest(n, b, row+1), v
	}
	return e.node
}

// nearest returns the online peer nearest to n (lowest latency, then lowest
// id) among those whose id starts with the digits of prefix b, or -1.
func (pa *pastry) nearest(n int32, b uint64, digits int) int32 {
	if c := pa.nearestIn(&pa.byLoc[pa.w.Loc[n]], n, b, digits); c >= 0 {
		return c
	}
	return pa.nearestIn(&pa.ring, n, b, digits)
}

// nearestIn is nearest among the peers of r.
func (pa *pastry) nearestIn(r *ring, n int32, b uint64, digits int) int32 {
	shift := 64 - pastryB*digits
	lo := r.search(b << shift)
	hi := len(r.pos) // b is the last prefix of its length
	if digits < pastryDigits && b+1 < 1<<(pastryB*digits) || digits == pastryDigits && b != 1<<64-1 {
		hi = r.search((b + 1) << shift)
	}
	best, bestLat := int32(-1), time.Duration(0)
	for i := lo; i < hi; i++ {
		c := r.node[i]
		if l := pa.w.Lat(n, c); best < 0 || l < bestLat {
			best, bestLat = c, l
		}
	}
	return best
}

// inLeafRange reports whether key lies within the span of the leaf set of
// the peer at ring index ci, so that the leaf set holds key's closest peer.
func (pa *pastry) inLeafRange(ci int, key uint64) bool {
	n := len(pa.ring.pos)
	if n <= pastryLeaf+1 {
		return true
	}
	lo := pa.ring.pos[(ci-pastryLeaf/2+n)%n]
	hi := pa.ring.pos[(ci+pastryLeaf/2)%n]
	return key-lo <= hi-lo
}

// route is Pastry's routing: at each node, if key is within the span of its
// leaf set, the next hop is the leaf (key's closest peer, its home);
// otherwise the routing-table entry that shares one more digit with key;
// if that entry is empty, the known peer (leaf set or the entries of the
// same row) numerically closest to key, if closer than the node itself.
func (pa *pastry) route(from int32, key uint64, path []int32) []int32 {
	path = path[:0]
	if len(pa.ring.pos) == 0 {
		return path
	}
	home := pa.ring.node[pa.closest(key)]
	cur := from
	for cur != home {
		next := home
		if ci := pa.ring.search(pa.ppos[cur]); !pa.inLeafRange(ci, key) && len(path) < 2*pastryDigits {
			next = pa.tableHop(cur, ci, key)
		}
		path = append(path, next)
		cur = next
	}
	return path
}

// tableHop is the next hop of a node that is not key's leaf: its
// routing-table entry for key, else (Pastry's rare case) the known peer
// closest to key, else key's home (ideal: does not happen).
func (pa *pastry) tableHop(cur int32, ci int, key uint64) int32 {
	cp := pa.ppos[cur]
	l := shpl(cp, key)
	if e := pa.entry(cur, l, digit(key, l)); e >= 0 {
		return e
	}
	best, bd := int32(-1), dist(cp, key)
	n := len(pa.ring.pos)
	for j := -pastryLeaf / 2; j <= pastryLeaf/2; j++ {
		c := pa.ring.node[(ci+j+n)%n]
		if d := dist(pa.ppos[c], key); d < bd {
			best, bd = c, d
		}
	}
	for d := 0; d < pastryBase; d++ {
		if d == digit(cp, l) {
			continue
		}
		if c := pa.entry(cur, l, d); c >= 0 {
			if dd := dist(pa.ppos[c], key); dd < bd {
				best, bd = c, dd
			}
		}
	}
	if best < 0 {
		return pa.ring.node[pa.closest(key)]
	}
	return best
}

func (pa *pastry) maintNames() []string { return []string{"pastry_leafset", "pastry_table"} }

// maintenance models what keeping the ideal state would cost, with the same
// periods as the Chord baseline: every online peer exchanges leaf sets with
// one leaf-set member once per StabilizePeriod (a GetPred-sized request and
// a PredReply carrying L = 16 members), and refreshes one routing-table
// entry once per FixFingersPeriod (a request to a member of the row and its
// reply carrying the row's 16 entries, then a Ping and Pong to measure the
// proximity of a candidate: proximity neighbour selection needs the probe).
func (pa *pastry) maintenance(w *World, _ float64) []int64 {
	cc := &w.cfg.Core
	members := make([]ids.Member, pastryLeaf)
	reply := wire.Size(&wire.PredReply{OK: true, Succs: members})
	leaf := wire.Size(&wire.GetPred{}) + reply
	table := wire.Size(&wire.FindSucc{}) + reply + wire.Size(&wire.Ping{}) + wire.Size(&wire.Pong{OK: true})
	mins := w.PeerMins
	return []int64{
		int64(mins * float64(time.Minute) / float64(cc.StabilizePeriod) * float64(leaf)),
		int64(mins * float64(time.Minute) / float64(cc.FixFingersPeriod) * float64(table)),
	}
}

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

// Traffic types of Squirrel. The two chord_* entries are modelled, not
// simulated: see squirrel.maintenance.
const (
	sqRoute = iota
	sqStabilize
	sqFixFingers
)

var squirrelTraffic = []string{"route", "chord_stabilize", "chord_fix_fingers"}

// squirrel is the Squirrel home-store baseline (Iyer, Rowstron, Druschel,
// PODC 2002): a Chord DHT over all online peers; the home of an object is the
// successor of hash(URL); a query checks the requester's cache, then goes to
// the home over ideal Chord routing; the home serves from its cache, or
// fetches from the origin, caches and serves. Every peer has one LRU cache
// for its own objects and the ones it is home for.
type squirrel struct {
	base
	ring    ring
	cache   *lru
	ppos    []uint64
	path    []int
	reqSize int // bytes of one routed request

	routeHops, routes int64
}

func newSquirrel(w *World) *squirrel {
	s := &squirrel{base: newBase(w, squirrelTraffic), cache: newLRU(w.quota)}
	s.ppos = make([]uint64, len(w.PeerIDs))
	for i, id := range w.PeerIDs {
		s.ppos[i] = ringPos(id)
	}
	s.reqSize = wire.Size(&wire.Query{Mode: wire.QLookup, NewClient: true})
	return s
}

func (s *squirrel) up(p int32)   { s.ring.insert(s.ppos[p], p) }
func (s *squirrel) down(p int32) { s.ring.remove(s.ppos[p]) }

func (s *squirrel) query(qi, p, obj int32) {
	if s.cache.get(p, obj) {
		if s.settle(qi, p) {
			s.res.set(qi, outLocal, 0, 0, 0)
		}
		return
	}
	s.routeTo(qi, p, obj, 0)
}

// routeTo sends query qi of p for obj to its home, hops already taken.
func (s *squirrel) routeTo(qi, p, obj int32, hops int) {
	key := uint64(s.w.ObjIDs[obj])
	s.path = s.ring.route(s.ppos[p], key, s.path)
	lat := time.Duration(0)
	prev := p
	for _, ri := range s.path {
		n := s.ring.node[ri]
		lat += s.w.Lat(prev, n)
		prev = n
		s.send(sqRoute, s.reqSize)
	}
	s.routes++
	s.routeHops += int64(len(s.path))
	s.q.push(event{at: s.now + lat, kind: evSqArrive, node: prev, qid: uint64(qi), arg: int32(hops + len(s.path))})
}

func (s *squirrel) handle(ev *event) {
	qi := int32(ev.qid)
	te := &s.w.Trace[s.w.QueryPos[qi]]
	p, obj := te.Peer, te.Obj
	if s.res.epoch[qi] != s.epoch[p] {
		return // the requester left: the query is abandoned
	}
	home := ev.node
	site := s.w.SiteOfObj(obj)
	switch ev.kind {
	case evSqArrive:
		if !s.online[home] {
			// The home left while the query was routed: route again from the
			// requester over the current ring (no timeout: ideal).
			s.anom["squirrel_reroutes"]++
			s.routeTo(qi, p, obj, int(ev.arg))
			return
		}
		s.res.lookupUS[qi] = int32((s.now - s.issueTime(qi)) / time.Microsecond)
		s.res.hops[qi] = uint8(min(ev.arg, 255))
		if s.cache.get(home, obj) {
			t := s.w.Lat(home, p)
			s.res.transfer[qi] = int32(t / time.Microsecond)
			s.q.push(event{at: s.now + t, kind: evSqDeliver, node: p, from: home, qid: ev.qid})
			return
		}
		ol := s.w.OriginLat(site, s.w.Loc[home])
		s.q.push(event{at: s.now + 2*ol, kind: evSqFetched, node: home, qid: ev.qid})
	case evSqFetched:
		s.cache.add(home, obj, s.w.ObjSize[obj])
		t := s.w.Lat(home, p)
		s.res.transfer[qi] = int32((s.w.OriginLat(site, s.w.Loc[home]) + t) / time.Microsecond)
		s.q.push(event{at: s.now + t, kind: evSqDeliver, node: p, from: home, qid: ev.qid, arg: 1})
	case evSqDeliver:
		if !s.online[p] || !s.settle(qi, p) {
			return
		}
		s.cache.add(p, obj, s.w.ObjSize[obj])
		switch {
		case ev.arg == 1:
			s.res.out[qi] = outOrigin
		case ev.from == p:
			s.res.out[qi] = outLocal // p became the home and got obj meanwhile
		default:
			s.res.out[qi] = outPeer
		}
	}
}

// maintenance adds the modelled Chord maintenance traffic that ideal routing
// does not simulate: every online peer stabilizes once per StabilizePeriod
// (GetPred, PredReply with a full successor list, Notify) and refreshes one
// finger per FixFingersPeriod (a lookup of the measured mean hop count, and
// its answer). Same periods and message sizes as Flower-CDN's D-ring.
func (s *squirrel) maintenance() {
	cc := &s.w.cfg.Core
	succs := make([]ids.Member, cc.SuccessorListLen)
	stab := wire.Size(&wire.GetPred{}) + wire.Size(&wire.PredReply{OK: true, Succs: succs}) + wire.Size(&wire.Notify{})
	meanHops := ratio(float64(s.routeHops), float64(s.routes))
	fix := meanHops*float64(wire.Size(&wire.FindSucc{})) + float64(wire.Size(&wire.FoundSucc{}))
	mins := s.w.PeerMins
	s.tr.bytes[sqStabilize] = int64(mins * float64(time.Minute) / float64(cc.StabilizePeriod) * float64(stab))
	s.tr.bytes[sqFixFingers] = int64(mins * float64(time.Minute) / float64(cc.FixFingersPeriod) * fix)
}

// origin is the origin-only baseline: the browser cache (an LRU with the
// same per-peer quota as the other systems), then the origin.
type origin struct {
	base
	cache *lru
}

func newOrigin(w *World) *origin {
	return &origin{base: newBase(w, nil), cache: newLRU(w.quota)}
}

func (o *origin) up(int32)   {}
func (o *origin) down(int32) {}

func (o *origin) query(qi, p, obj int32) {
	if o.cache.get(p, obj) {
		if o.settle(qi, p) {
			o.res.set(qi, outLocal, 0, 0, 0)
		}
		return
	}
	ol := o.w.OriginLat(o.w.SiteOfObj(obj), o.w.Loc[p])
	o.res.transfer[qi] = int32(ol / time.Microsecond)
	o.q.push(event{at: o.now + 2*ol, kind: evOrDeliver, node: p, qid: uint64(qi)})
}

func (o *origin) handle(ev *event) {
	qi, p := int32(ev.qid), ev.node
	if !o.online[p] || !o.settle(qi, p) {
		return
	}
	o.res.out[qi] = outOrigin
	o.cache.add(p, o.w.Trace[o.w.QueryPos[qi]].Obj, o.w.ObjSize[o.w.Trace[o.w.QueryPos[qi]].Obj])
}

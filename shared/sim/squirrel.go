package sim

import (
	"time"

	"github.com/flowercdn/flower/shared/wire"
)

// overlay is the DHT a Squirrel variant runs over (Chord, or Pastry with
// proximity neighbour selection). Its routing state is ideal: always that of
// the current set of online peers. What keeping it so would cost is modelled
// by maintenance.
type overlay interface {
	up(p int32)
	down(p int32)
	// route returns, in path[:0], the peers a message for key visits from
	// the online peer from, ending at key's home; empty when from is the
	// home.
	route(from int32, key uint64, path []int32) []int32
	// maintNames are the traffic types of the modelled maintenance, and
	// maintenance their bytes over the run, given the mean hop count of the
	// routes measured.
	maintNames() []string
	maintenance(w *World, meanHops float64) []int64
}

// Traffic type of the routed requests of every Squirrel variant; the
// directory scheme adds its own after it, the overlay's modelled
// maintenance types come last.
const sqRoute = 0

// dht is what the Squirrel variants share: the overlay, the per-peer LRU
// caches and the routing of a request to an object's home.
type dht struct {
	base
	ov      overlay
	cache   *lru
	path    []int32
	reqSize int // bytes of one routed request
	maint   int // index of the overlay's first traffic type

	routeHops, routes int64
}

func newDHT(w *World, ov overlay, scheme []string) dht {
	names := append([]string{"route"}, scheme...)
	maint := len(names)
	names = append(names, ov.maintNames()...)
	return dht{
		base:    newBase(w, names),
		ov:      ov,
		cache:   newLRU(w.quota),
		reqSize: wire.Size(&wire.Query{Mode: wire.QLookup, NewClient: true}),
		maint:   maint,
	}
}

func (s *dht) up(p int32)   { s.ov.up(p) }
func (s *dht) down(p int32) { s.ov.down(p) }

// localHit answers query qi of p from p's own cache, if it holds obj.
func (s *dht) localHit(qi, p, obj int32) bool {
	if !s.cache.get(p, obj) {
		return false
	}
	if s.settle(qi, p) {
		s.res.set(qi, outLocal, 0, 0, 0)
	}
	return true
}

// routeTo sends query qi of p for obj to its home over the overlay, hops
// already taken: an evSqArrive event at the home (arg: hops so far).
func (s *dht) routeTo(qi, p, obj int32, hops int) {
	key := uint64(s.w.ObjIDs[obj])
	s.path = s.ov.route(p, key, s.path)
	lat := time.Duration(0)
	prev := p
	for _, n := range s.path {
		lat += s.w.Lat(prev, n)
		prev = n
		s.send(sqRoute, s.reqSize)
	}
	s.routes++
	s.routeHops += int64(len(s.path))
	s.q.push(event{at: s.now + lat, kind: evSqArrive, node: prev, qid: uint64(qi), arg: int32(hops + len(s.path))})
}

// maintenance adds the overlay's modelled maintenance traffic.
func (s *dht) maintenance() {
	for i, b := range s.ov.maintenance(s.w, ratio(float64(s.routeHops), float64(s.routes))) {
		s.tr.bytes[s.maint+i] = b
	}
}

// squirrel is the Squirrel home-store scheme (Iyer, Rowstron, Druschel,
// PODC 2002) over an overlay: the home of an object is the peer the overlay
// routes hash(URL) to; a query checks the requester's cache, then goes to the
// home; the home serves from its cache, or fetches from the origin, caches
// and serves. Every peer has one LRU cache for its own objects and the ones
// it is home for.
type squirrel struct {
	dht
}

func newSquirrel(w *World, ov overlay) *squirrel {
	return &squirrel{dht: newDHT(w, ov, nil)}
}

func (s *squirrel) query(qi, p, obj int32) {
	if !s.localHit(qi, p, obj) {
		s.routeTo(qi, p, obj, 0)
	}
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
			// requester over the current overlay (no timeout: ideal).
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

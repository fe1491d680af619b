package sim

import (
	"math/rand/v2"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// dirSize is the number of delegates the home of an object keeps in the
// directory scheme (Squirrel keeps "a small directory"; 4 here).
const dirSize = 4

// Traffic types of the directory scheme, after sqRoute.
const (
	sqRedirect  = 1 // home -> delegate (the forwarded request) or -> requester (go to the origin)
	sqDirUpdate = 2 // requester -> home: "I hold it now"; delegate -> home: "I do not"
)

var squirrelDirTraffic = []string{"redirect", "dir_update"}

// squirrelDir is Squirrel's directory scheme (Iyer, Rowstron, Druschel,
// PODC 2002) over an overlay: the home of an object keeps no copy but a
// directory of up to dirSize recent downloaders (delegates). A query checks
// the requester's cache, then goes to the home; the home forwards it to a
// delegate chosen at random, which sends the object to the requester; with
// no delegate the home tells the requester to fetch from the origin. A
// delegate that no longer holds the object tells the requester, which then
// fetches from the origin, and the home, which drops the pointer. The
// requester, once it holds the object, tells the home, which adds it to the
// directory (most recent first, the oldest dropped).
//
// In the baseline's favour: a pointer is only added once the downloader
// holds the object (never while its download is in flight), and the home
// skips delegates that are offline as if it knew at once (no timeout),
// dropping their pointers.
type squirrelDir struct {
	dht
	rng    *rand.Rand
	dirs   map[uint64]int32 // (home, object) -> index in ent
	ent    []dirEnt
	homeOf []int32 // per query: the home that handled it, -1 none yet
	asked  []int32 // per query: the delegate it was last forwarded to, -1 none

	notFoundSize, missSize, addSize int
}

// dirEnt is the directory of one object at one home: delegates, most
// recent first.
type dirEnt struct {
	n   uint8
	del [dirSize]int32
}

func newSquirrelDir(w *World, ov overlay) *squirrelDir {
	s := &squirrelDir{
		dht:    newDHT(w, ov, squirrelDirTraffic),
		rng:    rand.New(rand.NewPCG(w.cfg.Seed, streamSquirrelDir)),
		dirs:   map[uint64]int32{},
		homeOf: make([]int32, len(w.QueryPos)),
		asked:  make([]int32, len(w.QueryPos)),
	}
	s.notFoundSize = wire.Size(&wire.NotFound{})
	s.missSize = wire.Size(&wire.Miss{})
	s.addSize = wire.Size(&wire.Push{Added: make([]ids.ObjectID, 1)})
	return s
}

func (s *squirrelDir) query(qi, p, obj int32) {
	s.homeOf[qi], s.asked[qi] = -1, -1
	if !s.localHit(qi, p, obj) {
		s.routeTo(qi, p, obj, 0)
	}
}

// dir returns the directory of obj at home, nil if it has none.
func (s *squirrelDir) dir(home, obj int32) *dirEnt {
	if i, ok := s.dirs[lruKey(home, obj)]; ok {
		return &s.ent[i]
	}
	return nil
}

// drop removes delegate d from the directory of obj at home.
func (s *squirrelDir) drop(home, obj, d int32) {
	e := s.dir(home, obj)
	if e == nil {
		return
	}
	for i := 0; i < int(e.n); i++ {
		if e.del[i] == d {
			copy(e.del[i:e.n], e.del[i+1:e.n])
			e.n--
			return
		}
	}
}

// add makes p the most recent delegate of obj at home.
func (s *squirrelDir) add(home, obj, p int32) {
	e := s.dir(home, obj)
	if e == nil {
		s.dirs[lruKey(home, obj)] = int32(len(s.ent))
		s.ent = append(s.ent, dirEnt{})
		e = &s.ent[len(s.ent)-1]
	}
	s.drop(home, obj, p)
	n := min(int(e.n)+1, dirSize)
	copy(e.del[1:n], e.del[:n-1])
	e.del[0] = p
	e.n = uint8(n)
}

// Event kinds of the directory scheme, besides evSqArrive and evSqDeliver:
// evDirForward (the request reaches delegate node; arg: hops so far),
// evDirOrigin (the requester learns it must fetch from the origin; arg: hops),
// evDirFetched (its origin fetch finished), evDirAdd (the requester's notice
// reaches the home node), evDirGone (a delegate's "not here" reaches the
// home node; from: the delegate).

func (s *squirrelDir) handle(ev *event) {
	qi := int32(ev.qid)
	te := &s.w.Trace[s.w.QueryPos[qi]]
	p, obj := te.Peer, te.Obj
	switch ev.kind {
	case evDirAdd:
		if s.online[ev.node] {
			s.add(ev.node, obj, ev.from)
		} else {
			s.tr.dropped++
		}
		return
	case evDirGone:
		if s.online[ev.node] {
			s.drop(ev.node, obj, ev.from)
		} else {
			s.tr.dropped++
		}
		return
	}
	if s.res.epoch[qi] != s.epoch[p] {
		return // the requester left: the query is abandoned
	}
	switch ev.kind {
	case evSqArrive:
		home := ev.node
		if !s.online[home] {
			// The home left while the query was routed: route again from the
			// requester over the current overlay (no timeout: ideal).
			s.anom["squirrel_reroutes"]++
			s.routeTo(qi, p, obj, int(ev.arg))
			return
		}
		s.homeOf[qi] = home
		s.redirect(qi, home, p, obj, ev.arg)
	case evDirForward:
		d := ev.node
		if !s.online[d] {
			// The delegate left while the request travelled: the home
			// learns at once (ideal), drops it and redirects again.
			s.anom["squirrel_dir_delegate_left"]++
			home := s.homeOf[qi]
			s.drop(home, obj, d)
			if !s.online[home] {
				s.routeTo(qi, p, obj, int(ev.arg))
				return
			}
			s.redirect(qi, home, p, obj, ev.arg-1)
			return
		}
		if s.cache.get(d, obj) {
			s.res.lookupUS[qi] = int32((s.now - s.issueTime(qi)) / time.Microsecond)
			s.res.hops[qi] = uint8(min(ev.arg, 255))
			t := s.w.Lat(d, p)
			s.res.transfer[qi] = int32(t / time.Microsecond)
			s.q.push(event{at: s.now + t, kind: evSqDeliver, node: p, from: d, qid: ev.qid})
			return
		}
		// A stale pointer: the delegate evicted the object. It tells the
		// requester (which goes to the origin) and the home.
		s.anom["squirrel_dir_stale"]++
		s.send(sqRedirect, s.missSize)
		s.q.push(event{at: s.now + s.w.Lat(d, p), kind: evDirOrigin, node: p, from: d, qid: ev.qid, arg: ev.arg})
		s.send(sqDirUpdate, s.missSize)
		s.q.push(event{at: s.now + s.w.Lat(d, s.homeOf[qi]), kind: evDirGone, node: s.homeOf[qi], from: d, qid: ev.qid})
	case evDirOrigin:
		s.res.lookupUS[qi] = int32((s.now - s.issueTime(qi)) / time.Microsecond)
		s.res.hops[qi] = uint8(min(ev.arg, 255))
		ol := s.w.OriginLat(s.w.SiteOfObj(obj), s.w.Loc[p])
		s.res.transfer[qi] = int32(ol / time.Microsecond)
		s.q.push(event{at: s.now + 2*ol, kind: evDirFetched, node: p, qid: ev.qid})
	case evDirFetched, evSqDeliver:
		if !s.online[p] || !s.settle(qi, p) {
			return
		}
		s.cache.add(p, obj, s.w.ObjSize[obj])
		if ev.kind == evDirFetched {
			s.res.out[qi] = outOrigin
		} else {
			s.res.out[qi] = outPeer
		}
		// Tell the home: p is now a delegate.
		if h := s.homeOf[qi]; h >= 0 && h != p && s.cache.has(p, obj) {
			s.send(sqDirUpdate, s.addSize)
			s.q.push(event{at: s.now + s.w.Lat(p, h), kind: evDirAdd, node: h, from: p, qid: ev.qid})
		}
	}
}

// redirect is the home's answer to query qi of p, hops taken: forward it to
// a random online delegate other than p, or tell p to fetch from the origin.
// Offline delegates are dropped (the home is told at once: ideal).
func (s *squirrelDir) redirect(qi, home, p, obj int32, hops int32) {
	var cand [dirSize]int32
	c := cand[:0]
	if e := s.dir(home, obj); e != nil {
		dels, n := e.del, e.n // drop changes e
		for _, d := range dels[:n] {
			switch {
			case !s.online[d]:
				s.drop(home, obj, d)
			case d != p:
				c = append(c, d)
			}
		}
	}
	if len(c) == 0 {
		if home == p {
			s.q.push(event{at: s.now, kind: evDirOrigin, node: p, qid: uint64(qi), arg: hops})
			return
		}
		s.send(sqRedirect, s.notFoundSize)
		s.q.push(event{at: s.now + s.w.Lat(home, p), kind: evDirOrigin, node: p, from: home, qid: uint64(qi), arg: hops})
		return
	}
	d := c[s.rng.IntN(len(c))]
	s.asked[qi] = d
	s.send(sqRedirect, s.reqSize)
	s.q.push(event{at: s.now + s.w.Lat(home, d), kind: evDirForward, node: d, from: home, qid: uint64(qi), arg: hops + 1})
}

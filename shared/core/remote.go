package core

import (
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/dring"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// onQuery is processQuery(q) at the content and directory protocols of a
// remote peer.
func (n *Node) onQuery(from ids.PeerID, m *wire.Query) {
	if int(m.Hops) > n.cfg.MaxHops {
		return
	}
	switch m.Mode {
	case wire.QAsk, wire.QServe:
		sp := n.sites[m.Site]
		has := sp != nil && n.mayServe() && sp.cache.Has(n.now, m.Obj, n.evicted(sp))
		if !has && sp != nil && n.mayServe() {
			// Being fetched from the origin right now (the directory
			// learnt we would hold it): serve it as soon as it arrives.
			if qid, ok := n.fetching[objKey{m.Site, m.Obj}]; ok && len(n.queries[qid].waiters) < maxWaiters {
				q := n.queries[qid]
				q.waiters = append(q.waiters, *m)
				if m.Mode == wire.QServe {
					n.send(from, &wire.Served{QID: m.QID, Origin: m.Origin})
				}
				return
			}
		}
		switch {
		case has && m.Mode == wire.QServe:
			n.send(from, &wire.Served{QID: m.QID, Origin: m.Origin}) // to the directory
		case !has && m.Mode == wire.QServe:
			n.send(from, &wire.Miss{QID: m.QID, Site: m.Site, Obj: m.Obj}) // the directory tries another
			return
		case !has:
			n.send(m.Origin, &wire.Miss{QID: m.QID, Site: m.Site, Obj: m.Obj})
			return
		}
		n.serve(sp, m)
		if m.NewClient {
			n.initialGossip(sp, m.Origin)
		}
	case wire.QLookup:
		ring, live := n.routeRing(m.Key)
		if ring == nil {
			n.send(m.Origin, &wire.Miss{QID: m.QID, Site: m.Site, Obj: m.Obj})
			return
		}
		next, final := ring.NextHop(m.Key)
		if next == ring.Self {
			if live != nil {
				n.dirQuery(live, m)
				return
			}
			// A former position's routing state says we were responsible:
			// hand the query to its successor as the final hop.
			next, final = n.ghostNext(ring), true
			if next.ID == n.id {
				n.send(m.Origin, &wire.Miss{QID: m.QID, Site: m.Site, Obj: m.Obj})
				return
			}
		}
		fw := *m
		fw.Hops++
		if final {
			// The next member is the key's successor: it answers, whatever
			// its own (possibly stale) predecessor says. No routing loops.
			fw.Mode = wire.QDir
		}
		n.send(next.ID, &fw)
	case wire.QDir, wire.QForward:
		p := n.position(m.Key)
		if p == nil && m.Mode == wire.QDir && int(m.Hops) < n.cfg.MaxHops {
			// Not ours. If our predecessor lies in [key, us), the route used
			// a stale successor pointer: hand the query back to it (each
			// step strictly nearer the key) rather than call a held
			// position vacant.
			if q := n.succPosition(m.Key); q != nil {
				if pred := q.ring.Pred; !pred.IsZero() && pred.ID != n.id &&
					(pred.Key == m.Key || dring.Strictly(pred.Key, m.Key, q.key)) {
					fw := *m
					fw.Hops++
					n.send(pred.ID, &fw)
					return
				}
			}
		}
		if p == nil || p.site != m.Site {
			var hint wire.DirInfo
			if sp := n.sites[m.Site]; sp != nil && m.Mode == wire.QDir && sp.dir.Member.Key == m.Key && sp.dir.Member.ID != n.id {
				hint = sp.dir
			}
			// Vacant unless we know who holds the position now.
			n.send(m.Origin, &wire.NotFound{QID: m.QID, Site: m.Site, Obj: m.Obj, Key: m.Key,
				Vacant: m.Mode == wire.QDir && hint.Member.IsZero(), Dir: hint})
			return
		}
		n.dirQuery(p, m)
	}
}

func (n *Node) serve(sp *sitePeer, m *wire.Query) {
	n.ready.Serves = append(n.ready.Serves, Serve{QID: m.QID, Site: m.Site, Obj: m.Obj, To: m.Origin, Hops: int(m.Hops)})
}

// pickRemote chooses, among the other directories of the website whose
// summary may hold obj, the nearest: same locality (PetalUp siblings) first,
// then lowest measured RTT.
func (n *Node) pickRemote(p *position, obj ids.ObjectID) (ids.Member, bool) {
	var best ids.Member
	bestScore := time.Duration(-1)
	for _, d := range p.sums.Candidates(obj) {
		if d.ID == n.id {
			continue
		}
		score := n.cfg.RequestTimeout
		if r, ok := n.rtt[d.ID]; ok {
			score = r
		}
		if _, loc, _ := n.layout.Split(d.Key); loc == n.loc {
			score = 0
		}
		if bestScore < 0 || score < bestScore {
			best, bestScore = d, score
		}
	}
	return best, bestScore >= 0
}

// initialGossip(c): hand a new client a subset of the view and dir-info.
func (n *Node) initialGossip(sp *sitePeer, c ids.PeerID) {
	d := sp.dir
	if p := n.positionFor(sp.site); p != nil {
		d = n.assignDir(p)
	}
	n.send(c, &wire.InitView{Site: sp.site, Dir: d, View: n.viewFor(sp, n.positionFor(sp.site), c)})
}

// viewFor returns a view subset for a new client: gossip contacts, topped
// up from the directory index when the node is a directory.
func (n *Node) viewFor(sp *sitePeer, p *position, exclude ids.PeerID) []wire.Contact {
	v := sp.view.Sample(n.rnd, n.cfg.GossipSubset, exclude)
	if p != nil && len(v) < n.cfg.GossipSubset {
		peers := p.index.PeerIDs()
		n.rnd.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		for _, id := range peers {
			if len(v) >= n.cfg.GossipSubset {
				break
			}
			if id == exclude || id == n.id || slices.ContainsFunc(v, func(c wire.Contact) bool { return c.ID == id }) {
				continue
			}
			v = append(v, wire.Contact{ID: id})
		}
	}
	if sp.view.Len() > 0 || p != nil {
		v = append(v, wire.Contact{ID: n.id})
	}
	return v
}

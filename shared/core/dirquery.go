package core

import (
	"slices"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// maxHolderTries is how many holders a directory tries for one query.
const maxHolderTries = 3

// fwdKey names a query a directory forwarded: its originator and QID.
type fwdKey struct {
	origin ids.PeerID
	qid    uint64
}

// forward is a query a directory sent to a holder, awaiting Served.
type forward struct {
	q      wire.Query // as the directory received it
	holder ids.PeerID
	tried  []ids.PeerID
}

// dirQuery is processQuery(q) at the directory protocol of position p.
func (n *Node) dirQuery(p *position, m *wire.Query) {
	if p.key != m.Key || p.site != m.Site {
		// The lookup ended at the successor of a free position.
		n.send(m.Origin, &wire.NotFound{QID: m.QID, Site: m.Site, Obj: m.Obj, Key: m.Key, Vacant: true})
		return
	}
	sp := n.sites[p.site]
	if m.Origin != n.id && n.mayServe() && sp.cache.Has(n.now, m.Obj, n.evicted(sp)) {
		n.serve(sp, m)
		if m.NewClient {
			n.initialGossip(sp, m.Origin)
		}
		if m.Mode != wire.QForward {
			n.addHolder(p, m.Obj, m.Origin)
			n.deltaSoon(p)
		}
		return
	}
	n.resolve(p, m, nil)
	n.deltaSoon(p)
}

// resolve answers a query the directory's own cache cannot: a holder from
// the index (trying up to maxHolderTries of them), else another directory
// of the website whose summary may hold the object, else NotFound.
func (n *Node) resolve(p *position, m *wire.Query, tried []ids.PeerID) {
	sp := n.sites[p.site]
	own := m.Mode != wire.QForward // the originator belongs to this petal
	if len(tried) < maxHolderTries {
		avoid := append(slices.Clip(tried), m.Origin)
		if h, ok := p.index.PickAvoiding(m.Obj, avoid, n.now-n.cfg.KeepalivePeriod*5/4, n.rnd); ok {
			fw := *m
			fw.Mode = wire.QServe
			fw.Hops++
			n.send(h, &fw)
			n.trackForward(p, m, h, tried)
			if own && m.Origin != n.id {
				n.addHolder(p, m.Obj, m.Origin)
			}
			return
		}
	}
	if own {
		if d, ok := n.pickRemote(p, m.Obj); ok {
			fw := *m
			fw.Mode = wire.QForward
			fw.Key = d.Key
			fw.NewClient = false
			fw.Hops++
			n.send(d.ID, &fw)
			if m.NewClient {
				n.initialGossip(sp, m.Origin)
			}
			if m.Origin != n.id {
				n.addHolder(p, m.Obj, m.Origin)
			}
			return
		}
	}
	nf := &wire.NotFound{QID: m.QID, Site: m.Site, Obj: m.Obj, Key: m.Key}
	if own && m.Origin != n.id {
		// The originator fetches it from the origin now: index it at once so
		// the petal's next query for it finds it.
		n.addHolder(p, m.Obj, m.Origin)
		if m.NewClient {
			nf.Dir = n.assignDir(p)
			nf.View = n.viewFor(sp, p, m.Origin)
		}
	}
	n.send(m.Origin, nf)
}

func (n *Node) trackForward(p *position, m *wire.Query, holder ids.PeerID, tried []ids.PeerID) {
	if p.forwards == nil {
		p.forwards = make(map[uint64]*forward)
		p.fwdBy = make(map[fwdKey]uint64)
	}
	k := fwdKey{m.Origin, m.QID}
	if old, ok := p.fwdBy[k]; ok {
		delete(p.forwards, old)
	}
	id := n.newID()
	p.forwards[id] = &forward{q: *m, holder: holder, tried: append(tried, holder)}
	p.fwdBy[k] = id
	// Served comes back after one RTT: allow the usual request timeout.
	n.after(min(n.timeoutFor(holder), n.cfg.ForwardBudget/2), timer{kind: tForward, key: p.key, id: id})
}

func (n *Node) untrack(p *position, id uint64) *forward {
	f := p.forwards[id]
	if f == nil {
		return nil
	}
	delete(p.forwards, id)
	delete(p.fwdBy, fwdKey{f.q.Origin, f.q.QID})
	return f
}

// forwardFailed tries the next holder (or the other localities, or
// NotFound) for a forwarded query whose holder did not serve it.
func (n *Node) forwardFailed(p *position, id uint64) {
	f := n.untrack(p, id)
	if f != nil {
		n.resolve(p, &f.q, f.tried)
	}
}

// holderMissed handles a Miss from a holder this node forwarded a query to:
// the index was wrong about it; try another. It reports whether m was one.
func (n *Node) holderMissed(from ids.PeerID, m *wire.Miss) bool {
	for _, p := range n.positionsOf(m.Site) {
		var match uint64 // the oldest matching forward, for determinism
		for k, id := range p.fwdBy {
			if k.qid == m.QID && p.forwards[id].holder == from && (match == 0 || id < match) {
				match = id
			}
		}
		if match != 0 {
			p.index.DropObject(from, m.Obj)
			n.forwardFailed(p, match)
			return true
		}
	}
	return false
}

func (n *Node) onServed(from ids.PeerID, m *wire.Served) {
	for _, p := range n.positions {
		if id, ok := p.fwdBy[fwdKey{m.Origin, m.QID}]; ok && p.forwards[id].holder == from {
			n.untrack(p, id)
			return
		}
	}
}

package core

import (
	"github.com/flowercdn/flower/shared/dring"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// succPosition picks the held position that most closely follows (or is)
// key: the one that would be key's successor among this node's positions.
func (n *Node) succPosition(key ids.Key) *position {
	var best *position
	for _, p := range n.positions {
		if best == nil || dring.Distance(key, p.key) < dring.Distance(key, best.key) {
			best = p
		}
	}
	return best
}

// findSucc sends a FindSucc for r.target through via and tracks r.
func (n *Node) findSucc(via ids.PeerID, r *request) {
	r.peer = via
	id := n.request(r, n.cfg.LookupTimeout)
	n.send(via, &wire.FindSucc{ReqID: id, Key: r.target, Origin: n.id})
}

// tryJoin(key): try to take D-ring position key for sp's website. If the
// position is free the node becomes its directory peer; if another peer
// holds it, the node updates its dir-info.
func (n *Node) tryJoin(sp *sitePeer, key ids.Key) {
	if !n.online || n.noDirectory() || sp.joinBusy() || n.position(key) != nil {
		return
	}
	sp.join, sp.joinTarget = joinRunning, key
	n.joinAttempt(sp, key, 0)
}

// joinLater runs tryJoin(key) after a random delay of up to JoinJitter, so
// that the many new clients that find one position vacant at once do not
// all claim it: the first to join is found by the others.
func (n *Node) joinLater(sp *sitePeer, key ids.Key) {
	if sp.join != joinIdle || n.noDirectory() {
		return
	}
	sp.join, sp.joinTarget = joinDelayed, key
	n.after(n.jitter(n.cfg.JoinJitter)+1, timer{kind: tJoin, site: sp.site, id: sp.epoch})
}

func (n *Node) joinAttempt(sp *sitePeer, key ids.Key, tries int) {
	via := n.id
	if len(n.positions) == 0 {
		e, res := n.entry()
		switch res {
		case entryRingEmpty:
			// The bootstrap service said nobody is on D-ring: found it.
			n.becomeDirectory(sp, key, ids.Member{}, nil, sp.dir.Gen+1)
			return
		case entryWait, entryUnavailable:
			// Retried when the service answers (or after its backoff).
			sp.join = joinWaiting
			return
		}
		via = e.ID
	}
	sp.join = joinRunning
	n.findSucc(via, &request{kind: reqJoinFind, site: sp.site, target: key, tries: tries})
}

func (n *Node) joinFailed(r *request) {
	sp := n.sites[r.site]
	if sp == nil || sp.join != joinRunning {
		return
	}
	if r.kind == reqJoinFind && r.peer != n.id {
		n.dropEntry(r.peer)
	}
	if r.tries < n.cfg.LookupRetries {
		n.joinAttempt(sp, r.target, r.tries+1)
		return
	}
	sp.join = joinIdle // a later failure or query tries again
}

// joinTaken: another peer holds the position: update dir-info, stay content.
func (n *Node) joinTaken(sp *sitePeer, holder ids.Member) {
	sp.join = joinIdle
	if n.Role(sp.site) == RoleDirectory {
		return
	}
	gen := sp.dir.Gen
	if sp.dir.Member != holder {
		gen++
	}
	n.updateDirInfo(sp, wire.DirInfo{Member: holder, Gen: gen})
	n.setRole(sp, RoleContent, 0)
	n.push(sp)
}

func (n *Node) onFindSucc(from ids.PeerID, m *wire.FindSucc) {
	if int(m.Hops) > n.cfg.MaxHops {
		return
	}
	ring, live := n.routeRing(m.Key)
	if ring == nil {
		n.send(m.Origin, &wire.FoundSucc{ReqID: m.ReqID, Key: m.Key})
		return
	}
	next, final := ring.NextHop(m.Key)
	if next == ring.Self && live == nil {
		next, final = n.ghostNext(ring), true
	}
	switch {
	case next == ring.Self:
		n.send(m.Origin, &wire.FoundSucc{ReqID: m.ReqID, Key: m.Key, Succ: next, Hops: m.Hops})
	case final:
		n.send(m.Origin, &wire.FoundSucc{ReqID: m.ReqID, Key: m.Key, Succ: next, Hops: m.Hops + 1})
	default:
		fw := *m
		fw.Hops++
		n.send(next.ID, &fw)
	}
}

func (n *Node) onFoundSucc(from ids.PeerID, m *wire.FoundSucc) {
	r := n.reqs[m.ReqID]
	if r == nil || r.target != m.Key {
		return
	}
	delete(n.reqs, m.ReqID)
	s := m.Succ
	switch r.kind {
	case reqJoinFind:
		sp := n.sites[r.site]
		if sp == nil || sp.join != joinRunning {
			return
		}
		switch {
		case s.IsZero():
			n.joinFailed(r)
		case s.Key == r.target && s.ID == n.id:
			sp.join = joinIdle
		case s.Key == r.target:
			n.joinTaken(sp, s)
		default:
			jr := &request{kind: reqJoin, site: r.site, target: r.target, tries: r.tries}
			jr.peer = s.ID
			id := n.request(jr, n.timeoutFor(s.ID)+n.cfg.RequestTimeout)
			n.send(s.ID, &wire.Join{ReqID: id, Me: ids.Member{Key: r.target, ID: n.id}})
		}
	case reqFinger:
		if p := n.position(r.key); p != nil && !s.IsZero() {
			p.ring.Finger[r.finger] = s
		}
	case reqDiscover:
		p := n.position(r.key)
		if p == nil || s.Key != r.target || s.ID == n.id || s.IsZero() {
			return
		}
		if p.sums.Get(s.Key) == nil || p.sums.Get(s.Key).Member != s {
			p.sums.Know(s, n.now)
			n.send(s.ID, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary(),
				Dirs: []ids.Member{p.ring.Self}})
			n.pingRemote(s)
		}
	case reqRingCheck:
		p := n.position(r.key)
		if p == nil || s.IsZero() || s.ID == n.id {
			return
		}
		if s.Key == p.key {
			n.conflict(p, s) // another peer holds this position too
			return
		}
		if dring.Strictly(s.Key, p.key, p.ring.Successor().Key) || p.ring.Successor() == p.ring.Self {
			// The ring seen through the entry point has a closer
			// successor: adopt it (this merges rings that formed apart
			// and repairs a successor list that lost track).
			p.ring.SetSuccessors(s, p.ring.Succs)
		}
	}
}

func (n *Node) onJoin(from ids.PeerID, m *wire.Join) {
	if m.Me.ID != from {
		return
	}
	p := n.succPosition(m.Me.Key)
	if p == nil {
		n.send(from, &wire.JoinReply{ReqID: m.ReqID})
		return
	}
	if p.key == m.Me.Key {
		n.send(from, &wire.JoinReply{ReqID: m.ReqID, Holder: p.ring.Self})
		return
	}
	pred := p.ring.Pred
	if pred.Key == m.Me.Key && pred.ID != from && n.now-p.predHeard < 2*n.cfg.StabilizePeriod {
		n.send(from, &wire.JoinReply{ReqID: m.ReqID, Holder: pred})
		return
	}
	if !pred.IsZero() && pred.ID != from && pred.Key != m.Me.Key && !dring.Strictly(m.Me.Key, pred.Key, p.key) {
		// The key precedes our predecessor: the joiner's successor is
		// closer. Send it there (it walks back to the right place).
		n.send(from, &wire.JoinReply{ReqID: m.ReqID, Holder: pred})
		return
	}
	oldPred := p.ring.Pred
	p.ring.Pred = m.Me
	p.predHeard = n.now
	succs := append([]ids.Member{p.ring.Self}, p.ring.Succs...)
	if len(succs) > n.cfg.SuccessorListLen {
		succs = succs[:n.cfg.SuccessorListLen]
	}
	// Holder in an accepting reply is the joiner's predecessor: our former one.
	n.send(from, &wire.JoinReply{ReqID: m.ReqID, OK: true, Succs: succs, Holder: oldPred})
}

func (n *Node) onJoinReply(from ids.PeerID, m *wire.JoinReply) {
	r := n.take(m.ReqID, reqJoin)
	if r == nil {
		return
	}
	sp := n.sites[r.site]
	if sp == nil || sp.join != joinRunning {
		return
	}
	switch {
	case m.OK && len(m.Succs) > 0:
		gen := sp.dir.Gen + 1
		p := n.becomeDirectory(sp, r.target, m.Succs[0], m.Succs[1:], gen)
		if !m.Holder.IsZero() && m.Holder.ID != n.id && m.Holder.Key != r.target {
			p.ring.Pred = m.Holder
			p.predHeard = n.now
		}
		for _, d := range sp.promotedDirs {
			if d.ID != n.id {
				p.sums.Know(d, n.now)
			}
		}
		sp.promotedDirs = nil
		n.sendSummary(p)
	case !m.Holder.IsZero() && m.Holder.Key == r.target:
		n.joinTaken(sp, m.Holder)
	case !m.Holder.IsZero() && m.Holder.ID != n.id && r.hops < n.cfg.MaxHops:
		// Redirected to a closer successor.
		jr := &request{kind: reqJoin, site: r.site, target: r.target, tries: r.tries, hops: r.hops + 1}
		jr.peer = m.Holder.ID
		id := n.request(jr, n.timeoutFor(m.Holder.ID)+n.cfg.RequestTimeout)
		n.send(m.Holder.ID, &wire.Join{ReqID: id, Me: ids.Member{Key: r.target, ID: n.id}})
	default:
		n.joinFailed(r)
	}
}

// conflict resolves two holders of one key: the lower peer id keeps it.
func (n *Node) conflict(p *position, other ids.Member) {
	if other.ID.Less(n.id) {
		n.stepDown(p, other)
		return
	}
	n.send(other.ID, &wire.Notify{To: other.Key, Me: p.ring.Self})
}

// stabilize is Chord's stabilize plus check_predecessor.
func (n *Node) stabilize(p *position) {
	succ := p.ring.Successor()
	if succ == p.ring.Self {
		if p.ring.Pred.IsZero() {
			if len(n.ent.random) > 0 || !n.ent.known {
				n.ringCheck(p) // lost track of the ring: look ourselves up
			}
			return
		}
		p.ring.SetSuccessors(p.ring.Pred, nil)
		succ = p.ring.Pred
	}
	id := n.request(&request{kind: reqGetPred, key: p.key, peer: succ.ID}, n.timeoutFor(succ.ID)+n.cfg.RequestTimeout/2)
	n.send(succ.ID, &wire.GetPred{ReqID: id, To: succ.Key})
	if pred := p.ring.Pred; !pred.IsZero() && pred.ID != n.id {
		id := n.request(&request{kind: reqPingPred, key: p.key, peer: pred.ID}, n.timeoutFor(pred.ID)+n.cfg.RequestTimeout/2)
		n.send(pred.ID, &wire.Ping{ReqID: id, To: pred.Key})
	}
}

func (n *Node) onGetPred(from ids.PeerID, m *wire.GetPred) {
	p := n.position(m.To)
	if p == nil {
		n.send(from, &wire.PredReply{ReqID: m.ReqID})
		return
	}
	n.send(from, &wire.PredReply{ReqID: m.ReqID, OK: true, Pred: p.ring.Pred, Succs: p.ring.Succs})
}

func (n *Node) onPredReply(from ids.PeerID, m *wire.PredReply) {
	r := n.take(m.ReqID, reqGetPred)
	if r == nil {
		return
	}
	p := n.position(r.key)
	if p == nil {
		return
	}
	if !m.OK {
		p.ring.RemoveMember(p.ring.Successor())
		return
	}
	succ := p.ring.Successor()
	x := m.Pred
	switch {
	case x.Key == p.key && x.ID != n.id && !x.IsZero():
		n.conflict(p, x)
		return
	case !x.IsZero() && x != p.ring.Self && dring.Strictly(x.Key, p.key, succ.Key):
		p.ring.SetSuccessors(x, append([]ids.Member{succ}, m.Succs...))
	default:
		p.ring.SetSuccessors(succ, m.Succs)
	}
	s := p.ring.Successor()
	if s != p.ring.Self {
		n.send(s.ID, &wire.Notify{To: s.Key, Me: p.ring.Self})
	}
}

func (n *Node) onNotify(from ids.PeerID, m *wire.Notify) {
	if m.Me.ID != from {
		return
	}
	p := n.position(m.To)
	if p == nil {
		return
	}
	if m.Me.Key == p.key {
		if m.Me.ID != n.id {
			n.conflict(p, m.Me)
		}
		return
	}
	if p.ring.Pred.IsZero() || p.ring.Pred == m.Me || dring.Strictly(m.Me.Key, p.ring.Pred.Key, p.key) {
		p.ring.Pred = m.Me
		p.predHeard = n.now
	}
	if p.ring.Successor() == p.ring.Self {
		p.ring.SetSuccessors(m.Me, nil)
	}
}

func (n *Node) onPing(from ids.PeerID, m *wire.Ping) {
	n.send(from, &wire.Pong{ReqID: m.ReqID, OK: m.To == 0 || n.position(m.To) != nil})
}

// pingRemote measures the RTT to another directory of the website, so that
// queries forwarded between localities go to the nearest one.
func (n *Node) pingRemote(d ids.Member) {
	id := n.request(&request{kind: reqPingRemote, peer: d.ID, key: d.Key}, n.cfg.RequestTimeout)
	n.send(d.ID, &wire.Ping{ReqID: id, To: d.Key})
}

func (n *Node) onPong(from ids.PeerID, m *wire.Pong) {
	if n.take(m.ReqID, reqPingRemote) != nil {
		return // take measured the RTT
	}
	if r := n.take(m.ReqID, reqPingDir); r != nil {
		if !m.OK {
			n.dirDead(r)
		}
		return
	}
	r := n.take(m.ReqID, reqPingPred)
	if r == nil {
		return
	}
	p := n.position(r.key)
	if p == nil || p.ring.Pred.ID != r.peer {
		return
	}
	if m.OK {
		p.predHeard = n.now
	} else {
		p.ring.Pred = ids.Member{}
	}
}

// fixFinger refreshes the next finger that lies beyond the successor (the
// nearer ones are the successor itself and need no lookup).
func (n *Node) fixFinger(p *position) {
	succ := p.ring.Successor()
	for i := 0; i < dring.Bits; i++ {
		f := p.ring.NextFinger
		p.ring.NextFinger = (f + 1) % dring.Bits
		start := p.ring.FingerStart(f)
		if succ != p.ring.Self && dring.Between(start, p.key, succ.Key) {
			p.ring.Finger[f] = succ
			continue
		}
		if succ == p.ring.Self {
			p.ring.Finger[f] = ids.Member{}
			continue
		}
		n.findSucc(n.id, &request{kind: reqFinger, key: p.key, target: start, finger: f})
		return
	}
}

// ringCheck looks the position's own key up through a random entry point:
// if that ring knows a closer successor, adopt it. Rings that formed apart
// (two peers founding D-ring at once) merge this way.
func (n *Node) ringCheck(p *position) {
	if n.now-n.ent.at >= n.cfg.RingCheckPeriod/2 || !n.ent.known {
		// Ask for fresh entry points; their answer runs the check.
		n.ent.known = false
		n.ent.random = n.ent.random[:0]
		n.ent.ringCheckDue = true
		n.askEntries(0)
		return
	}
	e, res := n.entry()
	if res != entryOK || e.ID == n.id {
		return
	}
	// Two lookups: the holder of our own key (a duplicate holder shows up
	// there) and the first member after it (our true successor).
	n.findSucc(e.ID, &request{kind: reqRingCheck, key: p.key, target: p.key})
	n.findSucc(e.ID, &request{kind: reqRingCheck, key: p.key, target: p.key + 1})
}

// dirDead: the directory a query waits on does not answer a ping (or no
// longer holds its position): the query goes to the origin and the
// directory is replaced (tryJoin).
func (n *Node) dirDead(r *request) {
	n.dirGone(n.queries[r.qid], r.site, ids.Member{Key: r.key, ID: r.peer}, "dir_failed")
}

// dirGone: directory d of site is gone. The query q waiting on it (if any)
// goes to the origin, and the site peer replaces d if it is still its
// directory (tryJoin).
func (n *Node) dirGone(q *query, site ids.SiteID, d ids.Member, why string) {
	if q != nil && q.stage == stageDir && q.target == d.ID {
		n.fetchOrigin(q, why)
	}
	if sp := n.sites[site]; sp != nil && sp.dir.Member == d {
		n.tryJoin(sp, n.joinKey(sp))
	}
}

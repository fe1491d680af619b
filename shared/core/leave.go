package core

import (
	"maps"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Config.LeaveHandover: a node that goes offline cleanly says so first.
// Both notices are existing messages: a full Push with no object (the
// content peer holds nothing any more) and a PushAck that says the sender
// is no longer the directory and names who is (the directory leaving).

// sayGoodbye runs inside GoOffline, while the node still holds its state.
func (n *Node) sayGoodbye() {
	for _, p := range n.positions {
		n.handOver(p)
	}
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		if n.Role(site) != RoleContent || sp.dir.Member.IsZero() || sp.dir.Member.ID == n.id {
			continue
		}
		n.send(sp.dir.Member.ID, &wire.Push{Site: site, Key: sp.dir.Member.Key, Full: true})
	}
}

// handOver tells the content peers of p's index that this directory is
// leaving and who takes its place: the successor, told the same, runs
// tryJoin for the key; the others redirect to it at once.
func (n *Node) handOver(p *position) {
	d := wire.DirInfo{Gen: p.gen + 1}
	if succ, ok := n.successor(p); ok {
		d.Member = ids.Member{Key: p.key, ID: succ}
	}
	for _, id := range p.index.PeerIDs() {
		if id != n.id {
			n.send(id, &wire.PushAck{Site: p.site, Key: p.key, OK: false, Dir: d})
		}
	}
}

// successor is the content peer of p's index to take the position over:
// among those heard from within a keepalive period and a quarter and not
// suspect, the one up the longest (stable peers first: seeders, long
// visits): by the session start it said in its pushes (Push.Up), else by
// when the index first heard of it; then the lowest id.
func (n *Node) successor(p *position) (ids.PeerID, bool) {
	var best ids.PeerID
	var bestSince time.Duration
	found := false
	fresh := n.now - n.cfg.KeepalivePeriod - n.cfg.KeepalivePeriod/4
	for _, id := range p.index.PeerIDs() {
		x := p.index.Peer(id)
		if id == n.id || x.Suspect || x.LastSeen < fresh || n.avoiding(id) {
			continue
		}
		since := x.FirstSeen
		if x.UpKnown {
			since = min(since, x.UpSince)
		}
		if !found || since < bestSince {
			best, bestSince, found = id, since, true
		}
	}
	return best, found
}

// onGoodbye handles a PushAck that no push of this node asked for, from
// its directory, saying it is no longer the directory: the directory is
// leaving (handOver). It reports whether the message was one.
func (n *Node) onGoodbye(sp *sitePeer, from ids.PeerID, m *wire.PushAck) bool {
	if m.OK || n.Role(sp.site) != RoleContent || sp.dir.Member.ID != from || sp.dir.Member.Key != m.Key {
		return false
	}
	if r := n.reqs[sp.pushReq]; sp.pushReq != 0 && r != nil && r.peer == from {
		return false // the answer to our push: onPushAck's usual path
	}
	left := sp.dir.Member
	switch {
	case m.Dir.Member.ID == n.id && n.noDirectory():
		// Named successor, but the node takes no position: the key is
		// vacant, and a peer that may take it will.
		sp.dir = wire.DirInfo{}
		sp.needFull = true
	case m.Dir.Member.ID == n.id:
		// Named successor: take the position at once. A join would be
		// turned away while the key's ring successor still counts the
		// leaver as its live predecessor; the ring check finds this
		// position's place on D-ring right away instead.
		if n.position(m.Key) != nil || sp.joinBusy() {
			break
		}
		p := n.becomeDirectory(sp, m.Key, ids.Member{}, nil, max(m.Dir.Gen, sp.dir.Gen+1))
		n.ringCheck(p)
	case !m.Dir.Member.IsZero() && m.Dir.Member.Key == m.Key:
		// Redirect to the successor and rebuild its index with a full
		// push, MinTimeout later: the successor has had the goodbye by
		// then (it is one of this petal's peers, as near as the leaver).
		n.updateDirInfo(sp, m.Dir)
		n.after(n.cfg.MinTimeout, timer{kind: tPush, site: sp.site, id: sp.epoch})
	default:
		sp.needFull = true
		n.joinLater(sp, m.Key)
	}
	// Queries waiting on the directory that left go to the origin now
	// rather than at their timeout.
	for _, qid := range slices.Sorted(maps.Keys(n.queries)) {
		if q := n.queries[qid]; q.site == sp.site && q.stage == stageDir && q.target == left.ID {
			n.fetchOrigin(q, "dir_left")
		}
	}
	return true
}

package core

import (
	"cmp"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/directory"
	"github.com/flowercdn/flower/shared/dring"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// position returns the held position at key, or nil.
func (n *Node) position(key ids.Key) *position {
	for _, p := range n.positions {
		if p.key == key {
			return p
		}
	}
	return nil
}

// positionFor returns a position held for site, or nil.
func (n *Node) positionFor(site ids.SiteID) *position {
	for _, p := range n.positions {
		if p.site == site {
			return p
		}
	}
	return nil
}

func (n *Node) positionsOf(site ids.SiteID) []*position {
	var out []*position
	for _, p := range n.positions {
		if p.site == site {
			out = append(out, p)
		}
	}
	return out
}

// routeRing returns the routing state a lookup for key leaves this node
// from: a held position's (live is that position), or, for a node that gave
// its positions up a short while ago, the last routing state it had, so that
// routes that still point at it keep working.
func (n *Node) routeRing(key ids.Key) (ring *dring.State, live *position) {
	if p := n.routeFrom(key); p != nil {
		return p.ring, p
	}
	n.ghosts = slices.DeleteFunc(n.ghosts, func(g ghost) bool { return g.until <= n.now })
	var best *dring.State
	for _, g := range n.ghosts {
		if best == nil || dring.Distance(g.ring.Self.Key, key) < dring.Distance(best.Self.Key, key) {
			best = g.ring
		}
	}
	return best, nil
}

// ghostNext is where a former position forwards a lookup it would have
// answered itself: to the peer that holds that position now, else to its
// successor.
func (n *Node) ghostNext(ring *dring.State) ids.Member {
	for _, g := range n.ghosts {
		if g.ring == ring && !g.winner.IsZero() {
			return g.winner
		}
	}
	return ring.Successor()
}

// routeFrom picks the held position that most closely precedes (or is) key:
// lookups leave the node from there.
func (n *Node) routeFrom(key ids.Key) *position {
	var best *position
	for _, p := range n.positions {
		if best == nil || dring.Distance(p.key, key) < dring.Distance(best.key, key) {
			best = p
		}
	}
	return best
}

// becomeDirectory installs a position after a successful tryJoin:
// updateRole(ws, directory).
func (n *Node) becomeDirectory(sp *sitePeer, key ids.Key, succ ids.Member, succs []ids.Member, gen uint32) *position {
	_, _, inst := n.layout.Split(key)
	self := ids.Member{Key: key, ID: n.id}
	p := &position{
		site:  sp.site,
		key:   key,
		inst:  inst,
		epoch: n.newID(),
		gen:   gen,
		ring:  dring.New(self, n.cfg.SuccessorListLen),
		index: directory.NewIndex(n.cfg.BloomFP),
		sums:  directory.NewSummaries(),
	}
	if !succ.IsZero() && succ.ID != n.id {
		p.ring.SetSuccessors(succ, succs)
	}
	n.positions = append(n.positions, p)
	slices.SortFunc(n.positions, func(a, b *position) int { return cmp.Compare(a.key, b.key) })
	sp.dir = wire.DirInfo{Member: self, Gen: gen}
	sp.join = joinIdle
	sp.pushReq = 0
	// The directory indexes its own cache.
	p.index.Apply(n.id, n.now, true, sp.cache.Objects(), nil)
	sp.cache.TakeChanges()
	n.setRole(sp, RoleDirectory, key)
	n.after(n.cfg.StabilizePeriod/4+1, timer{kind: tStabilize, key: key, id: p.epoch})
	n.after(n.cfg.FixFingersPeriod, timer{kind: tFixFinger, key: key, id: p.epoch})
	n.after(2*n.cfg.StabilizePeriod+n.jitter(n.cfg.StabilizePeriod), timer{kind: tRingCheck, key: key, id: p.epoch})
	n.after(n.cfg.SummaryMinInterval, timer{kind: tSummary, key: key, id: p.epoch})
	n.after(n.cfg.KeepalivePeriod, timer{kind: tExpire, key: key, id: p.epoch})
	n.discover(p)
	n.askEntries(sp.site) // the bootstrap lists the other localities' directories
	// updateDir-info for the petal: tell the contacts at once that this
	// peer is their directory now, rather than wait for gossip.
	for _, e := range sp.view.Entries() {
		n.send(e.ID, &wire.InitView{Site: sp.site, Dir: sp.dir})
	}
	return p
}

func (n *Node) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(n.rnd.Int64N(int64(d)))
}

// dropPosition leaves a position (stepping down or going offline).
func (n *Node) dropPosition(p *position) {
	n.positions = slices.DeleteFunc(n.positions, func(q *position) bool { return q == p })
	p.epoch = 0
}

// stepDown gives up position p to winner (another peer holds the same key
// and wins the tie-break): the node goes back to being a content peer.
func (n *Node) stepDown(p *position, winner ids.Member) {
	sp := n.sites[p.site]
	n.dropPosition(p)
	n.ghosts = append(n.ghosts, ghost{ring: p.ring, winner: winner, until: n.now + 4*n.cfg.StabilizePeriod})
	sp.dir = wire.DirInfo{Member: winner, Gen: p.gen}
	sp.needFull = true
	n.setRole(sp, RoleContent, 0)
	n.push(sp)
}

// assignDir is the dir-info a new client of p's petal gets: p itself, or,
// once PetalUp-CDN split the petal, the instances in turn.
func (n *Node) assignDir(p *position) wire.DirInfo {
	self := wire.DirInfo{Member: p.ring.Self, Gen: p.gen}
	inst := n.instances(p)
	if len(inst) == 0 {
		return self
	}
	p.rr = (p.rr + 1) % (len(inst) + 1)
	if p.rr == 0 {
		return self
	}
	return wire.DirInfo{Member: inst[p.rr-1]}
}

// children returns the live instances p created by PetalUp promotion.
func (n *Node) children(p *position) []ids.Member {
	var out []ids.Member
	for _, m := range n.instances(p) {
		if slices.Contains(p.children, m.Key) {
			out = append(out, m)
		}
	}
	return out
}

// instances returns the other directory instances of p's petal it knows.
func (n *Node) instances(p *position) []ids.Member {
	var out []ids.Member
	for _, m := range p.sums.Members() {
		if m.Key != p.key && n.samePetal(m.Key, p.key) {
			out = append(out, m)
		}
	}
	return out
}

// onPush is processPush(p) and processKeepalive(k).
func (n *Node) onPush(from ids.PeerID, m *wire.Push) {
	p := n.position(m.Key)
	if p == nil || p.site != m.Site {
		var hint wire.DirInfo
		if sp := n.sites[m.Site]; sp != nil && sp.dir.Member.Key == m.Key && sp.dir.Member.ID != n.id && sp.dir.Member.ID != from {
			hint = sp.dir
		}
		n.send(from, &wire.PushAck{Site: m.Site, Key: m.Key, OK: false, Dir: hint})
		return
	}
	switch {
	case n.cfg.LeaveHandover && m.Full && len(m.Added) == 0 && from != n.id:
		// A content peer that holds nothing: with LeaveHandover, what a
		// peer going offline sends. It is no longer a content peer here.
		p.index.RemovePeer(from)
	case !n.avoiding(from):
		p.index.Apply(from, n.now, m.Full, m.Added, m.Removed)
		if m.Up > 0 {
			x := p.index.Peer(from)
			x.UpSince, x.UpKnown = n.now-time.Duration(m.Up)*time.Second, true
		}
	}
	n.deltaSoon(p)
	ack := &wire.PushAck{Site: m.Site, Key: m.Key, OK: true, Dir: wire.DirInfo{Member: p.ring.Self, Gen: p.gen}}
	// PetalUp-CDN: after a split, a directory hands half of its content
	// peers, as they push, over to the instances it created.
	if p.handover > 0 && from != n.id {
		if kids := n.children(p); len(kids) > 0 {
			p.rr = (p.rr + 1) % len(kids)
			ack.Dir = wire.DirInfo{Member: kids[p.rr]}
			p.index.RemovePeer(from)
			p.handover--
		}
	}
	n.send(from, ack)
}

func (n *Node) onDirSummary(from ids.PeerID, m *wire.DirSummary) {
	if m.From.ID != from {
		return
	}
	for _, p := range n.positionsOf(m.Site) {
		if m.From.Key == p.key {
			continue
		}
		prev := p.sums.Get(m.From.Key)
		fresh := prev == nil || prev.Member != m.From || prev.Summary == nil
		if m.Summary != nil {
			p.sums.Receive(m.From, m.Summary, n.now)
		} else if !p.sums.ReceiveDelta(m.From, m.Added, n.now) {
			p.sums.Know(m.From, n.now)
		}
		if fresh {
			// A directory we had no summary from: it has none of ours
			// either (deltas are useless without a base), send it whole.
			n.send(from, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary()})
		}
		for _, d := range m.Dirs {
			if d.ID != n.id && n.layout.SameSite(d.Key, m.Site) {
				p.sums.Know(d, n.now)
			}
		}
	}
}

// summaryRound sends the directory summary to the other directories of the
// website: the whole filter every SummaryPeriod (with discovery of the other
// localities' directories) or after objects left the index, and in between
// a delta of the objects that entered it once SummaryChanges accumulated.
func (n *Node) summaryRound(p *position) {
	p.sums.Expire(n.now - 3*n.cfg.SummaryPeriod)
	if n.now-p.lastSum >= n.cfg.SummaryPeriod {
		n.discover(p)
		n.sendSummary(p)
		for _, d := range p.sums.Members() {
			if _, known := n.rtt[d.ID]; !known && d.ID != n.id {
				n.pingRemote(d)
			}
		}
		return
	}
	if p.index.Changes() >= n.cfg.SummaryChanges {
		n.sendSummaryDelta(p)
	}
	// While some locality's directory is still unknown (a fresh D-ring,
	// or one that failed), look again every stabilization period.
	if n.now-p.lastDiscover >= n.cfg.StabilizePeriod && n.missingLocalities(p) {
		n.discover(p)
		n.askEntries(p.site) // the bootstrap lists them too
	}
}

// missingLocalities reports whether p lacks a summary from the directory of
// some other locality of its website.
func (n *Node) missingLocalities(p *position) bool {
	have := 0
	for _, m := range p.sums.Members() {
		if _, _, inst := n.layout.Split(m.Key); inst == 0 && !n.samePetal(m.Key, p.key) && p.sums.Get(m.Key).Summary != nil {
			have++
		}
	}
	return have < n.cfg.Localities-1
}

func (n *Node) sendSummary(p *position) {
	p.lastSum = n.now
	p.index.TakeChanges()
	n.broadcastSummary(p, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary()})
}

// deltaSoon sends a summary delta at once when the index changed and the
// last delta is at least SummaryMinInterval old (the periodic round sends
// the rest), so other localities learn of an object within a message delay.
func (n *Node) deltaSoon(p *position) {
	if p.index.Changes() >= n.cfg.SummaryChanges && n.now-p.lastDelta >= n.cfg.SummaryMinInterval {
		n.sendSummaryDelta(p)
	}
}

func (n *Node) sendSummaryDelta(p *position) {
	p.lastDelta = n.now
	added, removed := p.index.TakeChanges()
	if removed > len(added) || len(added) > wire.MaxIDs {
		p.lastSum = n.now
		n.broadcastSummary(p, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary()})
		return
	}
	n.broadcastSummary(p, &wire.DirSummary{Site: p.site, From: p.ring.Self, Added: added})
}

func (n *Node) broadcastSummary(p *position, tmpl *wire.DirSummary) {
	members := p.sums.Members()
	dirs := append([]ids.Member{p.ring.Self}, members...)
	if len(dirs) > wire.MaxDirs {
		dirs = dirs[:wire.MaxDirs]
	}
	if tmpl.Summary != nil {
		tmpl.Dirs = dirs
	}
	for _, d := range members {
		if d.ID != n.id {
			n.send(d.ID, tmpl)
		}
	}
}

// discover looks up the directories of the website's other localities.
func (n *Node) discover(p *position) {
	p.lastDiscover = n.now
	for loc := 0; loc < n.cfg.Localities; loc++ {
		k := n.layout.Key(p.site, loc, 0)
		if k == p.key {
			continue
		}
		n.findSucc(n.id, &request{kind: reqDiscover, key: p.key, target: k})
	}
}

// expireRound drops content peers that missed KeepaliveMisses keepalive
// periods, and runs the PetalUp-CDN split check.
func (n *Node) expireRound(p *position) {
	p.index.Expire(n.now - n.cfg.KeepalivePeriod*time.Duration(n.cfg.KeepaliveMisses))
	if p.index.NumPeers() <= n.cfg.PetalMaxPeers || p.handover > 0 ||
		(p.promotedAt > 0 && n.now-p.promotedAt < 2*n.cfg.KeepalivePeriod) {
		return
	}
	inst := n.instances(p)
	if len(inst)+1 >= n.layout.MaxInstances() {
		return
	}
	used := map[int]bool{0: true, p.inst: true}
	for _, m := range inst {
		_, _, i := n.layout.Split(m.Key)
		used[i] = true
	}
	next := 1
	for used[next] {
		next++
	}
	// Promote the content peer holding the most objects (ties: lowest id).
	var best ids.PeerID
	bestN := -1
	for _, id := range p.index.PeerIDs() {
		if id == n.id {
			continue
		}
		if c := len(p.index.Peer(id).Objs); c > bestN {
			best, bestN = id, c
		}
	}
	if bestN < 0 {
		return
	}
	key := n.layout.Key(p.site, n.loc, next)
	if !slices.Contains(p.children, key) {
		p.children = append(p.children, key)
	}
	p.handover = p.index.NumPeers() / 2
	p.promotedAt = n.now
	n.send(best, &wire.Promote{Site: p.site, Key: key, Gen: p.gen, Dirs: append([]ids.Member{p.ring.Self}, inst...)})
}

// onPromote: PetalUp-CDN asks this content peer to become a new directory
// instance of its petal.
func (n *Node) onPromote(from ids.PeerID, m *wire.Promote) {
	sp := n.sites[m.Site]
	if sp == nil || n.Role(m.Site) != RoleContent || !n.samePetal(m.Key, sp.baseKey) || sp.dir.Member.ID != from {
		return
	}
	sp.promotedDirs = m.Dirs
	n.tryJoin(sp, m.Key)
}

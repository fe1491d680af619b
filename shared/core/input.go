package core

import (
	"maps"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/content"
	"github.com/flowercdn/flower/shared/gossip"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// AddInterest is addInterest(ws): the node takes part in website site as a
// client until it joins a petal.
func (n *Node) AddInterest(now time.Duration, site ids.SiteID) {
	n.enter(now)
	defer n.leave()
	n.site(site)
}

func (n *Node) site(site ids.SiteID) *sitePeer {
	if sp := n.sites[site]; sp != nil {
		return sp
	}
	n.interest.AddInterest(site)
	sp := &sitePeer{
		site:    site,
		epoch:   n.newID(),
		cache:   content.NewCache(n.cfg.CacheBytes, n.cfg.BloomFP),
		view:    gossip.NewView(n.cfg.ViewSize),
		baseKey: n.layout.Key(site, n.loc, 0),
	}
	n.sites[site] = sp
	n.ready.Roles = append(n.ready.Roles, RoleChange{Site: site, Role: RoleClient})
	return sp
}

// RemoveInterest is removeInterest(ws): the node leaves the website,
// dropping its cache and any directory position for it. The website's
// queries still in progress end at once as Aborted answers (the host serves
// them from the origin outside Flower-CDN if it still wants them). With
// Config.LeaveHandover it leaves as GoOffline does: a directory names its
// successor to its content peers (handOver), a content peer tells its
// directory it holds nothing.
func (n *Node) RemoveInterest(now time.Duration, site ids.SiteID) {
	n.enter(now)
	defer n.leave()
	sp := n.sites[site]
	if sp == nil {
		return
	}
	for _, qid := range slices.Sorted(maps.Keys(n.queries)) {
		q := n.queries[qid]
		if q.site != site {
			continue
		}
		delete(n.queries, qid)
		n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: site, Obj: q.obj, Source: SourceOrigin, Failed: true, Aborted: true})
		for i := range q.waiters {
			w := &q.waiters[i]
			n.send(w.Origin, &wire.Miss{QID: w.QID, Site: w.Site, Obj: w.Obj})
		}
	}
	for k := range n.fetching {
		if k.site == site {
			delete(n.fetching, k)
		}
	}
	if n.cfg.LeaveHandover && n.online {
		for _, p := range n.positionsOf(site) {
			n.handOver(p)
		}
		if n.Role(site) == RoleContent && !sp.dir.Member.IsZero() && sp.dir.Member.ID != n.id {
			n.send(sp.dir.Member.ID, &wire.Push{Site: site, Key: sp.dir.Member.Key, Full: true})
		}
	}
	for _, p := range n.positionsOf(site) {
		// Routes that still lead here keep working for a while.
		n.ghosts = append(n.ghosts, ghost{ring: p.ring, until: n.now + 4*n.cfg.StabilizePeriod})
		n.dropPosition(p)
	}
	for id, r := range n.reqs {
		if r.site == site && r.kind != reqEntries {
			delete(n.reqs, id)
		}
	}
	for k := range n.shuffles {
		if k.site == site {
			delete(n.shuffles, k)
		}
	}
	delete(n.sites, site)
	n.interest.RemoveInterest(site)
	n.ready.Roles = append(n.ready.Roles, RoleChange{Site: site, Role: RoleNone})
	n.ready.Persist = true
}

// Receive delivers a message from peer from. A message claiming to come
// from the node itself is dropped: the node's messages to itself never cross
// a network (they could only be forged, and a forged self-predecessor is one
// that stabilization never checks).
func (n *Node) Receive(now time.Duration, from ids.PeerID, m wire.Msg) {
	n.enter(now)
	defer n.leave()
	if !n.online || m == nil || from.IsZero() || from == n.id {
		return
	}
	n.handle(from, m)
}

func (n *Node) handle(from ids.PeerID, m wire.Msg) {
	switch m := m.(type) {
	case *wire.Query:
		n.onQuery(from, m)
	case *wire.Miss:
		n.onMiss(from, m)
	case *wire.NotFound:
		n.onNotFound(from, m)
	case *wire.InitView:
		n.onInitView(from, m)
	case *wire.Shuffle:
		n.onShuffle(from, m)
	case *wire.Push:
		n.onPush(from, m)
	case *wire.PushAck:
		n.onPushAck(from, m)
	case *wire.DirSummary:
		n.onDirSummary(from, m)
	case *wire.FindSucc:
		n.onFindSucc(from, m)
	case *wire.FoundSucc:
		n.onFoundSucc(from, m)
	case *wire.GetPred:
		n.onGetPred(from, m)
	case *wire.PredReply:
		n.onPredReply(from, m)
	case *wire.Join:
		n.onJoin(from, m)
	case *wire.JoinReply:
		n.onJoinReply(from, m)
	case *wire.Notify:
		n.onNotify(from, m)
	case *wire.Ping:
		n.onPing(from, m)
	case *wire.Pong:
		n.onPong(from, m)
	case *wire.Promote:
		n.onPromote(from, m)
	case *wire.Served:
		n.onServed(from, m)
	}
}

// Unreachable tells the node that peer cannot be reached: a connection to it
// failed, or closed when the node did not close it. Whatever waits on that
// peer fails now instead of at its timeout: requests, queries asked of it,
// queries a directory forwarded to it; it stops being an entry point.
func (n *Node) Unreachable(now time.Duration, peer ids.PeerID) {
	n.enter(now)
	defer n.leave()
	if !n.online || peer == n.id || peer.IsZero() {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(n.reqs)) {
		if r := n.reqs[id]; r != nil && r.peer == peer {
			delete(n.reqs, id)
			n.requestFailed(r)
		}
	}
	for _, qid := range slices.Sorted(maps.Keys(n.queries)) {
		q := n.queries[qid]
		if q == nil || q.target != peer {
			continue
		}
		if q.receiving {
			n.transferFailed(q, peer)
			continue
		}
		switch q.stage {
		case stageAsk:
			n.queryTimeout(q)
		case stageDir:
			n.dirGone(q, q.site, q.dirAsked, "dir_unreachable")
		case stageLookup:
			n.dropEntry(peer)
			n.fetchOrigin(q, "lookup_unreachable")
		}
	}
	for _, p := range slices.Clone(n.positions) {
		for _, id := range slices.Sorted(maps.Keys(p.forwards)) {
			if f := p.forwards[id]; f != nil && f.holder == peer {
				p.index.Suspect(peer)
				n.forwardFailed(p, id)
			}
		}
	}
	n.dropEntry(peer)
}

// setRole is updateRole(ws, r).
func (n *Node) setRole(sp *sitePeer, r Role, key ids.Key) {
	if n.interest.UpdateRole(sp.site, r) {
		n.ready.Roles = append(n.ready.Roles, RoleChange{Site: sp.site, Role: r, Key: key})
		n.ready.Persist = true
	}
	if r == RoleContent || r == RoleDirectory {
		n.armSite(sp)
	}
}

func (n *Node) armSite(sp *sitePeer) {
	if sp.armed || !n.online {
		return
	}
	sp.armed = true
	n.after(time.Duration(n.rnd.Int64N(int64(n.cfg.GossipPeriod)))+1, timer{kind: tGossip, site: sp.site, id: sp.epoch})
	n.after(time.Duration(n.rnd.Int64N(int64(n.cfg.KeepalivePeriod)))+1, timer{kind: tKeepalive, site: sp.site, id: sp.epoch})
}

// GoOffline takes the node off the network (the user closed the browser).
// Its stored state (cache, view, dir-info) is kept for Reconnect; pending
// queries are aborted and reported as failed answers with Aborted set.
func (n *Node) GoOffline(now time.Duration) {
	n.enter(now)
	defer n.leave()
	if !n.online {
		return
	}
	for _, qid := range slices.Sorted(maps.Keys(n.queries)) {
		q := n.queries[qid]
		n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: q.site, Obj: q.obj, Source: SourceOrigin, Failed: true, Aborted: true})
	}
	clear(n.queries)
	clear(n.fetching)
	if n.cfg.LeaveHandover {
		n.sayGoodbye()
	}
	for _, p := range slices.Clone(n.positions) {
		sp := n.sites[p.site]
		sp.ret, sp.wasDir = returnReclaim, p.key
		n.dropPosition(p)
		n.setRole(sp, RoleContent, 0)
	}
	clear(n.reqs)
	clear(n.shuffles)
	n.timers = n.timers[:0]
	n.selfq = n.selfq[:0]
	n.resetEntries()
	n.ghosts = nil
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		sp.armed, sp.pushReq, sp.join, sp.rejoinLeft = false, 0, joinIdle, 0
		if sp.ret == returnRejoin {
			sp.ret = returnNone
		}
		sp.epoch = n.newID()
	}
	n.online = false
}

// Reconnect brings the node back. Following the seed, each content peer
// first tries the contacts of its stored view and only rejoins as a new
// client when none answers; a former directory tries to take its position
// back (tryJoin), or learns who holds it now.
func (n *Node) Reconnect(now time.Duration) {
	n.enter(now)
	defer n.leave()
	if n.online {
		return
	}
	n.online = true
	n.upSince = n.now
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		sp.needFull = true
		if sp.ret == returnReclaim && n.noDirectory() {
			// SetRestrictions before Reconnect: no position to take back.
			sp.ret = returnNone
			if sp.dir.Member.ID == n.id {
				sp.dir = wire.DirInfo{}
			}
		}
		if sp.ret == returnReclaim {
			sp.ret = returnNone
			n.armSite(sp)
			n.tryJoin(sp, sp.wasDir)
			continue
		}
		if n.Role(site) != RoleContent {
			continue
		}
		n.armSite(sp)
		n.rejoinPetal(sp)
	}
}

package core

import (
	"math"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// joinKey is the D-ring key this peer would replace its directory at: its
// current directory's key when that is a position of its own petal (a
// PetalUp instance), generateKey(ws, loc) otherwise.
func (n *Node) joinKey(sp *sitePeer) ids.Key {
	if !sp.dir.Member.IsZero() && n.samePetal(sp.dir.Member.Key, sp.baseKey) {
		return sp.dir.Member.Key
	}
	return sp.baseKey
}

// samePetal reports whether two keys differ only in their instance number.
func (n *Node) samePetal(a, b ids.Key) bool {
	pa, la, _ := n.layout.Split(a)
	pb, lb, _ := n.layout.Split(b)
	return pa == pb && la == lb
}

// gossipRound is one CYCLON shuffle: age the view, pick the oldest contact,
// send it a random subset of the view with a fresh entry for ourselves.
func (n *Node) gossipRound(sp *sitePeer) {
	role := n.Role(sp.site)
	if role != RoleContent && role != RoleDirectory {
		return
	}
	sp.view.IncreaseAges()
	q, ok := sp.view.Oldest()
	if !ok {
		return
	}
	n.shuffleWith(sp, q, false)
}

func (n *Node) shuffleWith(sp *sitePeer, q ids.PeerID, reconnect bool) {
	k := shuffleKey{sp.site, q}
	if _, busy := n.shuffles[k]; busy {
		return
	}
	sent := sp.view.Sample(n.rnd, n.cfg.GossipSubset-1, q)
	msg := &wire.Shuffle{Site: sp.site, Dir: sp.dir, View: append(sent, wire.Contact{ID: n.id}), Summary: n.summaryFor(sp, q)}
	id := n.request(&request{kind: reqShuffle, site: sp.site, peer: q, sent: sent, reconnect: reconnect}, n.timeoutFor(q))
	n.shuffles[k] = id
	n.send(q, msg)
}

// summaryFor returns our content summary if contact q has not had this
// version yet (nil otherwise), and records that it has now.
func (n *Node) summaryFor(sp *sitePeer, q ids.PeerID) *bloom.BloomFilter {
	v := sp.cache.SummaryVersion()
	if e := sp.view.Get(q); e != nil {
		if e.SentVersion == v {
			return nil
		}
		e.SentVersion = v
	}
	return sp.cache.Summary()
}

func (n *Node) onShuffle(from ids.PeerID, m *wire.Shuffle) {
	sp := n.sites[m.Site]
	if sp == nil {
		return
	}
	role := n.Role(m.Site)
	if !m.Reply {
		if role != RoleContent && role != RoleDirectory {
			return // not in a petal: the sender times out and drops us
		}
		reply := sp.view.Sample(n.rnd, n.cfg.GossipSubset, from)
		sp.view.Merge(n.id, m.View, reply)
		n.purgeAvoided(sp)
		sp.view.SetSummary(from, m.Summary)
		n.send(from, &wire.Shuffle{Site: m.Site, Reply: true, Dir: sp.dir, View: reply, Summary: n.summaryFor(sp, from)})
		n.gossipDir(sp, m.Dir)
		return
	}
	k := shuffleKey{m.Site, from}
	id, ok := n.shuffles[k]
	if !ok {
		return
	}
	delete(n.shuffles, k)
	r := n.take(id, reqShuffle)
	if r == nil {
		return
	}
	sp.view.Merge(n.id, m.View, r.sent)
	n.purgeAvoided(sp)
	if e := sp.view.Get(from); e != nil {
		e.Age = 0
	} else {
		sp.view.AddContact(wire.Contact{ID: from})
	}
	sp.view.SetSummary(from, m.Summary)
	n.gossipDir(sp, m.Dir)
	if r.reconnect && sp.ret == returnRejoin {
		// Gossip with a stored contact answered: back in the petal.
		sp.ret, sp.rejoinLeft = returnNone, 0
		n.push(sp)
	}
}

// gossipDir adopts dir-info carried by gossip when it is newer.
func (n *Node) gossipDir(sp *sitePeer, d wire.DirInfo) {
	if d.Member.IsZero() || d.Member.ID == n.id || n.Role(sp.site) != RoleContent {
		return
	}
	if sp.dir.Member.IsZero() || (d.Member.Key == sp.dir.Member.Key && d.Gen > sp.dir.Gen) {
		n.updateDirInfo(sp, d)
	}
}

func (n *Node) shuffleFailed(r *request) {
	k := shuffleKey{r.site, r.peer}
	if n.shuffles[k] == r.id {
		delete(n.shuffles, k)
	}
	sp := n.sites[r.site]
	if sp == nil {
		return
	}
	sp.view.RemoveContact(r.peer) // removeContact: it did not answer
	if r.reconnect && sp.ret == returnRejoin {
		sp.rejoinLeft--
		if sp.rejoinLeft <= 0 {
			sp.ret = returnNone
			n.rejoinAsClient(sp)
		}
	}
}

// rejoinPetal tries the contacts of the stored view after a disconnection.
func (n *Node) rejoinPetal(sp *sitePeer) {
	contacts := sp.view.Contacts()
	if len(contacts) == 0 {
		n.rejoinAsClient(sp)
		return
	}
	sp.ret, sp.rejoinLeft = returnRejoin, 0
	for i, c := range contacts {
		if i >= n.cfg.ReconnectTries {
			break
		}
		sp.rejoinLeft++
		n.shuffleWith(sp, c.ID, true)
	}
}

// rejoinAsClient: no stored contact answered, the peer is a new client again
// and its next query goes through D-ring.
func (n *Node) rejoinAsClient(sp *sitePeer) {
	for _, c := range sp.view.Contacts() {
		sp.view.RemoveContact(c.ID)
	}
	sp.dir = wire.DirInfo{}
	sp.needFull = true
	n.setRole(sp, RoleClient, 0)
}

// keepaliveRound sends a keepalive (carrying pending changes, if any) when
// nothing was pushed during the last period.
func (n *Node) keepaliveRound(sp *sitePeer) {
	// Objects whose expiry passed leave the cache (and the directory's
	// index, through the push or directly).
	if sp.cache.ExpireBefore(n.now, n.evicted(sp)) > 0 {
		n.cacheChanged(sp)
	}
	if n.Role(sp.site) != RoleContent {
		return
	}
	if n.now-sp.lastPush >= n.cfg.KeepalivePeriod*9/10 || sp.needFull {
		n.push(sp)
	}
}

// push sends the cache changes (or everything, after a directory change) to
// the directory; with no change it is a keepalive.
func (n *Node) push(sp *sitePeer) {
	if sp.pushReq != 0 || n.Role(sp.site) != RoleContent || sp.dir.Member.IsZero() || sp.joinBusy() {
		return
	}
	msg := &wire.Push{Site: sp.site, Key: sp.dir.Member.Key}
	if sp.needFull {
		sp.cache.TakeChanges()
		msg.Full = true
		msg.Added = sp.cache.Objects()
		if len(msg.Added) > wire.MaxIDs {
			msg.Added = msg.Added[len(msg.Added)-wire.MaxIDs:]
		}
	} else {
		msg.Added, msg.Removed = sp.cache.TakeChanges()
		if len(msg.Added) > wire.MaxIDs || len(msg.Removed) > wire.MaxIDs {
			sp.needFull = true
			n.push(sp)
			return
		}
	}
	if n.cfg.LeaveHandover {
		msg.Up = uint32(min((n.now-n.upSince)/time.Second, math.MaxUint32))
	}
	sp.needFull = false
	sp.lastPush = n.now
	d := sp.dir.Member.ID
	sp.pushReq = n.request(&request{kind: reqPush, site: sp.site, peer: d, key: sp.dir.Member.Key}, n.timeoutFor(d)+n.cfg.RequestTimeout)
	n.send(d, msg)
}

func (n *Node) onPushAck(from ids.PeerID, m *wire.PushAck) {
	sp := n.sites[m.Site]
	if sp == nil || n.cfg.LeaveHandover && n.onGoodbye(sp, from, m) || sp.pushReq == 0 {
		return
	}
	r := n.reqs[sp.pushReq]
	if r == nil || r.peer != from {
		return
	}
	n.take(sp.pushReq, reqPush)
	sp.pushReq = 0
	switch {
	case m.OK && (m.Dir.Member.IsZero() || m.Dir.Member.ID == from):
		if !m.Dir.Member.IsZero() {
			sp.dir.Gen = max(sp.dir.Gen, m.Dir.Gen)
		}
	case !m.Dir.Member.IsZero() && m.Dir.Member.ID != n.id:
		// Redirected: a newer directory, or a PetalUp instance.
		n.updateDirInfo(sp, m.Dir)
		n.push(sp)
	default:
		// The peer is no longer the directory and knows no other.
		sp.needFull = true
		n.tryJoin(sp, m.Key)
	}
}

func (n *Node) pushFailed(r *request) {
	sp := n.sites[r.site]
	if sp == nil || sp.pushReq != r.id {
		return
	}
	sp.pushReq = 0
	sp.needFull = true
	// The directory is not alive: try to replace it (tryJoin).
	n.tryJoin(sp, r.key)
}

package core

import (
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// A peer that sent an object that failed verification is avoided for a
// while: it leaves every view and directory index of this node, is not taken
// back from gossip, and its pushes and queries do not make it a holder here.
const (
	avoidFor   = 10 * time.Minute
	maxAvoided = 256
)

// avoidPeer starts avoiding p.
func (n *Node) avoidPeer(p ids.PeerID) {
	if p.IsZero() || p == n.id {
		return
	}
	if n.avoided == nil {
		n.avoided = make(map[ids.PeerID]time.Duration)
	}
	if _, ok := n.avoided[p]; !ok && len(n.avoided) >= maxAvoided {
		// Forget the one whose avoidance ends first (ties: lowest id).
		var victim ids.PeerID
		var at time.Duration = -1
		for id, until := range n.avoided {
			if at < 0 || until < at || until == at && id.Less(victim) {
				victim, at = id, until
			}
		}
		delete(n.avoided, victim)
	}
	n.avoided[p] = n.now + avoidFor
	for _, site := range n.interest.Sites() {
		n.sites[site].view.RemoveContact(p)
	}
	for _, pos := range n.positions {
		pos.index.RemovePeer(p)
	}
	n.dropEntry(p)
}

// avoiding reports whether p is avoided now.
func (n *Node) avoiding(p ids.PeerID) bool {
	if len(n.avoided) == 0 {
		return false
	}
	until, ok := n.avoided[p]
	if ok && n.now >= until {
		delete(n.avoided, p)
		return false
	}
	return ok
}

// purgeAvoided removes avoided peers that gossip brought back into sp's view.
func (n *Node) purgeAvoided(sp *sitePeer) {
	if len(n.avoided) == 0 {
		return
	}
	for _, c := range sp.view.Contacts() {
		if n.avoiding(c.ID) {
			sp.view.RemoveContact(c.ID)
		}
	}
}

// addHolder records at directory position p that peer holds (or is about to
// hold) obj, unless the peer is avoided.
func (n *Node) addHolder(p *position, obj ids.ObjectID, peer ids.PeerID) {
	if !n.avoiding(peer) {
		p.index.AddHolder(obj, peer, n.now)
	}
}

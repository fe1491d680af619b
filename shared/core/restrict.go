package core

import (
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Restrictions limit what a node does for other peers: the visitor's
// choice (pause sharing), or its device's state (a metered connection, a
// battery saver, the browser's Save-Data). Beyond the papers.
type Restrictions struct {
	// NoDirectory: the node never takes a D-ring position. One it holds
	// when this is set is handed over as on a clean leave (handOver names
	// the successor to the petal) and the node stays a content peer of its
	// petal; a former position is not reclaimed on Reconnect.
	NoDirectory bool
	// NoServe: the node serves no object. A query for an object it holds
	// is answered with a Miss, as if it did not hold it, so the asker
	// moves on at once (to another holder, the directory, or the origin).
	NoServe bool
}

// SetRestrictions sets the node's restrictions; they apply at once. It may
// be called on an offline (restored) node before Reconnect.
func (n *Node) SetRestrictions(now time.Duration, r Restrictions) {
	n.enter(now)
	defer n.leave()
	was := n.restrict
	n.restrict = r
	if !r.NoDirectory || was.NoDirectory {
		return
	}
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		if sp.join != joinIdle {
			// A tryJoin under way ends here: its reply finds the site
			// peer idle and is dropped.
			sp.join = joinIdle
		}
		if sp.ret == returnReclaim {
			sp.ret = returnNone
			if sp.dir.Member.ID == n.id {
				sp.dir = wire.DirInfo{}
			}
		}
	}
	if !n.online {
		return
	}
	for len(n.positions) > 0 {
		n.giveUp(n.positions[0])
	}
}

// Restrictions returns the node's restrictions.
func (n *Node) Restrictions() Restrictions { return n.restrict }

// giveUp leaves position p while the node stays online (NoDirectory): the
// content peers of its index are told who takes over (handOver, the
// LeaveHandover goodbye), routes that still lead here keep working for a
// while, and the node becomes a content peer of the successor, to which it
// pushes its cache once the successor has had the goodbye.
func (n *Node) giveUp(p *position) {
	sp := n.sites[p.site]
	succ, ok := n.successor(p)
	n.handOver(p)
	winner := ids.Member{}
	if ok {
		winner = ids.Member{Key: p.key, ID: succ}
	}
	n.ghosts = append(n.ghosts, ghost{ring: p.ring, winner: winner, until: n.now + 4*n.cfg.StabilizePeriod})
	n.dropPosition(p)
	if n.positionFor(p.site) != nil {
		return // another position of the same site: given up next
	}
	sp.dir = wire.DirInfo{Member: winner, Gen: p.gen + 1}
	sp.needFull = true
	sp.pushReq = 0
	n.setRole(sp, RoleContent, 0)
	n.ready.Persist = true
	if ok {
		n.after(n.cfg.MinTimeout, timer{kind: tPush, site: sp.site, id: sp.epoch})
	}
}

// noDirectory reports whether the node may not take a D-ring position.
func (n *Node) noDirectory() bool { return n.restrict.NoDirectory }

// mayServe reports whether the node serves objects to other peers.
func (n *Node) mayServe() bool { return !n.restrict.NoServe }

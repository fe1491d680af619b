package core

import (
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

func (n *Node) request(r *request, timeout time.Duration) uint64 {
	r.id = n.newID()
	r.at = n.now
	n.reqs[r.id] = r
	n.after(timeout, timer{kind: tRequest, id: r.id})
	return r.id
}

// take removes and returns the outstanding request id of the given kind.
func (n *Node) take(id uint64, kind reqKind) *request {
	r := n.reqs[id]
	if r == nil || r.kind != kind {
		return nil
	}
	delete(n.reqs, id)
	n.observeRTT(r.peer, n.now-r.at)
	return r
}

func (n *Node) observeRTT(p ids.PeerID, d time.Duration) {
	if p.IsZero() || p == n.id || d < 0 {
		return
	}
	if len(n.rtt) > 4*n.cfg.ViewSize+64 {
		clear(n.rtt)
	}
	if old, ok := n.rtt[p]; ok {
		d = (3*old + d) / 4
	}
	n.rtt[p] = d
}

// timeoutFor is the request timeout towards p: a multiple of its RTT, or
// RequestTimeout when the RTT is unknown.
func (n *Node) timeoutFor(p ids.PeerID) time.Duration {
	r, ok := n.rtt[p]
	if !ok {
		return n.cfg.RequestTimeout
	}
	return min(max(time.Duration(float64(r)*n.cfg.RTTFactor), n.cfg.MinTimeout), n.cfg.RequestTimeout)
}

// requestFailed handles a request that timed out, or whose peer the host
// reported unreachable.
func (n *Node) requestFailed(r *request) {
	switch r.kind {
	case reqShuffle:
		n.shuffleFailed(r)
	case reqPush:
		n.pushFailed(r)
	case reqJoinFind, reqJoin:
		n.joinFailed(r)
	case reqRingCheck:
		n.dropEntry(r.peer)
	case reqGetPred:
		if p := n.position(r.key); p != nil {
			p.ring.Remove(r.peer)
		}
	case reqPingPred:
		if p := n.position(r.key); p != nil && p.ring.Pred.ID == r.peer {
			p.ring.Pred = ids.Member{}
		}
	case reqPingDir:
		n.dirDead(r)
	case reqEntries:
		if n.ent.reqs[r.site] == r.id {
			n.entryRequestFailed(r.site)
		}
	}
}

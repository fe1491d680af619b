package core

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

type timerKind uint8

const (
	tRequest    timerKind = iota // id: request id
	tQuery                       // id: query id, seq: stage sequence
	tGossip                      // site
	tKeepalive                   // site
	tStabilize                   // key (position)
	tFixFinger                   // key
	tRingCheck                   // key
	tSummary                     // key
	tExpire                      // key
	tForward                     // key, id: forward id
	tJoin                        // site: a delayed tryJoin
	tEntryRetry                  // id: retry sequence; the backoff after a failed entry-point request ended
	tPush                        // site: a full push to the directory a leaving one named (LeaveHandover)
)

type timer struct {
	at    time.Duration
	seq   uint64 // insertion order: ties are deterministic
	kind  timerKind
	id    uint64 // request or query id, or owner epoch for periodic timers
	stage uint32 // query stage sequence
	site  ids.SiteID
	key   ids.Key
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (n *Node) after(d time.Duration, t timer) {
	t.at = n.now + d
	n.timerSeq++
	t.seq = n.timerSeq
	heap.Push(&n.timers, t)
}

// stale reports whether a timer no longer has anything to do.
func (n *Node) stale(t *timer) bool {
	switch t.kind {
	case tRequest:
		_, ok := n.reqs[t.id]
		return !ok
	case tQuery:
		q, ok := n.queries[t.id]
		return !ok || q.stageSeq != t.stage
	case tGossip, tKeepalive, tJoin, tPush:
		sp := n.sites[t.site]
		return sp == nil || sp.epoch != t.id
	case tEntryRetry:
		return t.id != n.ent.retrySeq
	case tForward:
		p := n.position(t.key)
		return p == nil || p.forwards[t.id] == nil
	default:
		p := n.position(t.key)
		return p == nil || p.epoch != t.id
	}
}

// NextTick is the time of the earliest pending timer (the host calls Tick at
// or after it). It returns -1 when no timer is pending.
func (n *Node) NextTick() time.Duration {
	for len(n.timers) > 0 && n.stale(&n.timers[0]) {
		heap.Pop(&n.timers)
	}
	if len(n.timers) == 0 {
		return -1
	}
	return n.timers[0].at
}

// Tick runs every timer due at now.
func (n *Node) Tick(now time.Duration) {
	n.enter(now)
	defer n.leave()
	if !n.online {
		return
	}
	// Timers armed during this Tick wait for the next one, even when due
	// now: a zero period can never keep Tick from returning.
	last := n.timerSeq
	for len(n.timers) > 0 && n.timers[0].at <= n.now && n.timers[0].seq <= last {
		t := heap.Pop(&n.timers).(timer)
		if n.stale(&t) {
			continue
		}
		n.fire(&t)
	}
}

func (n *Node) fire(t *timer) {
	switch t.kind {
	case tRequest:
		r := n.reqs[t.id]
		delete(n.reqs, t.id)
		n.requestFailed(r)
	case tQuery:
		n.queryTimeout(n.queries[t.id])
	case tGossip, tKeepalive:
		sp := n.sites[t.site]
		if t.kind == tGossip {
			n.gossipRound(sp)
		} else {
			n.keepaliveRound(sp)
		}
		n.after(n.period(t.kind), timer{kind: t.kind, site: sp.site, id: sp.epoch})
	case tStabilize, tFixFinger, tRingCheck, tSummary, tExpire:
		p := n.position(t.key)
		switch t.kind {
		case tStabilize:
			n.stabilize(p)
		case tFixFinger:
			n.fixFinger(p)
		case tRingCheck:
			n.ringCheck(p)
		case tSummary:
			n.summaryRound(p)
		case tExpire:
			n.expireRound(p)
		}
		n.after(n.period(t.kind), timer{kind: t.kind, key: p.key, id: p.epoch})
	case tJoin:
		sp := n.sites[t.site]
		if sp.join != joinDelayed {
			return // a tryJoin started meanwhile
		}
		sp.join = joinIdle
		if n.Role(sp.site) != RoleDirectory {
			n.tryJoin(sp, sp.joinTarget)
		}
	case tEntryRetry:
		n.entryRetry()
	case tPush:
		n.push(n.sites[t.site])
	case tForward:
		p := n.position(t.key)
		f := p.forwards[t.id]
		p.index.Suspect(f.holder) // no Served in time: it is probably gone
		n.forwardFailed(p, t.id)
	}
}

// period is the interval of a periodic timer.
func (n *Node) period(k timerKind) time.Duration {
	switch k {
	case tGossip:
		return n.cfg.GossipPeriod
	case tKeepalive, tExpire:
		return n.cfg.KeepalivePeriod
	case tStabilize:
		return n.cfg.StabilizePeriod
	case tFixFinger:
		return n.cfg.FixFingersPeriod
	case tRingCheck:
		return n.cfg.RingCheckPeriod
	case tSummary:
		return n.cfg.SummaryMinInterval
	}
	panic(fmt.Sprintf("core: timer kind %d is not periodic", k))
}

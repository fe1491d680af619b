package sim

import (
	"context"
	"time"
)

// handler is one simulated system.
type handler interface {
	// up: peer comes online (at time 0 for the initially online peers).
	up(peer int32)
	// down: peer goes offline; its pending queries are already abandoned.
	down(peer int32)
	// query: peer issues query qi for global object obj.
	query(qi int32, peer int32, obj int32)
	// handle: one of the system's own events.
	handle(ev *event)
}

// base is the part of a system's run every system shares: the clock, the
// event queue, the trace cursor, peers' online state and the per-query results.
type base struct {
	w       *World
	q       queue
	now     time.Duration
	online  []bool
	epoch   []uint32 // session number of each peer: grows when it goes offline
	pendN   []int32  // pending queries of each peer in its current session
	pending int      // pending queries of online requesters
	res     results
	tr      traffic
	qnum    int32 // next query number
	events  int64
	anom    map[string]int64
}

func newBase(w *World, names []string) base {
	return base{
		w:      w,
		online: make([]bool, len(w.PeerIDs)),
		epoch:  make([]uint32, len(w.PeerIDs)),
		pendN:  make([]int32, len(w.PeerIDs)),
		res:    newResults(len(w.QueryPos)),
		tr:     traffic{names: names, end: w.End, bytes: make([]int64, len(names))},
		anom:   map[string]int64{},
	}
}

// run drives h through the trace, then lets in-flight queries finish for at
// most cfg.Drain of simulated time. It stops early when ctx is done.
func (b *base) run(ctx context.Context, h handler) error {
	w := b.w
	for i, on := range w.InitOnline {
		if on {
			b.online[i] = true
			h.up(int32(i))
		}
	}
	if len(w.Trace) > 0 {
		b.q.push(event{at: w.Trace[0].At, kind: evTrace})
	}
	deadline := w.End + w.cfg.Drain
	cursor := 0
	for b.q.len() > 0 {
		if cursor == len(w.Trace) && b.pending == 0 {
			break
		}
		ev := b.q.pop()
		if ev.at > deadline {
			break
		}
		b.now = ev.at
		b.events++
		if b.events&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if ev.kind != evTrace {
			h.handle(&ev)
			continue
		}
		te := w.Trace[ev.qid]
		cursor = int(ev.qid) + 1
		if cursor < len(w.Trace) {
			b.q.push(event{at: w.Trace[cursor].At, kind: evTrace, qid: uint64(cursor)})
		}
		p := te.Peer
		switch te.Obj {
		case traceDown:
			b.online[p] = false
			b.epoch[p]++
			b.pending -= int(b.pendN[p])
			b.pendN[p] = 0
			h.down(p)
		case traceUp:
			b.online[p] = true
			h.up(p)
		default:
			qi := b.qnum
			b.qnum++
			b.res.epoch[qi] = b.epoch[p]
			b.pendN[p]++
			b.pending++
			h.query(qi, p, te.Obj)
		}
	}
	return nil
}

// settle records that query qi of peer p is answered. It reports false when
// the answer comes too late (the requester left since it issued the query,
// which then counts as abandoned) or twice.
func (b *base) settle(qi int32, p int32) bool {
	if b.res.epoch[qi] != b.epoch[p] {
		b.anom["late_answers"]++
		return false
	}
	if b.res.out[qi] != outPending {
		b.anom["duplicate_answers"]++
		return false
	}
	b.pendN[p]--
	b.pending--
	return true
}

// issueTime is when query qi was issued.
func (b *base) issueTime(qi int32) time.Duration { return b.w.Trace[b.w.QueryPos[qi]].At }

// send accounts one background message of type t and size bytes.
func (b *base) send(t int, size int) {
	b.tr.msgs++
	if b.now <= b.tr.end {
		b.tr.bytes[t] += int64(size)
	}
}

// metrics summarises the run.
func (b *base) metrics() *Metrics {
	m := summarize(b.w, &b.res, b.epoch, &b.tr)
	m.Events = b.events
	m.SimulatedS = round3(b.now.Seconds())
	if len(b.anom) > 0 {
		m.Anomalies = b.anom
	}
	return m
}

package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/registry"
	"github.com/flowercdn/flower/shared/wire"
)

// lookahead is the length of one synchronisation window of the parallel
// Flower-CDN host. Each locality is one partition; anything that crosses
// partitions (a message or an object to a peer of another locality) takes at
// least the minimum inter-locality latency, so partitions can run one window
// in parallel without seeing each other's events. The simulated bootstrap
// service belongs to no partition: a partition only reads its registry
// during a window; registrations are applied between windows.
const lookahead = interMinUS * time.Microsecond

// noTick marks a node with no tick event pending.
const noTick = time.Duration(-1)

// flowerTraffic names the traffic types of Flower-CDN: wire message types.
var flowerTraffic = func() []string {
	names := make([]string, 256)
	for i := range names {
		names[i] = wire.Type(i).String()
	}
	return names
}()

type qkey struct {
	node int32
	qid  uint64
}

// cross is an event for another partition, with its payload if any.
type cross struct {
	ev  event
	pay payload
	has bool // pay goes into a slot of the destination
}

// payload is what an event carries besides its fixed fields: a message
// (decoded, or a wire frame when the run encodes), or an entry-point
// request and its answer.
type payload struct {
	msg   wire.Msg
	frame []byte
	ent   core.Entries
	req   core.EntryRequest
}

// part is one partition of the Flower-CDN host: the peers of one locality,
// with their own event queue, clock and counters.
type part struct {
	id      int
	q       queue
	now     time.Duration
	tr      traffic
	anom    map[string]int64
	events  int64
	pending int     // pending queries of online requesters
	trace   []int32 // this partition's trace entries (indices in World.Trace)
	cursor  int
	rng     *rand.Rand // the bootstrap service's random choices for this partition's peers

	// Payloads of events in flight to this partition's nodes, by slot, so
	// that events stay small values.
	pays     []payload
	freePays []int32
	pendQ    map[qkey]int32 // (requester, QID) -> query number, while pending
	// issuing is the query number being issued (inside Query), -1: none.
	issuing, issuingNode int32
	// goingOff is the node inside its GoOffline (-1: none); cleanLeave
	// whether it leaves cleanly (its last messages go out).
	goingOff   int32
	cleanLeave bool

	cur   int32     // the node whose driver the partition is calling
	env   *partEnv  // the host of this partition's nodes
	out   [][]cross // events for other partitions, by destination
	ops   []regOp   // registrations sent to the bootstrap service this window
	until time.Duration
}

// flower hosts one core node per peer, each through its host driver.
type flower struct {
	w      *World
	layout keymgr.Layout
	drv    []*host.Driver
	parts  []*part
	res    results

	// Per node; written only by the node's partition.
	started []bool
	online  []bool
	epoch   []uint32 // session number: grows when the peer goes offline
	pendN   []int32  // pending queries of the current session
	tickAt  []time.Duration
	tickVer []uint32
	regs    [][]host.Registration // the set each node last registered

	// Per query; written only by the requester's partition.
	serveFrom []int32 // the node of the latest object delivery for the query, -1: none
	serveUS   []int32 // when that node served it, microseconds after the query was issued
	serveHops []uint8 // overlay hops the query took to that node
	fetchUS   []int32 // when the requester asked the origin, microseconds after issue, -1: none

	boot bootstrap // the simulated bootstrap service
}

func newFlower(w *World, cfg Config) (*flower, error) {
	cc := cfg.Core
	cc.Localities = cfg.Localities
	layout, err := keymgr.NewLayout(cc.Localities, cc.InstanceBits)
	if err != nil {
		return nil, err
	}
	P, Q, k := len(w.PeerIDs), len(w.QueryPos), cfg.Localities
	f := &flower{
		w:         w,
		layout:    layout,
		drv:       make([]*host.Driver, P),
		res:       newResults(Q),
		started:   make([]bool, P),
		online:    make([]bool, P),
		epoch:     make([]uint32, P),
		pendN:     make([]int32, P),
		tickAt:    make([]time.Duration, P),
		tickVer:   make([]uint32, P),
		regs:      make([][]host.Registration, P),
		serveFrom: make([]int32, Q),
		serveUS:   make([]int32, Q),
		serveHops: make([]uint8, Q),
		fetchUS:   make([]int32, Q),
	}
	f.boot.init(w, registry.New(layout), cfg.Sites*k)
	for i := 0; i < k; i++ {
		f.parts = append(f.parts, &part{
			id:       i,
			tr:       newTraffic(flowerTraffic),
			anom:     map[string]int64{},
			rng:      rand.New(rand.NewPCG(cfg.Seed, streamFlower+uint64(i))),
			pendQ:    map[qkey]int32{},
			out:      make([][]cross, k),
			issuing:  -1,
			goingOff: -1,
		})
		f.parts[i].tr.end = w.End
		f.parts[i].env = &partEnv{f: f, pt: f.parts[i]}
	}
	for i, te := range w.Trace {
		pt := f.parts[w.Loc[te.Peer]]
		pt.trace = append(pt.trace, int32(i))
	}
	for i := range f.drv {
		n, err := core.New(cc, w.PeerIDs[i], int(w.Loc[i]), rand.New(rand.NewPCG(cfg.Seed, streamNode+uint64(i))))
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		e := f.partOf(int32(i)).env
		d, err := host.New(n, host.Env{Transport: e, Origin: e, Objects: e, Bootstrap: e, Answerer: e}, host.Options{Encode: cfg.Wire})
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		f.drv[i] = d
		f.tickAt[i] = noTick
	}
	return f, nil
}

func (f *flower) partOf(p int32) *part { return f.parts[f.w.Loc[p]] }

// driver returns node p's driver for an input the partition makes: its Env
// callbacks are then about p.
func (f *flower) driver(pt *part, p int32) *host.Driver {
	pt.cur = p
	return f.drv[p]
}

// run drives the partitions window by window: each window runs every
// partition up to the same simulated time, in parallel, then exchanges the
// events that cross partitions and hands the registrations to the
// bootstrap service, in an order that does not depend on the number of
// threads.
func (f *flower) run(ctx context.Context) error {
	w := f.w
	for i, on := range w.InitOnline {
		if on {
			pt := f.partOf(int32(i))
			f.online[i] = true
			f.up(pt, int32(i))
		}
	}
	for _, pt := range f.parts {
		if len(pt.trace) > 0 {
			pt.q.push(event{at: w.Trace[pt.trace[0]].At, kind: evTrace})
		}
	}
	f.barrier()

	workers := min(runtime.GOMAXPROCS(0), len(f.parts))
	var wg sync.WaitGroup
	var work chan *part
	if workers > 1 {
		work = make(chan *part, len(f.parts))
		defer close(work)
		for i := 0; i < workers; i++ {
			go func() {
				for pt := range work {
					f.advance(pt)
					wg.Done()
				}
			}()
		}
	}
	deadline := w.End + w.cfg.Drain
	for windows := 0; ; windows++ {
		if windows&0x3ff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		done, pending := true, 0
		start := time.Duration(-1)
		for _, pt := range f.parts {
			done = done && pt.cursor == len(pt.trace)
			pending += pt.pending
			if pt.q.len() > 0 && (start < 0 || pt.q.top().at < start) {
				start = pt.q.top().at
			}
		}
		if (done && pending == 0) || start < 0 || start > deadline {
			break
		}
		// The service knows the registrations that reached it by now.
		f.boot.applyUntil(start)
		end := min(start+lookahead, deadline+1)
		for _, pt := range f.parts {
			if pt.q.len() == 0 || pt.q.top().at >= end {
				continue
			}
			pt.until = end
			if workers > 1 {
				wg.Add(1)
				work <- pt
			} else {
				f.advance(pt)
			}
		}
		wg.Wait()
		f.barrier()
	}
	return nil
}

// advance runs partition pt's events up to the end of the current window.
func (f *flower) advance(pt *part) {
	w := f.w
	for pt.q.len() > 0 && pt.q.top().at < pt.until {
		ev := pt.q.pop()
		pt.now = ev.at
		pt.events++
		if ev.kind != evTrace {
			f.handle(pt, &ev)
			continue
		}
		ti := pt.trace[ev.qid]
		te := &w.Trace[ti]
		pt.cursor = int(ev.qid) + 1
		if pt.cursor < len(pt.trace) {
			pt.q.push(event{at: w.Trace[pt.trace[pt.cursor]].At, kind: evTrace, qid: uint64(pt.cursor)})
		}
		p := te.Peer
		switch te.Obj {
		case traceDown:
			f.online[p] = false
			f.epoch[p]++
			pt.pending -= int(f.pendN[p])
			f.pendN[p] = 0
			// Inside GoOffline the node may say goodbye (Config.Core.
			// LeaveHandover): those messages go out if it leaves cleanly,
			// and are lost otherwise.
			pt.goingOff, pt.cleanLeave = p, f.cleanLeave(int(ti))
			f.driver(pt, p).GoOffline(pt.now)
			pt.goingOff = -1
		case traceUp:
			f.online[p] = true
			f.up(pt, p)
		default:
			qi := w.QueryOf[ti]
			f.res.epoch[qi] = f.epoch[p]
			f.pendN[p]++
			pt.pending++
			f.query(pt, qi, p, te.Obj)
		}
	}
}

// barrier delivers the events that crossed partitions during the window and
// hands the window's registrations to the bootstrap service, in (time,
// partition) order.
func (f *flower) barrier() {
	for _, dst := range f.parts {
		for _, src := range f.parts {
			box := src.out[dst.id]
			for i := range box {
				c := &box[i]
				if c.has {
					c.ev.qid = uint64(dst.slot(c.pay))
				}
				dst.q.push(c.ev)
				box[i] = cross{}
			}
			src.out[dst.id] = box[:0]
		}
	}
	for _, pt := range f.parts {
		f.boot.queue(pt.ops)
		pt.ops = pt.ops[:0]
	}
	f.boot.sortQueue()
}

// slot stores a payload for an event of one of pt's nodes.
func (pt *part) slot(p payload) int32 {
	if k := len(pt.freePays); k > 0 {
		s := pt.freePays[k-1]
		pt.freePays = pt.freePays[:k-1]
		pt.pays[s] = p
		return s
	}
	pt.pays = append(pt.pays, p)
	return int32(len(pt.pays) - 1)
}

// unslot takes a payload out of its slot.
func (pt *part) unslot(s uint64) payload {
	p := pt.pays[s]
	pt.pays[s] = payload{}
	pt.freePays = append(pt.freePays, int32(s))
	return p
}

// schedule queues ev for node ev.node, in pt or, through the window's
// outbox, in the node's own partition. A payload goes into a slot.
func (f *flower) schedule(pt *part, ev event, p payload, withPayload bool) {
	dst := int(f.w.Loc[ev.node])
	if dst == pt.id {
		if withPayload {
			ev.qid = uint64(pt.slot(p))
		}
		pt.q.push(ev)
		return
	}
	if ev.at < pt.until {
		panic(fmt.Sprintf("sim: event for partition %d at %v inside the window ending %v", dst, ev.at, pt.until))
	}
	pt.out[dst] = append(pt.out[dst], cross{ev: ev, pay: p, has: withPayload})
}

func (f *flower) up(pt *part, p int32) {
	d := f.driver(pt, p)
	if !f.started[p] {
		f.started[p] = true
		for _, s := range f.w.Interests(p) {
			d.AddInterest(pt.now, f.w.SiteIDs[s])
		}
	} else {
		d.Reconnect(pt.now)
	}
	f.scheduleTick(pt, p, pt.now)
}

func (f *flower) query(pt *part, qi, p, obj int32) {
	f.serveFrom[qi], f.fetchUS[qi] = -1, -1
	// Outputs about the new query (a local hit's answer, an origin fetch)
	// may come before Query returns its id: lookupQ matches them.
	pt.issuing, pt.issuingNode = qi, p
	qid := f.driver(pt, p).Query(pt.now, f.w.SiteIDs[f.w.SiteOfObj(obj)], f.w.ObjIDs[obj])
	if pt.issuing >= 0 {
		pt.pendQ[qkey{p, qid}] = qi
	}
	pt.issuing = -1
	f.scheduleTick(pt, p, pt.now)
}

func (f *flower) handle(pt *part, ev *event) {
	p := ev.node
	d := f.driver(pt, p)
	switch ev.kind {
	case evMsg:
		pay := pt.unslot(ev.qid)
		if !f.online[p] {
			pt.tr.dropped++
			return
		}
		from := f.w.PeerIDs[ev.from]
		if pay.frame != nil {
			if err := d.Receive(pt.now, from, pay.frame); err != nil {
				pt.anom["bad_frames"]++
			}
		} else {
			d.ReceiveMsg(pt.now, from, pay.msg)
		}
	case evFetchDone:
		if !f.online[p] {
			return
		}
		d.FetchDone(pt.now, ev.qid, true, core.Object{Size: int64(f.w.ObjSize[ev.arg])})
	case evDeliver:
		if !f.online[p] {
			return
		}
		if qi, ok := pt.lookupQ(p, ev.qid); ok {
			// The holder served the object one transfer ago: the lookup
			// ended then. The latest delivery wins (an earlier one may have
			// timed out).
			f.serveFrom[qi] = ev.from
			f.serveUS[qi] = int32((pt.now - f.w.Lat(ev.from, p) - f.issueTime(qi)) / time.Microsecond)
			f.serveHops[qi] = ev.hops
		}
		d.Delivered(pt.now, ev.qid, f.w.PeerIDs[ev.from], core.Object{Size: int64(f.w.ObjSize[ev.arg])})
	case evEntryAsk:
		pay := pt.unslot(ev.qid)
		// The request reached the service: it answers from what was
		// registered, and the answer takes one way back.
		ent := f.boot.answer(pt, f.w.PeerIDs[p], pay.req)
		pt.q.push(event{at: pt.now + f.w.BootLat(f.w.Loc[p]), kind: evEntryAns, node: p, qid: uint64(pt.slot(payload{ent: ent}))})
		return
	case evEntryAns:
		pay := pt.unslot(ev.qid)
		if !f.online[p] {
			return
		}
		d.SetEntries(pt.now, pay.ent)
	case evTick:
		if uint32(ev.qid) != f.tickVer[p] {
			return // superseded
		}
		f.tickAt[p] = noTick
		if !f.online[p] {
			return
		}
		d.Tick(pt.now)
		// A timer still due after Tick would spin: push it a microsecond on.
		f.scheduleTick(pt, p, pt.now+time.Microsecond)
		return
	}
	f.scheduleTick(pt, p, pt.now)
}

// lookupQ returns the query number of node p's query qid. Inside Query,
// the first output about an unknown qid of the issuing node is the new
// query's: it is registered then.
func (pt *part) lookupQ(p int32, qid uint64) (int32, bool) {
	if qi, ok := pt.pendQ[qkey{p, qid}]; ok {
		return qi, true
	}
	if pt.issuing >= 0 && p == pt.issuingNode {
		qi := pt.issuing
		pt.pendQ[qkey{p, qid}] = qi
		pt.issuing = -1
		return qi, true
	}
	return 0, false
}

// send accounts one background message of type t and size bytes.
func (pt *part) send(t int, size int) {
	pt.tr.msgs++
	if pt.now <= pt.tr.end {
		pt.tr.bytes[t] += int64(size)
	}
}

// cleanLeave decides whether the departure at trace entry ti is clean (the
// page said goodbye): with probability Config.CleanLeave, fixed per entry.
func (f *flower) cleanLeave(ti int) bool {
	u := float64(mix64(f.w.cfg.Seed^uint64(ti)*0x9e3779b97f4a7c15^0x636c65616e)>>11) / (1 << 53)
	return u < f.w.cfg.CleanLeave
}

func (f *flower) issueTime(qi int32) time.Duration { return f.w.Trace[f.w.QueryPos[qi]].At }

// scheduleTick keeps at most one useful tick event per node: at its
// NextTick (not before notBefore), unless one at or before that is pending.
func (f *flower) scheduleTick(pt *part, p int32, notBefore time.Duration) {
	if !f.online[p] {
		return
	}
	nt := f.drv[p].NextTick()
	if nt < 0 {
		return
	}
	if nt < notBefore {
		if nt <= pt.now && notBefore > pt.now {
			pt.anom["tick_not_advanced"]++ // still due right after Tick
		}
		nt = notBefore
	}
	if at := f.tickAt[p]; at != noTick && at <= nt {
		return
	}
	f.tickVer[p]++
	f.tickAt[p] = nt
	pt.q.push(event{at: nt, kind: evTick, node: p, qid: uint64(f.tickVer[p])})
}

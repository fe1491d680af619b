package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/wire"
)

// CoreNode is the NewNodeFunc of the real protocol core.
func CoreNode(cfg core.Config, id ids.PeerID, loc int, rnd *rand.Rand) (Node, error) {
	n, err := core.New(cfg, id, loc, rnd)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// maxEntries is how many D-ring entry points the simulated bootstrap
// service hands out per request.
const maxEntries = 4

// lookahead is the length of one synchronisation window of the parallel
// Flower-CDN host. Each locality is one partition; anything that crosses
// partitions (a message or an object to a peer of another locality) takes at
// least the minimum inter-locality latency, so partitions can run one window
// in parallel without seeing each other's events.
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

// dirPos is a D-ring position a node holds, as learnt from its RoleChanges.
type dirPos struct {
	site uint16
	key  ids.Key
	live bool // the holder is online
}

type liveMember struct {
	node int32
	key  ids.Key
}

// roleOp is a change of the simulated bootstrap service's member list,
// recorded by a partition and applied at the end of the window.
type roleOp struct {
	at      time.Duration
	node    int32
	site    uint16
	key     ids.Key
	add     bool
	failure bool // remove: the holder went offline
}

// cross is an event for another partition, with its message if any.
type cross struct {
	ev  event
	msg wire.Msg
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
	rng     *rand.Rand // entry-point sampling

	// Messages in flight to this partition's nodes, by slot, so that
	// events stay small values.
	msgs     []wire.Msg
	freeMsgs []int32
	pendQ    map[qkey]int32 // (requester, QID) -> query number, while pending

	out   [][]cross // events for other partitions, by destination
	ops   []roleOp
	perm  []int32       // scratch for entry sampling
	until time.Duration // end of the current window (exclusive)
}

// flower hosts one core node per peer.
type flower struct {
	w      *World
	layout keymgr.Layout
	nodes  []Node
	parts  []*part
	res    results

	// Per node; written only by the node's partition.
	started []bool
	online  []bool
	epoch   []uint32 // session number: grows when the peer goes offline
	pendN   []int32  // pending queries of the current session
	tickAt  []time.Duration
	tickVer []uint32
	pos     [][]dirPos

	// Per query; written only by the requester's partition.
	serveFrom []int32 // the node of the latest object delivery for the query, -1: none
	serveUS   []int32 // when that node served it, microseconds after the query was issued
	serveHops []uint8 // overlay hops the query took to that node
	fetchUS   []int32 // when the requester asked the origin, microseconds after issue, -1: none

	// The bootstrap service's view of D-ring and the directory figures:
	// changed only between windows, by applying the partitions' roleOps.
	live       []liveMember
	liveIdx    map[liveMember]int32
	holders    map[ids.Key]int32
	keyNodes   map[ids.Key][]int32 // live holders of each key (the bootstrap's per-petal list)
	vacant     map[ids.Key]time.Duration
	repairs    []float64
	failures   int64
	petalLive  []int32 // distinct live keys per (site, locality)
	petalSplit []bool
	maxInst    int32 // most distinct live positions (instances) of one petal at once
	conflicts  int64 // a position got a second concurrent holder
	maxHolders int32
	dirChanges int64
	opsBuf     []roleOp
}

func newFlower(w *World, cfg Config) (*flower, error) {
	cc := cfg.Core
	cc.Localities = cfg.Localities
	layout, err := keymgr.NewLayout(cc.Localities, cc.InstanceBits)
	if err != nil {
		return nil, err
	}
	mk := cfg.NewNode
	if mk == nil {
		mk = CoreNode
	}
	P, Q, k := len(w.PeerIDs), len(w.QueryPos), cfg.Localities
	f := &flower{
		w:         w,
		layout:    layout,
		nodes:     make([]Node, P),
		res:       newResults(Q),
		started:   make([]bool, P),
		online:    make([]bool, P),
		epoch:     make([]uint32, P),
		pendN:     make([]int32, P),
		tickAt:    make([]time.Duration, P),
		tickVer:   make([]uint32, P),
		pos:       make([][]dirPos, P),
		serveFrom: make([]int32, Q),
		serveUS:   make([]int32, Q),
		serveHops: make([]uint8, Q),
		fetchUS:   make([]int32, Q),
		liveIdx:   map[liveMember]int32{},
		holders:   map[ids.Key]int32{},
		keyNodes:  map[ids.Key][]int32{},
		vacant:    map[ids.Key]time.Duration{},
		petalLive: make([]int32, cfg.Sites*k),
	}
	f.petalSplit = make([]bool, len(f.petalLive))
	for i := 0; i < k; i++ {
		f.parts = append(f.parts, &part{
			id:    i,
			tr:    newTraffic(flowerTraffic),
			anom:  map[string]int64{},
			rng:   rand.New(rand.NewPCG(cfg.Seed, streamFlower+uint64(i))),
			pendQ: map[qkey]int32{},
			out:   make([][]cross, k),
		})
		f.parts[i].tr.end = w.End
	}
	for i, te := range w.Trace {
		pt := f.parts[w.Loc[te.Peer]]
		pt.trace = append(pt.trace, int32(i))
	}
	for i := range f.nodes {
		n, err := mk(cc, w.PeerIDs[i], int(w.Loc[i]), rand.New(rand.NewPCG(cfg.Seed, streamNode+uint64(i))))
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		f.nodes[i] = n
		f.tickAt[i] = noTick
	}
	return f, nil
}

func (f *flower) partOf(p int32) *part { return f.parts[f.w.Loc[p]] }

// run drives the partitions window by window: each window runs every
// partition up to the same simulated time, in parallel, then exchanges the
// events that cross partitions and applies the member-list changes, in an
// order that does not depend on the number of threads.
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
			f.down(pt, p)
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
// applies the member-list changes in (time, partition) order.
func (f *flower) barrier() {
	for _, dst := range f.parts {
		for _, src := range f.parts {
			box := src.out[dst.id]
			for i := range box {
				c := &box[i]
				if c.msg != nil {
					c.ev.qid = uint64(dst.slot(c.msg))
					c.msg = nil
				}
				dst.q.push(c.ev)
			}
			src.out[dst.id] = box[:0]
		}
	}
	ops := f.opsBuf[:0]
	for _, pt := range f.parts {
		ops = append(ops, pt.ops...)
		pt.ops = pt.ops[:0]
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].at < ops[j].at })
	for i := range ops {
		f.apply(&ops[i])
	}
	f.opsBuf = ops
}

// slot stores m for delivery to one of pt's nodes.
func (pt *part) slot(m wire.Msg) int32 {
	if k := len(pt.freeMsgs); k > 0 {
		s := pt.freeMsgs[k-1]
		pt.freeMsgs = pt.freeMsgs[:k-1]
		pt.msgs[s] = m
		return s
	}
	pt.msgs = append(pt.msgs, m)
	return int32(len(pt.msgs) - 1)
}

// schedule queues ev for node ev.node, in pt or, through the window's
// outbox, in the node's own partition.
func (f *flower) schedule(pt *part, ev event, m wire.Msg) {
	dst := int(f.w.Loc[ev.node])
	if dst == pt.id {
		if m != nil {
			ev.qid = uint64(pt.slot(m))
		}
		pt.q.push(ev)
		return
	}
	if ev.at < pt.until {
		panic(fmt.Sprintf("sim: event for partition %d at %v inside the window ending %v", dst, ev.at, pt.until))
	}
	pt.out[dst] = append(pt.out[dst], cross{ev: ev, msg: m})
}

func (f *flower) up(pt *part, p int32) {
	n := f.nodes[p]
	if !f.started[p] {
		f.started[p] = true
		for _, s := range f.w.Interests(p) {
			n.AddInterest(pt.now, f.w.SiteIDs[s])
		}
	} else {
		for i := range f.pos[p] {
			f.makeLive(pt, p, &f.pos[p][i])
		}
		n.Reconnect(pt.now)
	}
	f.drain(pt, p, pt.now)
}

func (f *flower) down(pt *part, p int32) {
	for i := range f.pos[p] {
		f.makeUnlive(pt, p, &f.pos[p][i], true)
	}
	f.nodes[p].GoOffline(pt.now)
	f.drain(pt, p, pt.now)
}

func (f *flower) query(pt *part, qi, p, obj int32) {
	f.serveFrom[qi], f.fetchUS[qi] = -1, -1
	qid := f.nodes[p].Query(pt.now, f.w.SiteIDs[f.w.SiteOfObj(obj)], f.w.ObjIDs[obj])
	pt.pendQ[qkey{p, qid}] = qi
	f.drain(pt, p, pt.now)
}

func (f *flower) handle(pt *part, ev *event) {
	p := ev.node
	switch ev.kind {
	case evMsg:
		m := pt.msgs[ev.qid]
		pt.msgs[ev.qid] = nil
		pt.freeMsgs = append(pt.freeMsgs, int32(ev.qid))
		if !f.online[p] {
			pt.tr.dropped++
			return
		}
		f.nodes[p].Receive(pt.now, f.w.PeerIDs[ev.from], m)
	case evFetchDone:
		if !f.online[p] {
			return
		}
		f.nodes[p].FetchDone(pt.now, ev.qid, true, int64(f.w.ObjSize[ev.arg]))
	case evDeliver:
		if !f.online[p] {
			return
		}
		if qi, ok := pt.pendQ[qkey{p, ev.qid}]; ok {
			// The holder served the object one transfer ago: the lookup
			// ended then. The latest delivery wins (an earlier one may have
			// timed out).
			f.serveFrom[qi] = ev.from
			f.serveUS[qi] = int32((pt.now - f.w.Lat(ev.from, p) - f.issueTime(qi)) / time.Microsecond)
			f.serveHops[qi] = ev.hops
		}
		f.nodes[p].Delivered(pt.now, ev.qid, f.w.PeerIDs[ev.from], true, int64(f.w.ObjSize[ev.arg]))
	case evTick:
		if uint32(ev.qid) != f.tickVer[p] {
			return // superseded
		}
		f.tickAt[p] = noTick
		if !f.online[p] {
			return
		}
		f.nodes[p].Tick(pt.now)
		// A timer still due after Tick would spin: push it a microsecond on.
		f.drain(pt, p, pt.now+time.Microsecond)
		return
	}
	f.drain(pt, p, pt.now)
}

// drain consumes node p's Ready batches until it has nothing more to say,
// then schedules its next tick, no earlier than notBefore.
func (f *flower) drain(pt *part, p int32, notBefore time.Duration) {
	n := f.nodes[p]
	w := f.w
	for {
		r := n.Ready()
		if r.Empty() {
			break
		}
		on := f.online[p]
		for i := range r.Msgs {
			e := &r.Msgs[i]
			pt.send(int(e.Msg.Type()), wire.Size(e.Msg))
			to, ok := w.Peer(e.To)
			if !ok || !on {
				pt.tr.dropped++
				if !ok {
					pt.anom["msgs_to_unknown_peer"]++
				} else {
					pt.anom["msgs_sent_offline"]++
				}
				continue
			}
			f.schedule(pt, event{at: pt.now + w.Lat(p, to), kind: evMsg, node: to, from: p}, e.Msg)
		}
		for i := range r.Fetches {
			fe := &r.Fetches[i]
			obj, ok := w.objIdx[fe.Obj]
			if !ok || !on {
				pt.anom["bad_fetches"]++
				continue
			}
			if qi, ok := pt.pendQ[qkey{p, fe.QID}]; ok {
				f.fetchUS[qi] = int32((pt.now - f.issueTime(qi)) / time.Microsecond)
			}
			ol := w.OriginLat(w.SiteOfObj(obj), w.Loc[p])
			pt.q.push(event{at: pt.now + 2*ol, kind: evFetchDone, node: p, qid: fe.QID, arg: obj})
		}
		for i := range r.Serves {
			s := &r.Serves[i]
			obj, ok1 := w.objIdx[s.Obj]
			to, ok2 := w.Peer(s.To)
			if !ok1 || !ok2 || !on {
				pt.anom["bad_serves"]++
				continue
			}
			f.schedule(pt, event{at: pt.now + w.Lat(p, to), kind: evDeliver, node: to, from: p, qid: s.QID, arg: obj,
				hops: uint8(min(max(s.Hops, 0), 255))}, nil)
		}
		for i := range r.Answers {
			f.answer(pt, p, &r.Answers[i])
		}
		for i := range r.Roles {
			f.role(pt, p, &r.Roles[i])
		}
		need := r.NeedEntries && on
		var sites []ids.SiteID
		if need {
			sites = append(sites, r.EntrySites...)
		}
		n.Advance()
		if need {
			n.SetEntryPoints(pt.now, f.entries(pt, p, sites))
		}
	}
	f.scheduleTick(pt, p, notBefore)
}

// send accounts one background message of type t and size bytes.
func (pt *part) send(t int, size int) {
	pt.tr.msgs++
	if pt.now <= pt.tr.end {
		pt.tr.bytes[t] += int64(size)
	}
}

func (f *flower) issueTime(qi int32) time.Duration { return f.w.Trace[f.w.QueryPos[qi]].At }

func (f *flower) answer(pt *part, p int32, a *core.Answer) {
	k := qkey{p, a.QID}
	qi, ok := pt.pendQ[k]
	if !ok {
		if !a.Aborted {
			pt.anom["unknown_answers"]++
		}
		return
	}
	delete(pt.pendQ, k)
	if a.Aborted {
		return // the requester went offline: counted as abandoned
	}
	if f.res.epoch[qi] != f.epoch[p] {
		pt.anom["late_answers"]++
		return
	}
	f.pendN[p]--
	pt.pending--
	w := f.w
	obj := w.Trace[w.QueryPos[qi]].Obj
	hops := min(max(a.Hops, 0), 255)
	switch {
	case a.Failed:
		f.res.out[qi] = outFailed
		pt.anom["failed_answers"]++
	case a.Source == core.SourceLocal:
		f.res.set(qi, outLocal, 0, 0, 0)
	case a.Source == core.SourcePeer:
		prov, ok := w.Peer(a.Provider)
		if !ok || prov == p {
			pt.anom["bad_provider"]++
			prov = p
		}
		lookup := f.serveUS[qi]
		if f.serveFrom[qi] == prov {
			hops = int(f.serveHops[qi]) // the provider knows how far the query came
		} else {
			// No delivery from the provider was seen: count the lookup up
			// to the answer minus the transfer.
			pt.anom["lookup_without_serve"]++
			lookup = int32((pt.now - w.Lat(prov, p) - f.issueTime(qi)) / time.Microsecond)
		}
		f.res.set(qi, outPeer, time.Duration(lookup)*time.Microsecond, hops, w.Lat(prov, p))
	default:
		lookup := f.fetchUS[qi]
		if lookup < 0 {
			pt.anom["origin_without_fetch"]++
			lookup = int32((pt.now - f.issueTime(qi)) / time.Microsecond)
		}
		f.res.set(qi, outOrigin, time.Duration(lookup)*time.Microsecond, hops, w.OriginLat(w.SiteOfObj(obj), w.Loc[p]))
	}
}

// role tracks directory positions from RoleChange events: RoleDirectory with
// a key adds the position (one per node and website), any other role drops
// the node's position for that website.
func (f *flower) role(pt *part, p int32, rc *core.RoleChange) {
	s, ok := f.w.siteIdx[rc.Site]
	if !ok {
		pt.anom["role_unknown_site"]++
		return
	}
	ps := f.pos[p]
	j := slices.IndexFunc(ps, func(d dirPos) bool { return d.site == s })
	if j >= 0 && (rc.Role != core.RoleDirectory || ps[j].key != rc.Key) {
		f.makeUnlive(pt, p, &ps[j], false)
		ps = slices.Delete(ps, j, j+1)
		j = -1
	}
	if rc.Role == core.RoleDirectory && j < 0 {
		ps = append(ps, dirPos{site: s, key: rc.Key})
		if f.online[p] {
			f.makeLive(pt, p, &ps[len(ps)-1])
		}
	}
	f.pos[p] = ps
}

func (f *flower) makeLive(pt *part, p int32, d *dirPos) {
	if !d.live {
		d.live = true
		pt.ops = append(pt.ops, roleOp{at: pt.now, node: p, site: d.site, key: d.key, add: true})
	}
}

// makeUnlive takes a position out of the live set; failure means its holder
// went offline, which leaves the position vacant until someone holds it.
func (f *flower) makeUnlive(pt *part, p int32, d *dirPos, failure bool) {
	if d.live {
		d.live = false
		pt.ops = append(pt.ops, roleOp{at: pt.now, node: p, site: d.site, key: d.key, failure: failure})
	}
}

func (f *flower) petal(site uint16, key ids.Key) int {
	_, loc, _ := f.layout.Split(key)
	return int(site)*f.w.k + min(loc, f.w.k-1)
}

// apply changes the member list and the directory figures.
func (f *flower) apply(op *roleOp) {
	m := liveMember{op.node, op.key}
	if op.add {
		f.dirChanges++
		f.liveIdx[m] = int32(len(f.live))
		f.live = append(f.live, m)
		f.keyNodes[op.key] = append(f.keyNodes[op.key], op.node)
		f.holders[op.key]++
		if h := f.holders[op.key]; h > 1 {
			// Two online peers both believe they hold the position (for
			// example, two joins raced): a conflict, not a new instance.
			f.conflicts++
			f.maxHolders = max(f.maxHolders, h)
			return
		}
		if t, ok := f.vacant[op.key]; ok {
			f.repairs = append(f.repairs, float64(op.at-t)/float64(time.Millisecond))
			delete(f.vacant, op.key)
		}
		pi := f.petal(op.site, op.key)
		f.petalLive[pi]++
		if f.petalLive[pi] > 1 {
			f.petalSplit[pi] = true
		}
		f.maxInst = max(f.maxInst, f.petalLive[pi])
		return
	}
	i := f.liveIdx[m]
	last := f.live[len(f.live)-1]
	f.live[i] = last
	f.liveIdx[last] = i
	f.live = f.live[:len(f.live)-1]
	delete(f.liveIdx, m)
	if kn := slices.DeleteFunc(f.keyNodes[op.key], func(x int32) bool { return x == op.node }); len(kn) > 0 {
		f.keyNodes[op.key] = kn
	} else {
		delete(f.keyNodes, op.key)
	}
	if f.holders[op.key]--; f.holders[op.key] > 0 {
		return
	}
	delete(f.holders, op.key)
	if op.failure {
		f.failures++
		f.vacant[op.key] = op.at
	}
	f.petalLive[f.petal(op.site, op.key)]--
}

// entries model the bootstrap service (GET /v1/entry): for each website
// asked for, the live directory peers of that website in p's locality (all
// PetalUp instances) and the main directory of each other locality, then up
// to maxEntries random live D-ring members other than p
// itself: the bootstrap service's answer, as of the start of the window.
// Empty means the ring is empty.
func (f *flower) entries(pt *part, p int32, sites []ids.SiteID) []ids.Member {
	out := make([]ids.Member, 0, maxEntries)
	for _, site := range sites {
		for loc := 0; loc < f.w.k; loc++ {
			for inst := 0; inst < f.layout.MaxInstances(); inst++ {
				if loc != int(f.w.Loc[p]) && inst > 0 {
					break // other localities: their main directory only
				}
				k := f.layout.Key(site, loc, inst)
				for _, node := range f.keyNodes[k] {
					if node != p {
						out = append(out, ids.Member{Key: k, ID: f.w.PeerIDs[node]})
					}
				}
			}
		}
	}
	n := len(f.live)
	if n == 0 {
		return out
	}
	// Partial Fisher-Yates: the first draws of a random permutation.
	if cap(pt.perm) < n {
		pt.perm = make([]int32, n+n/2)
	}
	perm := pt.perm[:n]
	for i := range perm {
		perm[i] = int32(i)
	}
	for i, base := 0, len(out); i < n && len(out)-base < maxEntries; i++ {
		j := i + pt.rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
		m := f.live[perm[i]]
		if m.node != p {
			out = append(out, ids.Member{Key: m.key, ID: f.w.PeerIDs[m.node]})
		}
	}
	return out
}

// scheduleTick keeps at most one useful tick event per node: at its
// NextTick (not before notBefore), unless one at or before that is pending.
func (f *flower) scheduleTick(pt *part, p int32, notBefore time.Duration) {
	if !f.online[p] {
		return
	}
	nt := f.nodes[p].NextTick()
	if nt < 0 {
		return
	}
	if nt < notBefore {
		if notBefore > pt.now {
			pt.anom["tick_not_advanced"]++
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

// metrics summarises the run: the partitions' counters merged.
func (f *flower) metrics() *Metrics {
	tr := newTraffic(flowerTraffic)
	anom := map[string]int64{}
	var events int64
	var now time.Duration
	for _, pt := range f.parts {
		for i, b := range pt.tr.bytes {
			tr.bytes[i] += b
		}
		tr.msgs += pt.tr.msgs
		tr.dropped += pt.tr.dropped
		for k, v := range pt.anom {
			anom[k] += v
		}
		events += pt.events
		now = max(now, pt.now)
	}
	m := summarize(f.w, &f.res, f.epoch, &tr)
	m.Events = events
	m.SimulatedS = round3(now.Seconds())
	m.Directory = f.dirMetrics()
	if u := f.untracked(); len(u) > 0 {
		anom["dir_positions_untracked"] += int64(len(u))
	}
	if len(anom) > 0 {
		m.Anomalies = anom
	}
	m.OriginReasons = map[string]int64{}
	for _, n := range f.nodes {
		if cn, ok := n.(interface{ Stats() core.Stats }); ok {
			for k, v := range cn.Stats().Origin {
				m.OriginReasons[k] += int64(v)
			}
		}
	}
	return m
}

// dirMetrics summarises the directory figures at the end of the run.
func (f *flower) dirMetrics() *DirMetrics {
	d := &DirMetrics{
		Repairs:              int64(len(f.repairs)),
		Failures:             f.failures,
		VacantAtEnd:          int64(len(f.vacant)),
		PositionsEnd:         int64(len(f.holders)),
		MaxInstancesPerPetal: int64(f.maxInst),
		DirectoryRoleChanges: f.dirChanges,
		HolderConflicts:      f.conflicts,
		MaxHoldersPerKey:     int64(max(f.maxHolders, 1)),
		RolesEnd:             map[string]int64{},
	}
	repairs := slices.Clone(f.repairs)
	slices.Sort(repairs)
	d.RepairMsMean = round3(mean(repairs))
	d.RepairMsP95 = round3(percentile(repairs, 0.95))
	for i, c := range f.petalLive {
		if c > 0 {
			d.PetalsWithDir++
		}
		if f.petalSplit[i] {
			d.PetalsSplit++
		}
	}
	for p, n := range f.nodes {
		if f.online[p] {
			for _, s := range f.w.Interests(int32(p)) {
				d.RolesEnd[n.Role(f.w.SiteIDs[s]).String()]++
			}
		}
	}
	return d
}

// untracked lists the online nodes whose D-ring positions, as learnt from
// their RoleChanges, differ from what the node says it holds (DirKeys).
func (f *flower) untracked() []int32 {
	var out []int32
	for p, n := range f.nodes {
		if !f.online[p] {
			continue
		}
		keys := n.DirKeys()
		same := len(keys) == len(f.pos[p])
		for _, dp := range f.pos[p] {
			same = same && slices.Contains(keys, dp.key)
		}
		if !same {
			out = append(out, int32(p))
		}
	}
	return out
}

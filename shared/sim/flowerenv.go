package sim

import (
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// nodeEnv is node p's host: the host.Env the simulator gives its driver.
// Its methods run in p's partition, during one of the driver's inputs.
type nodeEnv struct {
	f *flower
	p int32
}

func (e *nodeEnv) part() *part { return e.f.partOf(e.p) }

// SendMsg delivers a message after the one-way latency, decoded (the
// default: encoding is lossless, tests check it).
func (e *nodeEnv) SendMsg(to ids.PeerID, m wire.Msg) {
	pt := e.part()
	pt.send(int(m.Type()), wire.Size(m))
	e.deliver(pt, to, payload{msg: m})
}

// Send delivers a wire frame after the one-way latency (Config.Wire).
func (e *nodeEnv) Send(to ids.PeerID, frame []byte) {
	pt := e.part()
	t := 0
	if len(frame) > 1 {
		t = int(frame[1])
	}
	pt.send(t, len(frame))
	e.deliver(pt, to, payload{frame: frame})
}

func (e *nodeEnv) deliver(pt *part, to ids.PeerID, pay payload) {
	f := e.f
	dst, ok := f.w.Peer(to)
	if !ok || !f.online[e.p] {
		pt.tr.dropped++
		if !ok {
			pt.anom["msgs_to_unknown_peer"]++
		} else {
			pt.anom["msgs_sent_offline"]++
		}
		return
	}
	f.schedule(pt, event{at: pt.now + f.w.Lat(e.p, dst), kind: evMsg, node: dst, from: e.p}, pay, true)
}

// Fetch completes after the round trip to the website's origin.
func (e *nodeEnv) Fetch(fe core.Fetch) {
	f, pt, w := e.f, e.part(), e.f.w
	obj, ok := w.objIdx[fe.Obj]
	if !ok || !f.online[e.p] {
		pt.anom["bad_fetches"]++
		return
	}
	if qi, ok := pt.lookupQ(e.p, fe.QID); ok {
		f.fetchUS[qi] = int32((pt.now - f.issueTime(qi)) / time.Microsecond)
	}
	ol := w.OriginLat(w.SiteOfObj(obj), w.Loc[e.p])
	pt.q.push(event{at: pt.now + 2*ol, kind: evFetchDone, node: e.p, qid: fe.QID, arg: obj})
}

// Serve delivers the object after the one-way latency (no bandwidth model).
func (e *nodeEnv) Serve(s core.Serve) {
	f, pt, w := e.f, e.part(), e.f.w
	obj, ok1 := w.objIdx[s.Obj]
	to, ok2 := w.Peer(s.To)
	if !ok1 || !ok2 || !f.online[e.p] {
		pt.anom["bad_serves"]++
		return
	}
	f.schedule(pt, event{at: pt.now + w.Lat(e.p, to), kind: evDeliver, node: to, from: e.p, qid: s.QID, arg: obj,
		hops: uint8(min(max(s.Hops, 0), 255))}, payload{}, false)
}

// Evict: the simulator keeps no object bytes.
func (e *nodeEnv) Evict(core.Evict) {}

// Entries sends the request to the simulated bootstrap service, one way away.
func (e *nodeEnv) Entries(req core.EntryRequest) {
	f, pt := e.f, e.part()
	pt.q.push(event{at: pt.now + f.w.BootLat(f.w.Loc[e.p]), kind: evEntryAsk, node: e.p, qid: uint64(pt.slot(payload{req: req}))})
}

// Register sends the node's registration set to the service: what changed
// among its directory positions reaches the registry one way later. A
// position withdrawn because the node went offline is a failure.
func (e *nodeEnv) Register(regs []host.Registration) {
	f, pt := e.f, e.part()
	at := pt.now + f.w.BootLat(f.w.Loc[e.p])
	old := f.regs[e.p]
	for _, r := range old {
		if r.Role == core.RoleDirectory && !slices.Contains(regs, r) {
			pt.ops = append(pt.ops, regOp{at: at, node: e.p, site: r.Site, key: r.Key, failure: !f.online[e.p]})
		}
	}
	for _, r := range regs {
		if r.Role == core.RoleDirectory && !slices.Contains(old, r) {
			pt.ops = append(pt.ops, regOp{at: at, node: e.p, site: r.Site, key: r.Key, add: true})
		}
	}
	f.regs[e.p] = regs
}

// Answer records a finished query.
func (e *nodeEnv) Answer(a core.Answer) { e.f.answer(e.part(), e.p, &a) }

func (f *flower) answer(pt *part, p int32, a *core.Answer) {
	qi, ok := pt.lookupQ(p, a.QID)
	if !ok {
		if !a.Aborted {
			pt.anom["unknown_answers"]++
		}
		return
	}
	delete(pt.pendQ, qkey{p, a.QID})
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

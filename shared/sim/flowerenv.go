package sim

import (
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// partEnv is the host (the host.Env) of every node of one partition. Its
// methods run during one of a driver's inputs, which the partition makes
// for node pt.cur (see flower.driver): one env per partition rather than one
// per node keeps it in cache.
type partEnv struct {
	f  *flower
	pt *part
}

// SendMsg delivers a message after the one-way latency, decoded (the
// default: encoding is lossless, tests check it).
func (e *partEnv) SendMsg(to ids.PeerID, m wire.Msg) {
	pt := e.pt
	if e.goodbyeLost() {
		return
	}
	pt.send(int(m.Type()), wire.Size(m))
	e.deliver(pt, to, payload{msg: m})
}

// Send delivers a wire frame after the one-way latency (Config.Wire).
func (e *partEnv) Send(to ids.PeerID, frame []byte) {
	pt := e.pt
	if e.goodbyeLost() {
		return
	}
	t := 0
	if len(frame) > 1 {
		t = int(frame[1])
	}
	pt.send(t, len(frame))
	e.deliver(pt, to, payload{frame: frame})
}

// goodbyeLost reports (and counts) a message sent inside the GoOffline of a
// node that does not leave cleanly: it never leaves the browser.
func (e *partEnv) goodbyeLost() bool {
	pt := e.pt
	if pt.cur != pt.goingOff || pt.cleanLeave {
		return false
	}
	pt.tr.dropped++
	pt.anom["goodbyes_lost"]++
	return true
}

func (e *partEnv) deliver(pt *part, to ids.PeerID, pay payload) {
	f, p := e.f, pt.cur
	dst, ok := f.w.Peer(to)
	if !ok || !f.online[p] && p != pt.goingOff {
		pt.tr.dropped++
		if !ok {
			pt.anom["msgs_to_unknown_peer"]++
		} else {
			pt.anom["msgs_sent_offline"]++
		}
		return
	}
	f.schedule(pt, event{at: pt.now + f.w.Lat(p, dst), kind: evMsg, node: dst, from: p}, pay, true)
}

// Fetch completes after the round trip to the website's origin.
func (e *partEnv) Fetch(fe core.Fetch) {
	f, pt, w, p := e.f, e.pt, e.f.w, e.pt.cur
	obj, ok := w.objIdx[fe.Obj]
	if !ok || !f.online[p] {
		pt.anom["bad_fetches"]++
		return
	}
	if qi, ok := pt.lookupQ(p, fe.QID); ok {
		f.fetchUS[qi] = int32((pt.now - f.issueTime(qi)) / time.Microsecond)
	}
	ol := w.OriginLat(w.SiteOfObj(obj), w.Loc[p])
	pt.q.push(event{at: pt.now + 2*ol, kind: evFetchDone, node: p, qid: fe.QID, arg: obj})
}

// Serve delivers the object after the one-way latency (no bandwidth model).
func (e *partEnv) Serve(s core.Serve) {
	f, pt, w, p := e.f, e.pt, e.f.w, e.pt.cur
	obj, ok1 := w.objIdx[s.Obj]
	to, ok2 := w.Peer(s.To)
	if !ok1 || !ok2 || !f.online[p] {
		pt.anom["bad_serves"]++
		return
	}
	f.schedule(pt, event{at: pt.now + w.Lat(p, to), kind: evDeliver, node: to, from: p, qid: s.QID, arg: obj,
		hops: uint8(min(max(s.Hops, 0), 255))}, payload{}, false)
}

// Evict: the simulator keeps no object bytes.
func (e *partEnv) Evict(core.Evict) {}

// Entries sends the request to the simulated bootstrap service, one way away.
func (e *partEnv) Entries(req core.EntryRequest) {
	f, pt, p := e.f, e.pt, e.pt.cur
	pt.q.push(event{at: pt.now + f.w.BootLat(f.w.Loc[p]), kind: evEntryAsk, node: p, qid: uint64(pt.slot(payload{req: req}))})
}

// Register sends the node's registration set to the service: what changed
// among its directory positions reaches the registry one way later. A
// position withdrawn because the node went offline is a failure.
func (e *partEnv) Register(regs []host.Registration) {
	f, pt, p := e.f, e.pt, e.pt.cur
	at := pt.now + f.w.BootLat(f.w.Loc[p])
	host.DiffDirectories(f.regs[p], regs, func(r host.Registration, added bool) {
		pt.ops = append(pt.ops, regOp{at: at, node: p, site: r.Site, key: r.Key, add: added, failure: !added && !f.online[p]})
	})
	f.regs[p] = regs
}

// Answer records a finished query.
func (e *partEnv) Answer(a core.Answer) { e.f.answer(e.pt, e.pt.cur, &a) }

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

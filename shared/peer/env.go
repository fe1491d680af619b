package peer

import (
	"context"
	"errors"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
)

// The host.Env of a Peer. Every method runs under p.mu, inside a Driver
// input: none blocks, and results come back later as new inputs.

type envTransport struct{ p *Peer }

// Send hands a core message to the connection manager, which connects if
// needed; a failure is reported later with Down (or covered by the core's
// timeouts).
func (e envTransport) Send(to ids.PeerID, frame []byte) {
	if err := e.p.net.Send(to, frame); err != nil {
		e.p.log.Debug("send", "to", to.Short(), "err", err)
	}
}

type envOrigin struct{ p *Peer }

// Fetch starts an origin fetch for one of the peer's own queries.
func (e envOrigin) Fetch(f core.Fetch) {
	p := e.p
	q := p.queries[f.QID]
	if q == nil {
		// Asked inside the Query call, before Get registered the query.
		p.earlyF[f.QID] = true
		return
	}
	p.startFetch(f.QID, q)
}

func (p *Peer) startFetch(qid uint64, q *pending) {
	if q.probe {
		// A join probe is never fetched: it fails at once, as no origin
		// serves it.
		p.goFunc(func() { p.input(func(now time.Duration) { p.drv.FetchDone(now, qid, false, core.Object{}) }) })
		return
	}
	if q.delegate {
		p.delegateFetch(qid, q)
		return
	}
	p.goFunc(func() { p.fetchForQuery(qid, q) })
}

type envObjects struct{ p *Peer }

// Serve sends a cached object to the peer that asked, unless MaxUploads
// transfers are already running (the asker's timeout then moves it on).
func (e envObjects) Serve(s core.Serve) {
	p := e.p
	if p.noServe.Load() {
		return // the core sends none under NoServe; one decided before
	}
	select {
	case p.uploads <- struct{}{}:
	default:
		p.stats.uploadsDropped.Add(1)
		return
	}
	p.goFunc(func() {
		defer func() { <-p.uploads }()
		p.serve(s)
	})
}

// Evict drops the bytes of an object the core no longer caches.
func (e envObjects) Evict(ev core.Evict) {
	e.p.held.release(ev.Site, ev.Obj)
	if err := e.p.cfg.Store.Delete(ev.Site, ev.Obj); err != nil {
		e.p.stats.storeErrors.Add(1)
		e.p.log.Warn("evict", "err", err)
	}
}

type envPersister struct{ p *Peer }

// Persist hands the latest state to the saver (an unsaved older state is
// replaced).
func (e envPersister) Persist(st core.State) {
	b := e.p.encodeState(st)
	for {
		select {
		case e.p.saveCh <- b:
			return
		default:
			select {
			case <-e.p.saveCh:
			default:
			}
		}
	}
}

type envAnswerer struct{ p *Peer }

// Answer completes one of the peer's queries.
func (e envAnswerer) Answer(a core.Answer) {
	p := e.p
	q := p.queries[a.QID]
	if q == nil {
		p.early[a.QID] = a
		return
	}
	delete(p.queries, a.QID)
	q.finish(a)
}

// netHandler takes what the connection manager reports.
type netHandler struct{ p *Peer }

func (h netHandler) Message(from ids.PeerID, frame []byte) {
	h.p.input(func(now time.Duration) {
		if err := h.p.drv.Receive(now, from, frame); err != nil {
			h.p.stats.badFrames.Add(1)
			h.p.log.Debug("bad frame", "from", from.Short(), "err", err)
		}
	})
}

func (h netHandler) Object(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
	return h.p.incoming(from, qid, meta, size)
}

func (h netHandler) Down(peer ids.PeerID, err error) {
	h.p.log.Debug("peer down", "peer", peer.Short(), "err", err)
	h.p.input(func(now time.Duration) { h.p.drv.Unreachable(now, peer) })
}

// serve sends one object from the store to the peer that asked for it.
func (p *Peer) serve(s core.Serve) {
	start := time.Now()
	e, body, err := p.open(s.Site, s.Obj)
	if err != nil {
		// The bytes are gone: the core must stop advertising the object.
		if !errors.Is(err, ErrNotFound) {
			p.stats.storeErrors.Add(1)
		}
		p.log.Warn("serve: object missing from the store", "obj", uint64(s.Obj), "err", err)
		p.input(func(now time.Duration) { p.drv.Invalidate(now, s.Site, s.Obj) })
		return
	}
	defer body.Close()
	opened := time.Since(start)
	budget := p.cfg.transferBudget(e.Size)
	if lim := p.upLimit.rateNow(); lim > 0 && lim < p.cfg.MinTransferRate {
		// Paced below the usual floor: as long as the cap needs.
		budget = p.cfg.TransferTimeout + time.Duration(float64(e.Size)/float64(lim)*float64(time.Second))
	}
	ctx, cancel := context.WithTimeout(p.ctx, budget)
	defer cancel()
	if err := p.net.SendObject(ctx, s.To, s.QID, encodeMeta(p.loc, e.Statement), e.Size, p.uploadBody(ctx, body)); err != nil {
		p.log.Debug("serve", "to", s.To.Short(), "url", e.URL, "err", err)
		return
	}
	p.stats.served.Add(1)
	p.stats.bytesUp.Add(e.Size)
	p.log.Debug("served", "to", s.To.Short(), "url", e.URL, "bytes", e.Size, "store", opened, "took", time.Since(start))
}

package peer

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// held keeps the objects a Lookup got from peers for a caller that stores
// them itself (Config.CallerStores), from their delivery until the caller
// reports them stored (Fetched): the peer serves them from memory
// meanwhile. In the browser the service worker stores, off the page's
// thread: an IndexedDB put of a large object there costs the page tens to
// hundreds of milliseconds in which nothing else runs.
type held struct {
	mu   sync.Mutex
	objs map[objKey]*heldObj
}

type heldObj struct {
	e     Entry
	body  []byte
	timer *time.Timer
}

// hold keeps a verified object until release, or until wait passes; then
// gone runs (the caller never said).
func (h *held) hold(e Entry, body []byte, wait time.Duration, gone func()) {
	k := objKey{e.Site, ids.ObjectOf(e.URL)}
	o := &heldObj{e: e, body: body}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.objs == nil {
		h.objs = make(map[objKey]*heldObj)
	}
	if old := h.objs[k]; old != nil {
		old.timer.Stop()
	}
	o.timer = time.AfterFunc(wait, func() {
		h.mu.Lock()
		mine := h.objs[k] == o
		if mine {
			delete(h.objs, k)
		}
		h.mu.Unlock()
		if mine {
			gone()
		}
	})
	h.objs[k] = o
}

// release forgets an object; it reports whether it was held.
func (h *held) release(site ids.SiteID, obj ids.ObjectID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.objs[objKey{site, obj}]
	if o == nil {
		return false
	}
	o.timer.Stop()
	delete(h.objs, objKey{site, obj})
	return true
}

// open returns a held object as Store.Open does.
func (h *held) open(site ids.SiteID, obj ids.ObjectID) (Entry, io.ReadCloser, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.objs[objKey{site, obj}]
	if o == nil {
		return Entry{}, nil, false
	}
	return o.e, io.NopCloser(bytes.NewReader(o.body)), true
}

// count is the number of held objects (tests).
func (h *held) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.objs)
}

// holdFor is storeFor for a caller that stores (Config.CallerStores): it
// holds the object in memory when the node takes it. If the caller never
// reports within OriginTimeout, the object stays cached when the store has
// it by then and is dropped otherwise.
func (p *Peer) holdFor(qid uint64, q *pending, e Entry, version uint64, body []byte) bool {
	if !p.takes(qid, q, e, version) {
		return false
	}
	obj := ids.ObjectOf(e.URL)
	p.held.hold(e, body, p.cfg.OriginTimeout, func() {
		if _, r, err := p.cfg.Store.Open(e.Site, obj); err == nil {
			r.Close()
			return
		}
		p.log.Debug("held object never stored", "url", e.URL)
		p.input(func(now time.Duration) { p.drv.Invalidate(now, e.Site, obj) })
	})
	return true
}

// open is Store.Open with the held objects first.
func (p *Peer) open(site ids.SiteID, obj ids.ObjectID) (Entry, io.ReadCloser, error) {
	if e, r, ok := p.held.open(site, obj); ok {
		return e, r, nil
	}
	return p.cfg.Store.Open(site, obj)
}

package peer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/security"
)

// A cache in front of the peer (the browser's service worker) fetches from
// the origin itself: it asks the peer with Lookup, which ends with
// ErrOrigin when no peer has the object, and reports what it fetched with
// Fetched. Objects it stored while no peer ran are taken in with Adopt, and
// at start (startNode).

// ErrOrigin is returned by Lookup when the core decided to fetch the object
// from the origin: the caller fetches it and reports with Fetched.
var ErrOrigin = errors.New("no peer has the object: fetch it from the origin")

// Lookup finds rawURL in the peer's store or at another peer, like Get, but
// never fetches from the origin: when the core asks for the origin it
// returns ErrOrigin, and the query waits until Fetched reports the
// caller's fetch (or OriginTimeout passes). receiving, if not nil, is
// called once a peer starts sending the object (its statement checked).
// A URL the site does not share gives ErrOrigin at once.
func (p *Peer) Lookup(ctx context.Context, rawURL string, receiving func()) (*Result, error) {
	s, err := p.siteOf(rawURL)
	if err != nil {
		return nil, fmt.Errorf("peer: lookup %s: %w", rawURL, err)
	}
	if !s.wk.Shares(rawURL) {
		return nil, fmt.Errorf("peer: lookup %s: not shared: %w", rawURL, ErrOrigin)
	}
	if p.hasLeft(s.id) {
		return nil, fmt.Errorf("peer: lookup %s: %w: %w", rawURL, ErrLeft, ErrOrigin)
	}
	for try := 0; ; try++ {
		q := &pending{url: rawURL, site: s, start: time.Now(), done: make(chan struct{}),
			delegate: true, toOrigin: make(chan struct{}), onReceiving: receiving}
		res, retry, err := p.run(ctx, q)
		if !retry || try > 0 {
			return res, err
		}
	}
}

// siteOf returns the configured site of an absolute URL.
func (p *Peer) siteOf(rawURL string) (*site, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("not an absolute URL")
	}
	s := p.sites[ids.SiteOf(u.Scheme+"://"+u.Host)]
	if s == nil {
		return nil, ErrNotSite
	}
	return s, nil
}

// delegateFetch records a query whose origin fetch the Lookup caller
// makes. Called under p.mu.
func (p *Peer) delegateFetch(qid uint64, q *pending) {
	m := p.delegated[q.url]
	if m == nil {
		m = make(map[uint64]*pending)
		p.delegated[q.url] = m
	}
	m[qid] = q
	close(q.toOrigin)
	// Nobody may report: the caller's page closed, or its fetch failed.
	time.AfterFunc(p.cfg.OriginTimeout, func() {
		p.input(func(now time.Duration) {
			if m := p.delegated[q.url]; m != nil && m[qid] == q {
				p.undelegate(q.url, qid)
				p.drv.FetchDone(now, qid, false, core.Object{})
			}
		})
	})
}

func (p *Peer) undelegate(rawURL string, qid uint64) {
	m := p.delegated[rawURL]
	delete(m, qid)
	if len(m) == 0 {
		delete(p.delegated, rawURL)
	}
}

// Fetched reports an origin fetch of rawURL made by the cache in front of
// the peer. stored: the object was shareable and is in the store now (it is
// checked again and cached, like Adopt); otherwise the response was not
// shareable, or the fetch failed (ok false), and the queries waiting for it
// end without caching it. It also reports the storing of an object that a
// Lookup returned with Result.Keep: stored, the peer serves it from the
// store from now on; not stored, the node drops it.
func (p *Peer) Fetched(rawURL string, ok, stored bool) error {
	if s, err := p.siteOf(rawURL); err == nil && p.held.release(s.id, ids.ObjectOf(rawURL)) {
		// An object a Lookup got from a peer (Result.Keep): the node
		// caches it already, and verified it; unless the caller could
		// not store it.
		p.mu.Lock()
		waiting := len(p.delegated[rawURL]) > 0
		p.mu.Unlock()
		if !stored {
			p.input(func(now time.Duration) { p.drv.Invalidate(now, s.id, ids.ObjectOf(rawURL)) })
		}
		if !waiting {
			return nil
		}
	}
	if stored {
		return p.Adopt(rawURL)
	}
	p.input(func(now time.Duration) {
		for qid := range p.delegated[rawURL] {
			p.undelegate(rawURL, qid)
			p.drv.FetchDone(now, qid, ok, core.Object{Private: true})
		}
	})
	return nil
}

// Adopt takes an object that someone else put in the peer's store (the
// service worker, after an origin fetch) into the node's cache, so that the
// peer serves it and its directory learns of it. It verifies the stored
// copy first. Queries waiting for the object's origin fetch end with it.
func (p *Peer) Adopt(rawURL string) error {
	s, err := p.siteOf(rawURL)
	if err != nil {
		return fmt.Errorf("peer: adopt %s: %w", rawURL, err)
	}
	body, e, signed, err := p.readLocal(s, rawURL)
	if err != nil {
		return fmt.Errorf("peer: adopt %s: %w", rawURL, err)
	}
	obj := p.objectMeta(signed, int64(len(body)))
	p.input(func(now time.Duration) {
		waiting := p.delegated[rawURL]
		for qid, q := range waiting {
			p.undelegate(rawURL, qid)
			if p.queries[qid] == q {
				q.body, q.ctype, q.verified, q.shared = body, signed.ContentType, true, true
				q.statement = e.Statement
				q.status, q.firstByte, q.lastByte = 200, time.Now(), time.Now()
			}
			p.drv.FetchDone(now, qid, true, obj)
		}
		if len(waiting) == 0 {
			p.drv.Cached(now, s.id, ids.ObjectOf(rawURL), obj)
		}
		p.dropIfRefused(e, signed.Version)
	})
	return nil
}

// adoptStored is startNode's part: stored objects the saved state does not
// list (stored after the last save, or by the service worker) are cached
// when their statement still holds, and deleted otherwise. Called under
// p.mu with the driver built and the sites' interests added.
func (p *Peer) adoptStored(now time.Duration, entries []Entry) {
	for _, e := range entries {
		s := p.sites[e.Site]
		obj := ids.ObjectOf(e.URL)
		signed, err := e.Signed()
		if err == nil && s != nil {
			err = security.VerifyStatement(s.key, signed, e.URL, time.Now())
		}
		if err != nil {
			p.log.Info("dropping a stored object", "url", e.URL, "err", err)
			if derr := p.cfg.Store.Delete(e.Site, obj); derr != nil {
				p.stats.storeErrors.Add(1)
			}
			continue
		}
		p.drv.Cached(now, e.Site, obj, p.objectMeta(signed, e.Size))
		p.dropIfRefused(e, signed.Version)
	}
}

package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/security"
)

// pending is one of the peer's own queries. Its fields are written under
// p.mu while the query is registered; finish closes done, after which the
// Get that made it reads them.
type pending struct {
	url   string
	site  *site
	start time.Time
	done  chan struct{}
	ans   core.Answer

	receiving bool // a transfer from a peer is under way
	probe     bool // a join probe (Join): never fetched from the origin
	// delegate: the caller fetches from the origin itself (Lookup);
	// toOrigin is closed when the core asks for that fetch.
	delegate    bool
	toOrigin    chan struct{}
	onReceiving func() // called (in a goroutine) when a peer starts sending
	body        []byte
	ctype       string
	statement   []byte // the site's statement, encoded (verified objects)
	verified    bool
	shared      bool // stored for sharing (origin fetches)
	keep        bool // held for the caller to store (Config.CallerStores)
	provLoc     int
	status      int   // origin HTTP status
	err         error // origin failure
	firstByte   time.Time
	lastByte    time.Time
}

func (q *pending) finish(a core.Answer) {
	q.ans = a
	close(q.done)
}

// Result is an object obtained through Flower-CDN.
type Result struct {
	URL         string
	Source      core.Source
	Peer        ids.PeerID // the serving peer, for SourcePeer
	Locality    int        // the serving peer's locality (as it says), else this peer's
	Body        []byte
	ContentType string
	// Verified: checked against the site's signature (always for
	// SourcePeer; for the origin, when the site signed the object).
	Verified bool
	// Shared: the object is in the store, served to other peers.
	Shared bool
	// Statement is the site's signed statement (encoded) of a verified
	// object.
	Statement []byte
	// Lookup is the time to the first byte, Transfer the rest.
	Lookup, Transfer time.Duration
	// Keep (Lookup with Config.CallerStores): the caller stores Body
	// with Statement and then reports it with Fetched(URL, true, stored),
	// as it does after an origin fetch. The peer serves the object from
	// memory until then.
	Keep bool
}

// ErrNotSite is returned by Get for a URL outside the peer's sites.
var ErrNotSite = errors.New("peer: not a site of this peer")

// Get fetches one object the way a browser peer does: its own cache, its
// petal, the directory (and other localities through it), then the origin.
// A URL the site does not share is fetched from the origin directly.
func (p *Peer) Get(ctx context.Context, rawURL string) (*Result, error) {
	s, err := p.siteOf(rawURL)
	if err != nil {
		return nil, fmt.Errorf("peer: get %q: %w", rawURL, err)
	}
	if !s.wk.Shares(rawURL) {
		return p.getDirect(ctx, s, rawURL)
	}
	for try := 0; ; try++ {
		res, retry, err := p.query(ctx, s, rawURL, false)
		if !retry || try > 0 {
			return res, err
		}
	}
}

// query runs one core query. retry: the node answered from its cache but
// the store could not produce a valid object (it was invalidated).
func (p *Peer) query(ctx context.Context, s *site, rawURL string, probe bool) (*Result, bool, error) {
	return p.run(ctx, &pending{url: rawURL, site: s, start: time.Now(), done: make(chan struct{}), probe: probe})
}

// run registers query q with the node and waits for its answer.
func (p *Peer) run(ctx context.Context, q *pending) (*Result, bool, error) {
	s, rawURL := q.site, q.url
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errors.New("peer: closed")
	}
	qid := p.drv.Query(p.now(), s.id, ids.ObjectOf(rawURL))
	p.queries[qid] = q
	if a, ok := p.early[qid]; ok {
		delete(p.early, qid)
		delete(p.queries, qid)
		q.finish(a)
	}
	if p.earlyF[qid] {
		delete(p.earlyF, qid)
		p.startFetch(qid, q)
	}
	p.rearm()
	p.mu.Unlock()
	select {
	case <-q.done:
	case <-q.toOrigin: // nil unless delegated
		return nil, false, fmt.Errorf("peer: lookup %s: %w", rawURL, ErrOrigin)
	case <-ctx.Done():
		return nil, false, fmt.Errorf("peer: get %s: %w", rawURL, ctx.Err())
	case <-p.ctx.Done():
		return nil, false, errors.New("peer: closed")
	}
	a := q.ans
	res := &Result{URL: rawURL, Source: a.Source, Locality: p.loc}
	switch {
	case a.Aborted:
		return nil, false, fmt.Errorf("peer: get %s: aborted (offline)", rawURL)
	case a.Source == core.SourceLocal:
		body, e, signed, err := p.readLocal(s, rawURL)
		if err != nil {
			p.log.Warn("local copy unusable", "url", rawURL, "err", err)
			p.input(func(now time.Duration) { p.drv.Invalidate(now, s.id, ids.ObjectOf(rawURL)) })
			return nil, true, fmt.Errorf("peer: get %s: %w", rawURL, err)
		}
		p.stats.fromLocal.Add(1)
		res.Body, res.ContentType, res.Verified, res.Shared = body, signed.ContentType, true, true
		res.Statement = e.Statement
		res.Lookup = time.Since(q.start)
		s.ctr.answered(opmetrics.SourceCache, len(body), res.Lookup)
		return res, false, nil
	case a.Failed:
		if q.err != nil {
			return nil, false, fmt.Errorf("peer: get %s: origin: %w", rawURL, q.err)
		}
		return nil, false, fmt.Errorf("peer: get %s: origin answered %d", rawURL, q.status)
	case a.Source == core.SourcePeer:
		p.stats.fromPeer.Add(1)
		p.stats.bytesPeer.Add(int64(len(q.body)))
		res.Peer, res.Locality = a.Provider, q.provLoc
	default:
		p.stats.fromOrigin.Add(1)
		p.stats.bytesOrigin.Add(int64(len(q.body)))
	}
	res.Body, res.ContentType, res.Verified, res.Shared = q.body, q.ctype, q.verified, q.shared || a.Source == core.SourcePeer
	res.Statement, res.Keep = q.statement, q.keep
	res.Lookup, res.Transfer = q.firstByte.Sub(q.start), q.lastByte.Sub(q.firstByte)
	src := opmetrics.SourceOrigin
	if a.Source == core.SourcePeer {
		src = opmetrics.SourcePeer
	}
	s.ctr.answered(src, len(q.body), res.Lookup)
	return res, false, nil
}

// readLocal reads a stored object and checks it again (the disk is not
// trusted more than the network).
func (p *Peer) readLocal(s *site, rawURL string) ([]byte, Entry, security.Signed, error) {
	e, r, err := p.open(s.id, ids.ObjectOf(rawURL))
	if err != nil {
		return nil, e, security.Signed{}, err
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, p.cfg.MaxObjectSize+1))
	if err != nil {
		return nil, e, security.Signed{}, fmt.Errorf("read stored object: %w", err)
	}
	signed, err := e.Signed()
	if err != nil {
		return nil, e, signed, err
	}
	if e.URL != rawURL {
		return nil, e, signed, fmt.Errorf("stored object is %s", e.URL)
	}
	if err := security.Verify(s.key, signed, rawURL, body, time.Now()); err != nil {
		return nil, e, signed, fmt.Errorf("stored object: %w", err)
	}
	return body, e, signed, nil
}

// getDirect fetches a URL the site does not share: origin only, nothing
// stored.
func (p *Peer) getDirect(ctx context.Context, s *site, rawURL string) (*Result, error) {
	start := time.Now()
	r, err := p.originGet(ctx, s, rawURL)
	if err != nil {
		return nil, fmt.Errorf("peer: get %s: %w", rawURL, err)
	}
	if r.status != 200 {
		return nil, fmt.Errorf("peer: get %s: origin answered %d", rawURL, r.status)
	}
	p.stats.fromOrigin.Add(1)
	p.stats.bytesOrigin.Add(int64(len(r.body)))
	s.ctr.answered(opmetrics.SourceOrigin, len(r.body), r.firstByte.Sub(start))
	return &Result{
		URL: rawURL, Source: core.SourceOrigin, Locality: p.loc, Body: r.body, ContentType: r.ctype,
		Verified: r.signed != nil, Lookup: r.firstByte.Sub(start), Transfer: r.lastByte.Sub(r.firstByte),
	}, nil
}

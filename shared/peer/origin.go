package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/security"
	"github.com/flowercdn/flower/shared/webfetch"
)

// fetcher makes the HTTP requests of a peer, or of a cache in front of it
// (SiteClient): origin fetches, well-known documents and manifests.
type fetcher struct {
	client  *webfetch.Client
	timeout time.Duration // bounds one origin fetch
	maxSize int64         // bounds an object
	log     *slog.Logger
	stats   *counters
	header  http.Header // added to every origin request (nil: none)
}

// site is one website the peer serves: its well-known document (key and
// whitelist) and, for static origins, its signed manifest.
type site struct {
	origin string
	id     ids.SiteID
	wk     security.WellKnown
	key    security.PublicKey

	mu         sync.Mutex
	manifest   *security.Manifest
	manifestAt time.Time

	ctr siteCounters // for the operator metrics' reports
}

// manifestRefresh is how long a manifest is trusted to list every object:
// a URL it lacks, or whose statement does not verify the origin's body (the
// site redeployed, or the statement expired), is looked up again after this
// long.
const manifestRefresh = 30 * time.Second

// loadSite reads the site's well-known document from its origin.
func (f *fetcher) loadSite(ctx context.Context, origin string) (*site, error) {
	body, status, err := f.httpGet(ctx, origin+security.WellKnownPath, security.MaxWellKnownSize)
	if err != nil {
		return nil, fmt.Errorf("peer: site %s: %w", origin, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("peer: site %s: %s answered %d", origin, security.WellKnownPath, status)
	}
	return parseSite(origin, body)
}

// parseSite reads a site's well-known document.
func parseSite(origin string, body []byte) (*site, error) {
	wk, err := security.ParseWellKnown(body)
	if err != nil {
		return nil, fmt.Errorf("peer: site %s: %w", origin, err)
	}
	if wk.Site != origin {
		return nil, fmt.Errorf("peer: site %s: the well-known document names %s", origin, wk.Site)
	}
	return &site{origin: origin, id: ids.SiteOf(origin), wk: wk, key: wk.PublicKey}, nil
}

// httpGet fetches a small document, at most limit bytes.
func (f *fetcher) httpGet(ctx context.Context, url string, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := webfetch.Do(f.client, req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, 0, fmt.Errorf("get %s: over %d bytes", url, limit)
	}
	return body, resp.StatusCode, nil
}

// originResp is an origin's answer.
type originResp struct {
	status    int
	header    http.Header
	body      []byte
	ctype     string
	signed    *security.Signed // set when shareable and validly signed
	raw       []byte           // the statement, encoded
	firstByte time.Time
	lastByte  time.Time
}

// originGet fetches rawURL from the origin and decides whether the response
// may be shared: the whitelist, the privacy rules (security.Shareable) and a
// valid statement from the Flower-Statement header or the manifest.
func (f *fetcher) originGet(ctx context.Context, s *site, rawURL string) (*originResp, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	for k, v := range f.header {
		req.Header[k] = v
	}
	resp, err := webfetch.Do(f.client, req)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	defer resp.Body.Close()
	r := &originResp{status: resp.StatusCode, header: resp.Header, ctype: resp.Header.Get("Content-Type"), firstByte: time.Now()}
	r.body, err = readBody(resp, f.maxSize)
	r.lastByte = time.Now()
	if err != nil {
		return nil, fmt.Errorf("origin: %s: %w", rawURL, err)
	}
	if int64(len(r.body)) > f.maxSize {
		return nil, fmt.Errorf("origin: %s: over %d bytes", rawURL, f.maxSize)
	}
	if r.status != http.StatusOK {
		return r, nil
	}
	if ok, why := s.admit(rawURL, req.Header, resp.Header, r.status); !ok {
		f.stats.privateResponses.Add(1)
		f.log.Debug("not shared", "url", rawURL, "why", why)
		return r, nil
	}
	signed, raw, err := f.statementFor(ctx, s, rawURL, resp.Header, r.body)
	if err != nil {
		f.stats.unsignedResponses.Add(1)
		f.log.Info("origin response not shared: no valid statement", "url", rawURL, "err", err)
		return r, nil
	}
	r.signed, r.raw = &signed, raw
	r.ctype = signed.ContentType
	return r, nil
}

// admit is the privacy rule (docs/integrity.md): the site's whitelist and a
// public, cacheable GET response.
func (s *site) admit(rawURL string, reqH, respH http.Header, status int) (bool, string) {
	if !s.wk.Shares(rawURL) {
		return false, "not on the site's whitelist"
	}
	return security.Shareable(http.MethodGet, reqH, respH, status)
}

// statementFor finds the site's statement for rawURL and verifies it
// against body: the response's Flower-Statement header (a dynamic origin),
// else the site's manifest.
func (f *fetcher) statementFor(ctx context.Context, s *site, rawURL string, h http.Header, body []byte) (security.Signed, []byte, error) {
	digest := security.BodyDigest(body) // once, whatever statement is tried
	if v := h.Get(security.StatementHeader); v != "" {
		signed, err := security.DecodeStatementHeader(v)
		if err != nil {
			return security.Signed{}, nil, err
		}
		if err := security.VerifyDigest(s.key, signed, rawURL, digest, len(body), time.Now()); err != nil {
			return security.Signed{}, nil, err
		}
		raw, err := signed.Encode()
		return signed, raw, err
	}
	var signed security.Signed
	var err error
	for stale := false; ; stale = true {
		var m *security.Manifest
		if m, err = s.lookupManifest(ctx, f, rawURL, stale); err != nil {
			return security.Signed{}, nil, err
		}
		var ok bool
		if signed, ok = m.Lookup(rawURL); !ok {
			return security.Signed{}, nil, fmt.Errorf("%s is not in the site's manifest", rawURL)
		}
		err = security.VerifyDigest(s.key, signed, rawURL, digest, len(body), time.Now())
		if err == nil || stale {
			break
		}
		// The site changed the object, or its statement expired, since
		// the manifest was read: read the current one (at most every
		// manifestRefresh).
	}
	if err != nil {
		return security.Signed{}, nil, err
	}
	raw, err := signed.Encode()
	return signed, raw, err
}

// lookupManifest returns the site's manifest, fetched again when it is
// older than manifestRefresh and lacks rawURL or, stale set, holds an
// unusable statement for it.
func (s *site) lookupManifest(ctx context.Context, f *fetcher, rawURL string, stale bool) (*security.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifest != nil {
		if _, ok := s.manifest.Lookup(rawURL); (ok && !stale) || time.Since(s.manifestAt) < manifestRefresh {
			return s.manifest, nil
		}
	}
	body, status, err := f.httpGet(ctx, s.origin+security.ManifestPath, security.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("manifest: %s answered %d", security.ManifestPath, status)
	}
	m, err := security.ParseManifest(body, s.origin)
	if err != nil {
		return nil, err
	}
	s.manifest, s.manifestAt = &m, time.Now()
	return s.manifest, nil
}

// fetchForQuery runs the origin fetch the core asked for, stores the object
// when it may be shared, and reports to the core.
func (p *Peer) fetchForQuery(qid uint64, q *pending) {
	r, err := p.originGet(p.ctx, q.site, q.url)
	ok := err == nil && r.status == http.StatusOK
	var obj = p.objectMeta(security.Signed{}, 0)
	var e Entry
	stored := false
	if ok {
		obj.Size = int64(len(r.body))
		obj.Private = true
		if r.signed != nil {
			obj = p.objectMeta(*r.signed, int64(len(r.body)))
			e = Entry{Site: q.site.id, URL: q.url, Statement: r.raw, Size: obj.Size}
			var serr error
			if stored, serr = p.storeFor(qid, q, e, r.signed.Version, r.body); serr != nil {
				obj.Private = true // no bytes to serve it from
			}
		}
	}
	p.input(func(now time.Duration) {
		if p.queries[qid] == q {
			q.err = err
			if r != nil {
				q.status, q.body, q.ctype = r.status, r.body, r.ctype
				q.verified, q.shared = r.signed != nil, ok && !obj.Private
				q.statement = r.raw
				q.firstByte, q.lastByte = r.firstByte, r.lastByte
			}
		}
		p.drv.FetchDone(now, qid, ok, obj)
		if stored {
			p.dropIfRefused(e, r.signed.Version)
		}
	})
}

// Prefetch caches the shareable objects the site's manifest lists, in URL
// order, until their sizes reach limit bytes (0: the core's quota). Each goes
// through Get, so a seeder takes what its petal already has from its
// petal. It returns the number of objects now held for sharing.
func (p *Peer) Prefetch(ctx context.Context, origin string, limit int64) (int, error) {
	s := p.sites[ids.SiteOf(origin)]
	if s == nil {
		return 0, fmt.Errorf("peer: prefetch %s: %w", origin, ErrNotSite)
	}
	s.mu.Lock()
	s.manifest = nil // always read the current one
	s.mu.Unlock()
	m, err := s.lookupManifest(ctx, p.fetcher, origin+"/", false)
	if err != nil {
		return 0, fmt.Errorf("peer: prefetch %s: %w", origin, err)
	}
	if limit <= 0 {
		limit = p.cfg.Core.CacheBytes
	}
	var total int64
	n := 0
	var errs []error
	for _, o := range m.Objects() { // sorted by URL
		u := o.Statement.URL
		if !s.wk.Shares(u) {
			continue
		}
		if limit > 0 && total+o.Size > limit {
			continue
		}
		r, err := p.Get(ctx, u)
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		if r.Shared {
			total += o.Size
			n++
		}
	}
	return n, errors.Join(errs...)
}

// joinProbePath names the object a peer queries to join a petal when it
// has nothing to ask for. No site serves it: peers never hold it, and the
// peer answers its own origin fetch with a failure without asking the
// origin.
const joinProbePath = "/.well-known/flower-cdn-join"

// Join makes the peer take part in the site's petal at once. A client joins
// Flower-CDN with its first query (the seed's submitQuery): the directory
// that answers it, or the bootstrap's empty answer that makes it found
// D-ring, brings it in. A peer with nothing to ask for yet (a seeder whose
// objects are all in its store) queries a join probe, which no peer holds
// and which is never fetched from the origin. Join returns once the query
// is answered; the role follows (tryJoin may still be under way).
func (p *Peer) Join(ctx context.Context, origin string) error {
	s := p.sites[ids.SiteOf(origin)]
	if s == nil {
		return fmt.Errorf("peer: join %s: %w", origin, ErrNotSite)
	}
	if r := p.Role(origin); r == core.RoleContent || r == core.RoleDirectory {
		return nil
	}
	return p.probe(ctx, s)
}

// Warm runs a join probe whatever the peer's role: the query reaches the
// petal's directory, so the connection to it is open before the first real
// query needs it (a browser peer restarts at every page load, and its
// first queries would otherwise each wait for a WebRTC connection).
func (p *Peer) Warm(ctx context.Context, origin string) error {
	s := p.sites[ids.SiteOf(origin)]
	if s == nil {
		return fmt.Errorf("peer: warm %s: %w", origin, ErrNotSite)
	}
	return p.probe(ctx, s)
}

func (p *Peer) probe(ctx context.Context, s *site) error {
	origin := s.origin
	_, _, err := p.query(ctx, s, origin+joinProbePath, true)
	if ctx.Err() != nil {
		return fmt.Errorf("peer: join %s: %w", origin, ctx.Err())
	}
	_ = err // the probe fails by design: nobody holds it
	return nil
}

// readBody reads a response body of at most limit bytes (limit+1 bytes
// read mean "too large"). With a Content-Length (which net/http holds the
// body to) the buffer is made once, at its size.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit+1))
}

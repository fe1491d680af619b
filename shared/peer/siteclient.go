package peer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/security"
	"github.com/flowercdn/flower/shared/webfetch"
)

// SiteClient fetches one site's objects from its origin the way a peer
// does: the site's whitelist, the privacy rules and the site's statements
// decide what may be stored and shared. The browser's service worker makes
// its origin fetches with it, and checks its stored objects with Verify.
type SiteClient struct {
	f     *fetcher
	s     *site
	stats counters
}

// SiteClientConfig configures a SiteClient. Origin is required.
type SiteClientConfig struct {
	Origin string
	// WellKnown is the site's well-known document as last read (nil:
	// fetched from the origin).
	WellKnown []byte
	// Client makes the requests (nil: http.DefaultClient; in the browser,
	// fetch without a timeout of its own).
	Client *webfetch.Client
	// Header is added to every origin request (the browser's service
	// worker sends js.fetch:credentials: omit, so no cookie goes with a
	// request whose response may be shared).
	Header        http.Header
	Timeout       time.Duration // one origin fetch (default 30 s)
	MaxObjectSize int64         // default 64 MiB
	Logger        *slog.Logger
}

// NewSiteClient reads (or parses) the site's well-known document.
func NewSiteClient(ctx context.Context, cfg SiteClientConfig) (*SiteClient, error) {
	if cfg.Origin == "" {
		return nil, errors.New("peer: site client: no origin")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &SiteClient{}
	c.f = &fetcher{client: cfg.Client, timeout: cfg.Timeout, maxSize: cfg.MaxObjectSize, log: cfg.Logger, stats: &c.stats, header: cfg.Header}
	var err error
	if cfg.WellKnown != nil {
		c.s, err = parseSite(cfg.Origin, cfg.WellKnown)
	} else {
		c.s, err = c.f.loadSite(ctx, cfg.Origin)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Origin is the site's origin.
func (c *SiteClient) Origin() string { return c.s.origin }

// Site is the site's id.
func (c *SiteClient) Site() ids.SiteID { return c.s.id }

// WellKnown is the site's well-known document.
func (c *SiteClient) WellKnown() security.WellKnown { return c.s.wk }

// Shares reports whether the site's whitelist shares rawURL.
func (c *SiteClient) Shares(rawURL string) bool { return c.s.wk.Shares(rawURL) }

// OriginResponse is an origin's answer to a SiteClient.
type OriginResponse struct {
	Status      int
	Header      http.Header
	Body        []byte
	ContentType string
	// Entry is set when the response may be stored and shared: the site
	// signed exactly this body for this URL, and the privacy rules allow
	// it.
	Entry   *Entry
	Version uint64 // the statement's version, with Entry
	// Lookup is the time to the response's headers, Transfer the rest.
	Lookup, Transfer time.Duration
}

// Fetch gets rawURL from the origin (GET).
func (c *SiteClient) Fetch(ctx context.Context, rawURL string) (*OriginResponse, error) {
	start := time.Now()
	r, err := c.f.originGet(ctx, c.s, rawURL)
	if err != nil {
		return nil, err
	}
	out := &OriginResponse{Status: r.status, Header: r.header, Body: r.body, ContentType: r.ctype,
		Lookup: r.firstByte.Sub(start), Transfer: r.lastByte.Sub(r.firstByte)}
	if r.signed != nil {
		out.Entry = &Entry{Site: c.s.id, URL: rawURL, Statement: r.raw, Size: int64(len(r.body))}
		out.Version = r.signed.Version
	}
	return out, nil
}

// Verify checks an object (stored, or handed over by a page-side peer)
// against the site's key: its statement, URL and body.
func (c *SiteClient) Verify(e Entry, body []byte) (security.Signed, error) {
	return c.VerifyDigest(e, security.BodyDigest(body), len(body))
}

// VerifyDigest is Verify for a body of n bytes whose SHA-256 the caller
// computed (in the browser, with WebCrypto: Go's SHA-256 compiled to
// WebAssembly hashes about 48 MB/s).
func (c *SiteClient) VerifyDigest(e Entry, digest [sha256.Size]byte, n int) (security.Signed, error) {
	signed, err := e.Signed()
	if err != nil {
		return signed, err
	}
	if e.Site != c.s.id {
		return signed, fmt.Errorf("peer: %s is not an object of %s", e.URL, c.s.origin)
	}
	if err := security.VerifyDigest(c.s.key, signed, e.URL, digest, n, time.Now()); err != nil {
		return signed, fmt.Errorf("peer: %s: %w", e.URL, err)
	}
	return signed, nil
}

// PrivateResponses counts origin responses the privacy rules or the
// whitelist kept from sharing, UnsignedResponses shareable ones without a
// valid statement.
func (c *SiteClient) PrivateResponses() int64  { return c.stats.privateResponses.Load() }
func (c *SiteClient) UnsignedResponses() int64 { return c.stats.unsignedResponses.Load() }

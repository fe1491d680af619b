// Package worker is Flower-CDN's service worker, compiled to WebAssembly
// with the page-side peer (one module, see wasm/). For GET requests to the
// site's whitelisted URLs it answers from its own verified cache at once;
// on a miss it asks a page-side peer of the site (which has the WebRTC
// connections a service worker cannot have) within a short deadline, and
// otherwise fetches from the origin; what the privacy rules let it share it
// stores, with the site's signed statement, and announces to the page-side
// peer. Every object it did not fetch from the origin itself is verified
// before use. Other requests are not its business (the JS glue passes them
// through untouched).
//
// This file is the logic, independent of the browser, so that it is tested
// natively; bind_js.go connects it to IndexedDB and the service worker's
// events.
package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/security"
)

// Store is the worker's view of the object store it shares with the page
// (IndexedDB in the browser).
type Store interface {
	// Get returns an object's entry and body (peer.ErrNotFound if absent).
	Get(site ids.SiteID, obj ids.ObjectID) (peer.Entry, []byte, error)
	Put(e peer.Entry, body []byte) error
	Delete(site ids.SiteID, obj ids.ObjectID) error
	// Touch records a use, for Trim's LRU order.
	Touch(site ids.SiteID, obj ids.ObjectID, e peer.Entry) error
	// Trim deletes least recently used objects past quota bytes and
	// returns them and the bytes the store keeps.
	Trim(quota int64) (gone []peer.Entry, kept int64, err error)
}

// AnswerKind says how a page-side peer answered.
type AnswerKind int

const (
	// NoPeer: no page-side peer answered within the deadline (none runs,
	// or it was too slow to the first byte).
	NoPeer AnswerKind = iota
	// FromPeer: the object, from the peer's store or another peer.
	FromPeer
	// ToOrigin: no peer has it; the peer's query waits for the worker's
	// origin fetch (reported with Peers.Fetched).
	ToOrigin
)

// Answer is a page-side peer's answer to Ask.
type Answer struct {
	Kind  AnswerKind
	Entry peer.Entry // FromPeer
	Body  []byte     // FromPeer
	Local bool       // FromPeer: it was in the peer's own store
	Peer  string     // FromPeer: the serving peer's id (short), if another
	// Keep (FromPeer): the worker stores the object and reports it with
	// Fetched; the page-side peer serves it from memory until then.
	Keep bool
	// Digest (FromPeer, optional): Body's SHA-256 as the glue computed it
	// with WebCrypto, checked against the statement instead of hashing
	// Body again in Go.
	Digest *[sha256.Size]byte
}

// Peers reaches the site's page-side peers.
type Peers interface {
	// Ask asks a page-side peer for url on behalf of the window clientID
	// (any window of the site may answer), waiting at most firstByte for
	// the first byte of the answer.
	Ask(ctx context.Context, url, clientID string, firstByte time.Duration) (Answer, error)
	// Fetched tells the page-side peers about an origin fetch, or the
	// storing of an object they got from peers (Answer.Keep): ok when the
	// origin answered 200, stored when the object is now in the store.
	Fetched(url string, ok, stored bool)
}

// Config configures a Worker.
type Config struct {
	Site  *peer.SiteClient
	Store Store
	Peers Peers
	// Quota bounds the bytes the store keeps (default 256 MiB).
	Quota int64
	// FirstByte is how long a page-side peer has to start answering
	// (default 300 ms).
	FirstByte time.Duration
	Logger    *slog.Logger
}

// FirstByteParam reads the first-byte deadline from the service worker's
// script URL (flower.js passes the script tag's data-first-byte-ms as
// ?first-byte-ms=): 0 when absent (the default applies), an error when it
// is not a whole number of milliseconds from MinFirstByte to MaxFirstByte.
func FirstByteParam(scriptURL string) (time.Duration, error) {
	u, err := url.Parse(scriptURL)
	if err != nil {
		return 0, fmt.Errorf("worker: script URL: %w", err)
	}
	v := u.Query().Get("first-byte-ms")
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.Atoi(v)
	d := time.Duration(ms) * time.Millisecond
	if err != nil || d < MinFirstByte || d > MaxFirstByte {
		return 0, fmt.Errorf("worker: first-byte-ms %q: want milliseconds from %d to %d", v, MinFirstByte.Milliseconds(), MaxFirstByte.Milliseconds())
	}
	return d, nil
}

// The range of Config.FirstByte a site may set.
const (
	MinFirstByte = 50 * time.Millisecond
	MaxFirstByte = 10 * time.Second
)

// Worker answers the service worker's fetch events.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	stats Counters
	trim  sync.Mutex
	// room is what the store can take before the quota, as the last Trim
	// left it less what was stored since (unknown before the first Trim:
	// far below zero). A store within it needs no Trim, which reads every
	// object's entry.
	room atomic.Int64
	left atomic.Bool // SetLeft
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Site == nil || cfg.Store == nil || cfg.Peers == nil {
		return nil, errors.New("worker: site client, store and peers are required")
	}
	if cfg.Quota <= 0 {
		cfg.Quota = 256 << 20
	}
	if cfg.FirstByte <= 0 {
		cfg.FirstByte = 300 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{cfg: cfg, log: cfg.Logger}
	w.room.Store(math.MinInt64 / 2) // unknown: the first store trims
	return w, nil
}

// Shares reports whether the worker handles url (the site's whitelist).
func (w *Worker) Shares(url string) bool { return !w.left.Load() && w.cfg.Site.Shares(url) }

// ErrPass means the request is not the worker's: the glue sends it to the
// network untouched.
var ErrPass = errors.New("worker: not a shared URL")

// Request is a fetch event's request, as far as the worker looks at it.
type Request struct {
	URL      string
	Header   http.Header // Range, If-None-Match, If-Modified-Since, If-Range
	ClientID string      // the window that asked ("" for a navigation)
}

// Response is the worker's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Source string // "cache", "peer" or "origin"
}

// Handle answers a GET request for a shared URL.
func (w *Worker) Handle(ctx context.Context, req Request) (*Response, error) {
	if !w.Shares(req.URL) {
		return nil, ErrPass
	}
	site, obj := w.cfg.Site.Site(), ids.ObjectOf(req.URL)
	start := time.Now()
	if e, body, err := w.cfg.Store.Get(site, obj); err == nil {
		if signed, err := w.cfg.Site.Verify(e, body); err == nil {
			w.stats.add(&w.stats.FromCache, &w.stats.BytesFromCache, int64(len(body)))
			w.touch(site, obj, e)
			return respond(req, http.StatusOK, signed.ContentType, body, "cache", nil), nil
		} else {
			// Expired, or damaged: not served, and gone.
			w.log.Info("stored copy unusable", "url", req.URL, "err", err)
			if !errors.Is(err, security.ErrExpired) {
				w.stats.inc(&w.stats.VerifyFailures)
			}
			_ = w.cfg.Store.Delete(site, obj)
		}
	} else if !errors.Is(err, peer.ErrNotFound) {
		w.log.Warn("store", "url", req.URL, "err", err)
	}

	a, err := w.cfg.Peers.Ask(ctx, req.URL, req.ClientID, w.cfg.FirstByte)
	if err != nil {
		w.log.Info("page-side peer", "url", req.URL, "err", err)
	}
	w.log.Debug("asked the page-side peer", "url", req.URL, "answer", a.Kind, "took", time.Since(start))
	delegated := a.Kind == ToOrigin
	if a.Kind == FromPeer {
		a.Entry.Site, a.Entry.URL, a.Entry.Size = site, req.URL, int64(len(a.Body)) // what was asked for
		var signed security.Signed
		if a.Digest != nil {
			signed, err = w.cfg.Site.VerifyDigest(a.Entry, *a.Digest, len(a.Body))
		} else {
			signed, err = w.cfg.Site.Verify(a.Entry, a.Body)
		}
		if err == nil {
			src := "peer"
			if a.Local {
				src = "cache"
				w.stats.add(&w.stats.FromCache, &w.stats.BytesFromCache, int64(len(a.Body)))
			} else {
				w.stats.add(&w.stats.FromPeers, &w.stats.BytesFromPeers, int64(len(a.Body)))
				w.stats.ttfb(&w.stats.PeerTTFB, time.Since(start))
			}
			if a.Keep {
				go w.keep(a.Entry, a.Body)
			}
			return respond(req, http.StatusOK, signed.ContentType, a.Body, src, nil), nil
		}
		w.stats.inc(&w.stats.VerifyFailures)
		w.log.Warn("object from the page-side peer failed verification", "url", req.URL, "err", err)
	}

	r, err := w.cfg.Site.Fetch(ctx, req.URL)
	if err != nil {
		if delegated {
			w.cfg.Peers.Fetched(req.URL, false, false)
		}
		return nil, fmt.Errorf("worker: %s: %w", req.URL, err)
	}
	w.stats.add(&w.stats.FromOrigin, &w.stats.BytesFromOrigin, int64(len(r.Body)))
	w.stats.ttfb(&w.stats.OriginTTFB, r.Lookup)
	if r.Entry != nil {
		// Stored and announced after the answer: the page need not wait
		// for IndexedDB.
		go w.keep(*r.Entry, r.Body)
	} else {
		if r.Status == http.StatusOK {
			w.stats.inc(&w.stats.NotShared)
		}
		w.cfg.Peers.Fetched(req.URL, r.Status == http.StatusOK, false)
	}
	if r.Status != http.StatusOK {
		return &Response{Status: r.Status, Header: pick(r.Header, "Content-Type", "Cache-Control"), Body: r.Body, Source: "origin"}, nil
	}
	return respond(req, http.StatusOK, r.ContentType, r.Body, "origin", pick(r.Header, "Cache-Control", "Etag", "Last-Modified", "Vary")), nil
}

// keep stores an object fetched from the origin, or one a page-side peer
// got from another peer (Answer.Keep), and tells the page-side peers.
func (w *Worker) keep(e peer.Entry, body []byte) {
	stored := true
	if err := w.cfg.Store.Put(e, body); err != nil {
		w.log.Warn("store", "url", e.URL, "err", err)
		stored = false
	}
	w.cfg.Peers.Fetched(e.URL, true, stored)
	if stored && w.room.Add(-int64(len(body))) < 0 {
		w.trimStore()
	}
}

func (w *Worker) touch(site ids.SiteID, obj ids.ObjectID, e peer.Entry) {
	if err := w.cfg.Store.Touch(site, obj, e); err != nil {
		w.log.Debug("touch", "url", e.URL, "err", err)
	}
}

func (w *Worker) trimStore() {
	if !w.trim.TryLock() {
		return // a trim is under way
	}
	defer w.trim.Unlock()
	gone, kept, err := w.cfg.Store.Trim(w.cfg.Quota)
	if err != nil {
		w.log.Warn("trim", "err", err)
		return // room stays negative: the next store trims again
	}
	w.room.Store(w.cfg.Quota - kept)
	if len(gone) > 0 {
		w.stats.Evicted.Add(int64(len(gone)))
	}
}

func pick(h http.Header, names ...string) http.Header {
	out := http.Header{}
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			out[http.CanonicalHeaderKey(n)] = v
		}
	}
	return out
}

// respond answers with body, honouring Range and conditional requests
// (http.ServeContent).
func respond(req Request, status int, ctype string, body []byte, source string, extra http.Header) *Response {
	rec := &recorder{header: http.Header{}, status: status}
	for k, v := range extra {
		rec.header[k] = v
	}
	if ctype != "" {
		rec.header.Set("Content-Type", ctype)
	}
	rec.header.Set("Flower-Source", source)
	hr := &http.Request{Method: http.MethodGet, Header: req.Header}
	if hr.Header == nil {
		hr.Header = http.Header{}
	}
	http.ServeContent(rec, hr, "", time.Time{}, bytes.NewReader(body))
	rec.header.Del("Content-Length") // the Response's body length decides
	return &Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes(), Source: source}
}

// recorder is a minimal http.ResponseWriter for ServeContent.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// Counters are the worker's statistics (persisted by the glue across the
// worker's restarts).
type Counters struct {
	FromCache, FromPeers, FromOrigin                atomic.Int64
	BytesFromCache, BytesFromPeers, BytesFromOrigin atomic.Int64
	VerifyFailures, NotShared, Evicted              atomic.Int64
	PeerTTFB, OriginTTFB                            TTFB
}

// TTFB sums times to the first byte, and counts them in the operator
// metrics' histogram buckets (opmetrics.TTFBBounds).
type TTFB struct {
	N, SumMicros atomic.Int64
	Buckets      [opmetrics.NBuckets]atomic.Int64
}

func (c *Counters) add(n, bytes *atomic.Int64, size int64) {
	n.Add(1)
	bytes.Add(size)
}
func (c *Counters) inc(n *atomic.Int64) { n.Add(1) }
func (c *Counters) ttfb(t *TTFB, d time.Duration) {
	t.N.Add(1)
	t.SumMicros.Add(d.Microseconds())
	t.Buckets[opmetrics.Bucket(d)].Add(1)
}

// Snapshot is a plain copy of the counters.
type Snapshot struct {
	FromCache, FromPeers, FromOrigin                int64
	BytesFromCache, BytesFromPeers, BytesFromOrigin int64
	VerifyFailures, NotShared, Evicted              int64
	PeerTTFBN, PeerTTFBMicros                       int64
	OriginTTFBN, OriginTTFBMicros                   int64
	PeerTTFBBuckets, OriginTTFBBuckets              [opmetrics.NBuckets]int64
}

// SiteCounters are the counters as the operator metrics' reports carry
// them (docs/operator-metrics.md).
func (s Snapshot) SiteCounters() opmetrics.SiteCounters {
	u := func(v int64) uint64 { return uint64(max(v, 0)) }
	var c opmetrics.SiteCounters
	c.Requests = [opmetrics.NSources]uint64{u(s.FromCache), u(s.FromPeers), u(s.FromOrigin)}
	c.Bytes = [opmetrics.NSources]uint64{u(s.BytesFromCache), u(s.BytesFromPeers), u(s.BytesFromOrigin)}
	c.VerifyFailures = u(s.VerifyFailures)
	for i := range opmetrics.NBuckets {
		c.PeerTTFB[i], c.OriginTTFB[i] = u(s.PeerTTFBBuckets[i]), u(s.OriginTTFBBuckets[i])
	}
	return c
}

// Stats returns the counters.
func (w *Worker) Stats() Snapshot {
	c := &w.stats
	return Snapshot{
		FromCache: c.FromCache.Load(), FromPeers: c.FromPeers.Load(), FromOrigin: c.FromOrigin.Load(),
		BytesFromCache: c.BytesFromCache.Load(), BytesFromPeers: c.BytesFromPeers.Load(), BytesFromOrigin: c.BytesFromOrigin.Load(),
		VerifyFailures: c.VerifyFailures.Load(), NotShared: c.NotShared.Load(), Evicted: c.Evicted.Load(),
		PeerTTFBN: c.PeerTTFB.N.Load(), PeerTTFBMicros: c.PeerTTFB.SumMicros.Load(),
		OriginTTFBN: c.OriginTTFB.N.Load(), OriginTTFBMicros: c.OriginTTFB.SumMicros.Load(),
		PeerTTFBBuckets: c.PeerTTFB.buckets(), OriginTTFBBuckets: c.OriginTTFB.buckets(),
	}
}

func (t *TTFB) buckets() (out [opmetrics.NBuckets]int64) {
	for i := range out {
		out[i] = t.Buckets[i].Load()
	}
	return out
}

// Restore adds counters saved by an earlier run of the worker.
func (w *Worker) Restore(s Snapshot) {
	c := &w.stats
	for _, p := range []struct {
		a *atomic.Int64
		v int64
	}{
		{&c.FromCache, s.FromCache}, {&c.FromPeers, s.FromPeers}, {&c.FromOrigin, s.FromOrigin},
		{&c.BytesFromCache, s.BytesFromCache}, {&c.BytesFromPeers, s.BytesFromPeers}, {&c.BytesFromOrigin, s.BytesFromOrigin},
		{&c.VerifyFailures, s.VerifyFailures}, {&c.NotShared, s.NotShared}, {&c.Evicted, s.Evicted},
		{&c.PeerTTFB.N, s.PeerTTFBN}, {&c.PeerTTFB.SumMicros, s.PeerTTFBMicros},
		{&c.OriginTTFB.N, s.OriginTTFBN}, {&c.OriginTTFB.SumMicros, s.OriginTTFBMicros},
	} {
		p.a.Add(p.v)
	}
	for i := range opmetrics.NBuckets {
		c.PeerTTFB.Buckets[i].Add(s.PeerTTFBBuckets[i])
		c.OriginTTFB.Buckets[i].Add(s.OriginTTFBBuckets[i])
	}
}

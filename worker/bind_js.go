//go:build js && wasm

package worker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flowercdn/flower/shared/idb"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/jsutil"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/hack-pad/safejs"
)

// StatsDoc is the IndexedDB document holding the worker's counters.
const StatsDoc = "worker-stats"

// SavedStats reads the worker's counters as it last saved them in st
// (StatsDoc); ok is false when there are none or they do not decode.
func SavedStats(st *idb.Store) (s Snapshot, ok bool) {
	b, err := st.Doc(StatsDoc)
	if err != nil || b == nil {
		return s, false
	}
	return s, json.Unmarshal(b, &s) == nil
}

// wellKnownDoc holds the site's well-known document as last read, so that
// the worker can verify its cache while the origin is unreachable.
const wellKnownDoc = "well-known"

// Run starts the worker inside a service worker: it opens IndexedDB, reads
// the site's well-known document (from the origin, else the copy saved last
// time), restores its counters, and installs globalThis.flowerWorker for
// the JS glue (site/flower-sw.js): shares(url) → bool, setLeft(bool), and handle(url,
// headers, clientId) → Promise of a Response, or of null when the glue
// should send the request to the network itself.
func Run(ctx context.Context, log *slog.Logger) error {
	origin, err := global("location", "origin")
	if err != nil {
		return fmt.Errorf("worker: no location: %w", err)
	}
	st, err := idb.Open(idb.Name)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	sc, err := siteClient(ctx, origin, st, log)
	if err != nil {
		return err
	}
	href, err := global("location", "href")
	if err != nil {
		return fmt.Errorf("worker: no location: %w", err)
	}
	firstByte, err := FirstByteParam(href)
	if err != nil {
		log.Warn("the script tag's data-first-byte-ms is ignored", "err", err)
	}
	w, err := New(Config{Site: sc, Store: idbStore{st}, Peers: jsPeers{}, Logger: log, FirstByte: firstByte})
	if err != nil {
		return err
	}
	if s, ok := SavedStats(st); ok {
		w.Restore(s)
	}
	b, err := st.Doc(SettingsDoc)
	if err != nil {
		log.Warn("visitor settings", "err", err)
	}
	if s, err := ParseSettings(b); err != nil {
		log.Warn("visitor settings", "err", err)
	} else {
		w.SetLeft(s.Left)
	}
	go w.saveStats(ctx, st)
	return w.install()
}

func global(path ...string) (string, error) {
	v := safejs.Global()
	var err error
	for _, p := range path {
		if v, err = v.Get(p); err != nil {
			return "", err
		}
	}
	return v.String()
}

func siteClient(ctx context.Context, origin string, st *idb.Store, log *slog.Logger) (*peer.SiteClient, error) {
	// Origin requests carry the visitor's cookies, as the browser would send
	// them: a response that depends on them must say so (private, Vary:
	// Cookie), and then it is neither stored nor shared.
	hdr := http.Header{"js.fetch:credentials": {"same-origin"}}
	cfg := peer.SiteClientConfig{Origin: origin, Header: hdr, Logger: log}
	sc, err := peer.NewSiteClient(ctx, cfg)
	if err == nil {
		if b, merr := sc.WellKnown().Marshal(); merr == nil {
			_ = st.SetDoc(wellKnownDoc, b)
		}
		return sc, nil
	}
	saved, derr := st.Doc(wellKnownDoc)
	if derr != nil || saved == nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	log.Warn("origin unreachable: using the saved well-known document", "err", err)
	cfg.WellKnown = saved
	return peer.NewSiteClient(ctx, cfg)
}

// saveStats writes the counters to IndexedDB when they change (every
// second at most), so the page can read them and they survive restarts.
func (w *Worker) saveStats(ctx context.Context, st *idb.Store) {
	var last Snapshot
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := w.Stats()
		if s == last {
			continue
		}
		b, _ := json.Marshal(s)
		if err := st.SetDoc(StatsDoc, b); err != nil {
			w.log.Debug("save counters", "err", err)
			continue
		}
		last = s
	}
}

func (w *Worker) install() error {
	obj, err := jsutil.NewObject()
	if err != nil {
		return err
	}
	shares, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		if len(args) < 1 {
			return false
		}
		u, err := args[0].String()
		return err == nil && w.Shares(u)
	})
	if err != nil {
		return err
	}
	handle, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		return jsutil.Promise(func() (any, error) { return w.handleJS(args) })
	})
	if err != nil {
		return err
	}
	if err := obj.Set("shares", shares.Value()); err != nil {
		return err
	}
	if err := obj.Set("handle", handle.Value()); err != nil {
		return err
	}
	// setLeft(bool): the page says the visitor left the site (or came
	// back); the settings document says so at the next start.
	setLeft, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		if len(args) > 0 {
			left, _ := args[0].Bool()
			w.SetLeft(left)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := obj.Set("setLeft", setLeft.Value()); err != nil {
		return err
	}
	return safejs.Global().Set("flowerWorker", obj)
}

// handleJS runs Handle for the glue: args are the URL, a plain object of
// request headers and the client id. It resolves to a Response, or to null
// (the glue then fetches from the network).
func (w *Worker) handleJS(args []safejs.Value) (any, error) {
	if len(args) < 3 {
		return nil, errors.New("worker: handle(url, headers, clientId)")
	}
	u, err := args[0].String()
	if err != nil {
		return nil, err
	}
	req := Request{URL: u, Header: http.Header{}}
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
		if v, err := args[1].Get(h); err == nil && !v.IsUndefined() && !v.IsNull() {
			if s, err := v.String(); err == nil {
				req.Header.Set(h, s)
			}
		}
	}
	req.ClientID, _ = args[2].String()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := w.Handle(ctx, req)
	if errors.Is(err, ErrPass) {
		return safejs.Null(), nil
	}
	if err != nil {
		w.log.Info("fetch event", "url", u, "err", err)
		return safejs.Null(), nil // the network may still answer
	}
	return jsResponse(r)
}

func jsResponse(r *Response) (any, error) {
	hdrs, err := jsutil.NewObject()
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		if len(v) > 0 {
			if err := hdrs.Set(k, v[0]); err != nil {
				return nil, err
			}
		}
	}
	init, err := jsutil.NewObject()
	if err != nil {
		return nil, err
	}
	if err := init.Set("status", r.Status); err != nil {
		return nil, err
	}
	if err := init.Set("headers", hdrs); err != nil {
		return nil, err
	}
	var body any = safejs.Null()
	if r.Status != http.StatusNotModified && r.Status != http.StatusNoContent {
		b, err := jsutil.ToJS(r.Body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	cls, err := safejs.Global().Get("Response")
	if err != nil {
		return nil, err
	}
	return cls.New(body, init)
}

// idbStore adapts the IndexedDB store to the worker's Store.
type idbStore struct{ s *idb.Store }

func (s idbStore) Get(site ids.SiteID, obj ids.ObjectID) (peer.Entry, []byte, error) {
	m, b, err := s.s.Get(site, obj)
	return m.Entry, b, err
}
func (s idbStore) Put(e peer.Entry, body []byte) error            { return s.s.Put(e, body) }
func (s idbStore) Delete(site ids.SiteID, obj ids.ObjectID) error { return s.s.Delete(site, obj) }
func (s idbStore) Touch(site ids.SiteID, obj ids.ObjectID, e peer.Entry) error {
	return s.s.Touch(site, obj, idb.Meta{Entry: e})
}
func (s idbStore) Trim(quota int64) ([]peer.Entry, int64, error) { return s.s.Trim(quota) }

// jsPeers reaches the page-side peers through the glue's flowerAskPeer and
// flowerFetched (site/flower-sw.js), which do the client messaging.
type jsPeers struct{}

func (jsPeers) Ask(ctx context.Context, url, clientID string, firstByte time.Duration) (Answer, error) {
	fn, err := safejs.Global().Get("flowerAskPeer")
	if err != nil || fn.IsUndefined() {
		return Answer{}, errors.New("worker: no flowerAskPeer in the glue")
	}
	p, err := fn.Invoke(url, clientID, firstByte.Milliseconds())
	if err != nil {
		return Answer{}, err
	}
	v, err := jsutil.Await(p)
	if err != nil {
		return Answer{}, err
	}
	if v.IsNull() || v.IsUndefined() {
		return Answer{}, nil
	}
	kind, _ := v.Get("kind")
	k, _ := kind.String()
	switch k {
	case "origin":
		return Answer{Kind: ToOrigin}, nil
	case "object":
	default:
		return Answer{}, fmt.Errorf("worker: page-side peer answered %q", k)
	}
	get := func(n string) safejs.Value { x, _ := v.Get(n); return x }
	a := Answer{Kind: FromPeer}
	if a.Body, err = jsutil.ToGo(get("body")); err != nil {
		return Answer{}, err
	}
	if a.Entry.Statement, err = jsutil.ToGo(get("statement")); err != nil {
		return Answer{}, err
	}
	a.Local, _ = get("local").Bool()
	a.Keep, _ = get("keep").Bool()
	if d := get("digest"); !d.IsUndefined() && !d.IsNull() {
		b, err := jsutil.ToGo(d)
		if err != nil {
			return Answer{}, err
		}
		if len(b) != sha256.Size {
			return Answer{}, fmt.Errorf("worker: a digest of %d bytes from the glue", len(b))
		}
		a.Digest = (*[sha256.Size]byte)(b)
	}
	a.Peer, _ = get("peer").String()
	return a, nil
}

func (jsPeers) Fetched(url string, ok, stored bool) {
	if fn, err := safejs.Global().Get("flowerFetched"); err == nil && !fn.IsUndefined() {
		_, _ = fn.Invoke(url, ok, stored)
	}
}

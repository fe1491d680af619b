// Package peertest has what tests of peers share: a signed test website
// (a static part listed in its manifest, a dynamic part signed in the
// Flower-Statement header, private responses) with a log of its hits, and
// a corrupting Store for playing a malicious peer.
package peertest

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/security"
)

// Origin is a signed test website on 127.0.0.1. Paths under /static/ are
// listed in its manifest, /dyn/ paths carry their statement in a header,
// /private/cookie sets a cookie and /private/nostore says no-store (both
// whitelisted and signed, so only the privacy rules keep them private).
type Origin struct {
	URL  string
	Key  security.SiteKey
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
	objs map[string][]byte
}

// NewOrigin serves random bodies of the given sizes at the given paths
// until the test ends.
func NewOrigin(t testing.TB, objects map[string]int) *Origin {
	t.Helper()
	key, err := security.GenerateSiteKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &Origin{Key: key, hits: make(map[string]int), objs: make(map[string][]byte)}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	o.URL = o.srv.URL
	var entries []security.ManifestEntry
	for path, size := range objects {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		o.objs[path] = body
		if strings.HasPrefix(path, "/static/") {
			entries = append(entries, security.ManifestEntry{Statement: o.Sign(path, body), Size: int64(size)})
		}
	}
	m, err := security.NewManifest(o.URL, time.Now().Unix(), entries)
	if err != nil {
		t.Fatal(err)
	}
	if o.objs[security.ManifestPath], err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	wk := security.WellKnown{Site: o.URL, PublicKey: key.Public(), Share: []string{"/static/*", "/dyn/*", "/private/*"}}
	if o.objs[security.WellKnownPath], err = wk.Marshal(); err != nil {
		t.Fatal(err)
	}
	return o
}

// Sign signs body as the object at path (valid for an hour).
func (o *Origin) Sign(path string, body []byte) security.Signed {
	return security.Sign(o.Key, security.Statement{
		URL: o.URL + path, Digest: security.BodyDigest(body), ContentType: "application/octet-stream",
		Version: 1, Expires: time.Now().Add(time.Hour).Unix(),
	})
}

// Body is the body served at path.
func (o *Origin) Body(path string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.objs[path]
}

// Hits is how many times the origin served path.
func (o *Origin) Hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *Origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits[r.URL.Path]++
	body, ok := o.objs[r.URL.Path]
	o.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/dyn/") || strings.HasPrefix(p, "/private/") {
		v, err := security.EncodeStatementHeader(o.Sign(p, body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set(security.StatementHeader, v)
	}
	switch {
	case strings.HasPrefix(p, "/private/cookie"):
		w.Header().Set("Set-Cookie", "session=1")
	case strings.HasPrefix(p, "/private/nostore"):
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(body)
}

// CorruptStore wraps a Store so that every object read from it (to be
// served to another peer) has its first byte flipped while Corrupt is set:
// a malicious peer's altered bytes with the site's valid statement.
type CorruptStore struct {
	peer.Store
	mu      sync.Mutex
	corrupt bool
}

// SetCorrupt turns the corruption on or off.
func (c *CorruptStore) SetCorrupt(on bool) {
	c.mu.Lock()
	c.corrupt = on
	c.mu.Unlock()
}

// Open implements peer.Store.
func (c *CorruptStore) Open(site ids.SiteID, obj ids.ObjectID) (peer.Entry, io.ReadCloser, error) {
	e, r, err := c.Store.Open(site, obj)
	c.mu.Lock()
	on := c.corrupt
	c.mu.Unlock()
	if err != nil || !on {
		return e, r, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return e, nil, err
	}
	if len(b) > 0 {
		b[0] ^= 0xff
	}
	return e, io.NopCloser(bytes.NewReader(b)), nil
}

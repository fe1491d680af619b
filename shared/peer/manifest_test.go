package peer_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/shared/security"
)

// staticSite is a static website whose manifest is signed anew from the
// current bodies at each request (a site that redeploys).
type staticSite struct {
	*peertest.Origin
	mu     sync.Mutex
	bodies map[string][]byte
}

func newStaticSite(t *testing.T, paths ...string) *staticSite {
	t.Helper()
	key, err := security.GenerateSiteKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &staticSite{bodies: make(map[string][]byte)}
	for _, p := range paths {
		s.bodies[p] = randomBytes(10 << 10)
	}
	var wk []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := "http://" + r.Host
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case security.WellKnownPath:
			_, _ = w.Write(wk)
		case security.ManifestPath:
			var entries []security.ManifestEntry
			for p, b := range s.bodies {
				entries = append(entries, security.ManifestEntry{Size: int64(len(b)), Statement: security.Sign(key, security.Statement{
					URL: origin + p, Digest: security.BodyDigest(b), ContentType: "application/octet-stream", Version: 1,
				})})
			}
			m, err := security.NewManifest(origin, time.Now().Unix(), entries)
			if err == nil {
				var b []byte
				if b, err = m.Marshal(); err == nil {
					_, _ = w.Write(b)
					return
				}
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			b, ok := s.bodies[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	if wk, err = (security.WellKnown{Site: srv.URL, PublicKey: key.Public(), Share: []string{"/static/*"}}).Marshal(); err != nil {
		t.Fatal(err)
	}
	s.Origin = &peertest.Origin{URL: srv.URL, Key: key}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestManifestRedeploy: a static site changes an object and signs a new
// manifest. A peer that read the old manifest reads the new one when the
// origin's body no longer matches it (at most every manifestRefresh), and
// shares the new object, instead of treating it as unsigned for as long as
// it runs.
func TestManifestRedeploy(t *testing.T) {
	site := newStaticSite(t, "/static/a.bin", "/static/b.bin")
	boot := startBootstrap(t, 1, site.URL)
	p := startPeer(t, boot, site.Origin, newHub().factory(), 0, nil, nil)
	if r := get(t, p, site.URL+"/static/a.bin"); r.Source != core.SourceOrigin || !r.Shared {
		t.Fatalf("first fetch: %s shared %v", describe(r), r.Shared)
	}
	// The site redeploys b.bin; the peer's manifest is past its refresh age.
	site.mu.Lock()
	site.bodies["/static/b.bin"] = randomBytes(12 << 10)
	site.mu.Unlock()
	peer.AgeManifests(p, time.Hour)
	r := get(t, p, site.URL+"/static/b.bin")
	if r.Source != core.SourceOrigin || !r.Shared || !r.Verified {
		t.Fatalf("redeployed object: %s shared %v verified %v; unsigned responses %d", describe(r), r.Shared, r.Verified, p.Stats().UnsignedResponses)
	}
}

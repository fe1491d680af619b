package peer_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/shared/peer"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/shared/security"
)

// shortLivedOrigin is a signed website whose /dyn/short.bin statement
// expires `life` after each response, and /dyn/long.bin and /dyn/other.bin
// an hour after.
func shortLivedOrigin(t *testing.T, life time.Duration) *peertest.Origin {
	t.Helper()
	key, err := security.GenerateSiteKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]byte{"/dyn/short.bin": make([]byte, 256<<10), "/dyn/long.bin": make([]byte, 20<<10), "/dyn/other.bin": make([]byte, 20<<10)}
	for _, b := range bodies {
		_, _ = rand.Read(b)
	}
	var wk []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == security.WellKnownPath {
			_, _ = w.Write(wk)
			return
		}
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		exp := time.Now().Add(time.Hour)
		if r.URL.Path == "/dyn/short.bin" {
			exp = time.Now().Add(life)
		}
		v, err := security.EncodeStatementHeader(security.Sign(key, security.Statement{
			URL: "http://" + r.Host + r.URL.Path, Digest: security.BodyDigest(body),
			ContentType: "application/octet-stream", Version: 1, Expires: exp.Unix(),
		}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set(security.StatementHeader, v)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	if wk, err = (security.WellKnown{Site: srv.URL, PublicKey: key.Public(), Share: []string{"/dyn/*"}}).Marshal(); err != nil {
		t.Fatal(err)
	}
	return &peertest.Origin{URL: srv.URL, Key: key}
}

// TestExpiryDuringTransfer: an object whose statement was valid when its
// transfer started and expires before the last byte arrives is dropped,
// but its sender did nothing wrong: it is not reported as a bad peer
// (FailBadObject would make the receiver avoid it, dropping it from every
// view and index, for ten minutes).
func TestExpiryDuringTransfer(t *testing.T) {
	o := shortLivedOrigin(t, 3*time.Second)
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	get(t, p1, o.URL+"/dyn/long.bin")
	eventually(t, "p1 founds D-ring as directory", 5*time.Second, func() bool { return p1.Role(o.URL) == core.RoleDirectory })
	waitDirectory(t, boot, o.URL, 0, p1)
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if r := get(t, p2, o.URL+"/dyn/long.bin"); r.Source != core.SourcePeer || r.Peer != p1.ID() {
		t.Fatalf("petal fetch: %s", describe(r))
	}
	eventually(t, "p2 joins p1's petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })

	// p1 serves short.bin slowly: 4 chunks, a second each, and the
	// statement has less than 3 s left when the transfer starts.
	get(t, p1, o.URL+"/dyn/short.bin")
	hub.mu.Lock()
	hub.slow[p1.ID()] = time.Second
	hub.mu.Unlock()
	get(t, p2, o.URL+"/dyn/short.bin")
	hub.mu.Lock()
	hub.slow[p1.ID()] = 0
	hub.mu.Unlock()
	s := p2.Stats()
	if s.VerifyFailures != 0 || s.TransferFailures != 1 {
		t.Fatalf("p2: %d verification failures, %d transfer failures; want 0 and 1 (the statement expired on the way)", s.VerifyFailures, s.TransferFailures)
	}
	var bad int
	p2.Node(func(n *core.Node) { bad = n.Stats().Origin["bad_object"] })
	if bad != 0 {
		t.Fatalf("p2 sent %d queries to the origin as bad_object", bad)
	}
	// p1 is not avoided: p2 still gets objects from it.
	get(t, p1, o.URL+"/dyn/other.bin")
	eventually(t, "p1 indexes other.bin", 5*time.Second, func() bool {
		var ok bool
		p1.Node(func(n *core.Node) { ok = n.IndexHolds(ids.SiteOf(o.URL), ids.ObjectOf(o.URL+"/dyn/other.bin")) })
		return ok
	})
	if r := get(t, p2, o.URL+"/dyn/other.bin"); r.Source != core.SourcePeer || r.Peer != p1.ID() {
		t.Fatalf("after the expired transfer: %s", describe(r))
	}
}

// waitDirectory waits until the bootstrap service lists p as a directory
// of origin in locality loc.
func waitDirectory(t *testing.T, boot, origin string, loc int, p *peer.Peer) {
	t.Helper()
	u := fmt.Sprintf("%s/v1/entry?site=%s&loc=%d", boot, url.QueryEscape(origin), loc)
	eventually(t, "the bootstrap lists the directory", 5*time.Second, func() bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		e, err := client.ParseEntriesJSON(b)
		return err == nil && slices.ContainsFunc(e.Local, func(m ids.Member) bool { return m.ID == p.ID() })
	})
}

package peer_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
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
	waitFounder(t, boot, o, p1)
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if r := get(t, p2, o.URL+"/dyn/long.bin"); r.Source != core.SourcePeer || r.Peer != p1.ID() {
		t.Fatalf("petal fetch: %s", describe(r))
	}
	peertest.Eventually(t, "p2 joins p1's petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })

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
	peertest.WaitIndexed(t, p1, o.URL, o.URL+"/dyn/other.bin")
	if r := get(t, p2, o.URL+"/dyn/other.bin"); r.Source != core.SourcePeer || r.Peer != p1.ID() {
		t.Fatalf("after the expired transfer: %s", describe(r))
	}
}

// TestExpiredNotServed: a peer does not serve an object whose statement
// has expired (the core treats it as a miss and drops it even between its
// sweeps), and the asker goes on to the origin without counting anything
// against it.
func TestExpiredNotServed(t *testing.T) {
	o := shortLivedOrigin(t, 2*time.Second)
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	// p1's core sweeps expired objects only every minute: what it does
	// with one in between is up to the host.
	p1 := startPeerWith(t, boot, o, hub.factory(), 0, nil, nil, func(c *peer.Config) { c.Core.KeepalivePeriod = time.Minute })
	get(t, p1, o.URL+"/dyn/long.bin")
	waitFounder(t, boot, o, p1)
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	get(t, p2, o.URL+"/dyn/long.bin")
	peertest.Eventually(t, "p2 joins p1's petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })

	short := o.URL + "/dyn/short.bin"
	get(t, p1, short)
	var held int
	p1.Node(func(n *core.Node) { held = n.CacheLen(ids.SiteOf(o.URL)) })
	// Wait out the statement (whole seconds) and then some.
	time.Sleep(3 * time.Second)
	if r := get(t, p2, short); r.Source != core.SourceOrigin {
		t.Fatalf("expired object: %s", describe(r))
	}
	if s := p2.Stats(); s.VerifyFailures != 0 || s.TransferFailures != 0 {
		t.Fatalf("p2 counted %d verification and %d transfer failures: the expired object was sent", s.VerifyFailures, s.TransferFailures)
	}
	var now int
	p1.Node(func(n *core.Node) { now = n.CacheLen(ids.SiteOf(o.URL)) })
	if now >= held {
		t.Fatalf("p1 still caches %d objects (had %d): the expired one was not dropped", now, held)
	}
}

// staleStore serves every object with a statement the site signed with an
// expiry in the past: what an honest peer whose clock is behind sends.
type staleStore struct {
	peer.Store
	o *peertest.Origin
}

func (s staleStore) Open(site ids.SiteID, obj ids.ObjectID) (peer.Entry, io.ReadCloser, error) {
	e, r, err := s.Store.Open(site, obj)
	if err != nil {
		return e, r, err
	}
	st, err := e.Signed()
	if err != nil {
		return e, r, err
	}
	st.Expires = time.Now().Add(-time.Minute).Unix()
	if e.Statement, err = security.Sign(s.o.Key, st.Statement).Encode(); err != nil {
		return e, r, err
	}
	return e, r, nil
}

// TestStaleStatementNotMalice: a statement that arrives already expired
// (valid signature, URL and digest; a stale copy, or a sender whose clock
// is behind) moves the query on without marking the sender as bad.
func TestStaleStatementNotMalice(t *testing.T) {
	o := shortLivedOrigin(t, time.Hour)
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, staleStore{Store: peer.NewMemStore(), o: o}, nil)
	get(t, p1, o.URL+"/dyn/long.bin")
	waitFounder(t, boot, o, p1)
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if r := get(t, p2, o.URL+"/dyn/long.bin"); r.Source != core.SourceOrigin {
		t.Fatalf("stale statement: %s", describe(r))
	}
	s := p2.Stats()
	if s.VerifyFailures != 0 || s.TransferFailures != 1 {
		t.Fatalf("p2: %d verification failures, %d transfer failures; want 0 and 1", s.VerifyFailures, s.TransferFailures)
	}
	var bad int
	p2.Node(func(n *core.Node) { bad = n.Stats().Origin["bad_object"] })
	if bad != 0 {
		t.Fatalf("p2 sent %d queries to the origin as bad_object", bad)
	}
}

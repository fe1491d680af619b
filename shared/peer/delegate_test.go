package peer_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestDelegatedOrigin is the browser's split: a cache in front of the peer
// (the service worker) asks it with Lookup, fetches from the origin itself
// with a SiteClient when Lookup says ErrOrigin, stores, and reports with
// Fetched; the peer then serves the object to its petal. Objects stored
// while no peer ran are adopted at start.
func TestDelegatedOrigin(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 300 << 10, "/static/b.bin": 10 << 10, "/private/nostore": 1000})
	boot := startBootstrap(t, 2, o.URL)
	hub := newHub()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := peer.NewSiteClient(ctx, peer.SiteClientConfig{Origin: o.URL})
	if err != nil {
		t.Fatal(err)
	}
	st1 := peer.NewMemStore()
	p1 := startPeer(t, boot, o, hub.factory(), 0, st1, nil)
	url := o.URL + "/static/a.bin"
	if _, err := p1.Lookup(ctx, url, nil); !errors.Is(err, peer.ErrOrigin) {
		t.Fatalf("lookup with no peer holding the object: %v, want ErrOrigin", err)
	}
	if o.Hits("/static/a.bin") != 0 {
		t.Fatal("Lookup fetched from the origin itself")
	}
	r, err := sc.Fetch(ctx, url)
	if err != nil || r.Entry == nil || r.Status != 200 {
		t.Fatalf("site client fetch: %v %+v", err, r)
	}
	if err := st1.Put(*r.Entry, r.Body); err != nil {
		t.Fatal(err)
	}
	if err := p1.Fetched(url, true, true); err != nil {
		t.Fatal(err)
	}
	site := ids.SiteOf(o.URL)
	cached := func(p *peer.Peer, u string) bool {
		ok := false
		p.Node(func(n *core.Node) { _, ok = n.CachedVersion(site, ids.ObjectOf(u)) })
		return ok
	}
	peertest.Eventually(t, "p1 caches what the worker fetched", 5*time.Second, func() bool { return cached(p1, url) })
	waitFounder(t, boot, o, p1)

	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	var receiving atomic.Bool
	res, err := p2.Lookup(ctx, url, func() { receiving.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != core.SourcePeer || res.Peer != p1.ID() || !bytes.Equal(res.Body, o.Body("/static/a.bin")) || len(res.Statement) == 0 {
		t.Fatalf("p2's lookup: %s", describe(res))
	}
	peertest.Eventually(t, "the receiving callback ran", 2*time.Second, receiving.Load)
	if n := o.Hits("/static/a.bin"); n != 1 {
		t.Fatalf("origin served a.bin %d times, want 1", n)
	}

	// Not shareable: no Entry, and Fetched(stored=false) ends the query.
	pr, err := sc.Fetch(ctx, o.URL+"/private/nostore")
	if err != nil || pr.Entry != nil || sc.PrivateResponses() != 1 {
		t.Fatalf("no-store response: err %v shareable %v private %d", err, pr != nil && pr.Entry != nil, sc.PrivateResponses())
	}

	// Stored while no peer ran (the worker on a page without a peer):
	// adopted at start.
	st3 := peer.NewMemStore()
	burl := o.URL + "/static/b.bin"
	rb, err := sc.Fetch(ctx, burl)
	if err != nil || rb.Entry == nil {
		t.Fatalf("fetch b: %v", err)
	}
	if err := st3.Put(*rb.Entry, rb.Body); err != nil {
		t.Fatal(err)
	}
	p3 := startPeer(t, boot, o, hub.factory(), 1, st3, nil)
	if !cached(p3, burl) {
		t.Fatal("a stored object the state did not list was not adopted at start")
	}
	if _, err := sc.Verify(*rb.Entry, append([]byte{rb.Body[0] ^ 0xff}, rb.Body[1:]...)); err == nil {
		t.Fatal("Verify accepted a changed body")
	}
}

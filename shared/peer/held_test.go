package peer_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestCallerStores is the browser's page-side peer: what its Lookups get
// from peers is stored by the caller (the service worker), not by the
// peer. The peer holds the object in memory (and serves it from there)
// until the caller reports it stored; an object the caller could not
// store, or never reported, is dropped from the node's cache.
func TestCallerStores(t *testing.T) {
	paths := map[string]int{"/static/a.bin": 200 << 10, "/static/b.bin": 20 << 10, "/static/c.bin": 30 << 10}
	o := peertest.NewOrigin(t, paths)
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := peer.NewSiteClient(ctx, peer.SiteClientConfig{Origin: o.URL})
	if err != nil {
		t.Fatal(err)
	}
	site := ids.SiteOf(o.URL)
	cached := func(p *peer.Peer, u string) bool {
		ok := false
		p.Node(func(n *core.Node) { _, ok = n.CachedVersion(site, ids.ObjectOf(u)) })
		return ok
	}
	inStore := func(st peer.Store, u string) bool {
		_, r, err := st.Open(site, ids.ObjectOf(u))
		if err == nil {
			r.Close()
		}
		return err == nil
	}

	// p1 holds the three objects (fetched by its cache in front, reported).
	st1 := peer.NewMemStore()
	p1 := startPeer(t, boot, o, hub.factory(), 0, st1, nil)
	if _, err := p1.Lookup(ctx, o.URL+"/static/a.bin", nil); !errors.Is(err, peer.ErrOrigin) {
		t.Fatalf("p1's first lookup: %v, want ErrOrigin", err)
	}
	for path := range paths {
		r, err := sc.Fetch(ctx, o.URL+path)
		if err != nil || r.Entry == nil {
			t.Fatalf("fetch %s: %v", path, err)
		}
		if err := st1.Put(*r.Entry, r.Body); err != nil {
			t.Fatal(err)
		}
		if err := p1.Fetched(o.URL+path, true, true); err != nil {
			t.Fatal(err)
		}
	}
	for path := range paths {
		peertest.Eventually(t, "p1 caches "+path, 5*time.Second, func() bool { return cached(p1, o.URL+path) })
	}
	waitFounder(t, boot, o, p1)

	st2 := peer.NewMemStore()
	p2 := startPeerWith(t, boot, o, hub.factory(), 0, st2, nil, func(c *peer.Config) {
		c.CallerStores = true
		c.OriginTimeout = 2 * time.Second // how long a held object waits for its report
	})
	aurl := o.URL + "/static/a.bin"
	res, err := p2.Lookup(ctx, aurl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != core.SourcePeer || !res.Keep || !bytes.Equal(res.Body, o.Body("/static/a.bin")) {
		t.Fatalf("p2's lookup: %s, keep %v", describe(res), res.Keep)
	}
	if inStore(st2, aurl) {
		t.Fatal("p2 stored the object itself although its caller stores")
	}
	if !cached(p2, aurl) || peer.HeldObjects(p2) != 1 {
		t.Fatalf("p2 caches a.bin: %v, holds %d objects, want it cached and held", cached(p2, aurl), peer.HeldObjects(p2))
	}
	// Held, it is p2's own copy: a Get is a local hit, from memory.
	local, err := p2.Get(ctx, aurl)
	if err != nil || local.Source != core.SourceLocal || !bytes.Equal(local.Body, res.Body) {
		t.Fatalf("p2's Get of a held object: %v %s", err, describe(local))
	}
	// The caller stores it and reports: no longer held, still cached.
	if err := st2.Put(peer.Entry{Site: site, URL: aurl, Statement: res.Statement, Size: int64(len(res.Body))}, res.Body); err != nil {
		t.Fatal(err)
	}
	if err := p2.Fetched(aurl, true, true); err != nil {
		t.Fatal(err)
	}
	if peer.HeldObjects(p2) != 0 || !cached(p2, aurl) {
		t.Fatalf("after the report: %d held, cached %v", peer.HeldObjects(p2), cached(p2, aurl))
	}

	// The caller could not store it: dropped.
	burl := o.URL + "/static/b.bin"
	if res, err := p2.Lookup(ctx, burl, nil); err != nil || !res.Keep {
		t.Fatalf("lookup b: %v", err)
	}
	if err := p2.Fetched(burl, true, false); err != nil {
		t.Fatal(err)
	}
	peertest.Eventually(t, "p2 drops what its caller could not store", 5*time.Second, func() bool { return !cached(p2, burl) })

	// The caller never reports (its worker died): dropped after
	// OriginTimeout, as the store does not have it.
	curl := o.URL + "/static/c.bin"
	if res, err := p2.Lookup(ctx, curl, nil); err != nil || !res.Keep {
		t.Fatalf("lookup c: %v", err)
	}
	peertest.Eventually(t, "p2 drops an object never reported", 6*time.Second, func() bool { return !cached(p2, curl) && peer.HeldObjects(p2) == 0 })
}

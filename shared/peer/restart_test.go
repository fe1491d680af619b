package peer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestRestartRejoinsFromStoredView: a peer restarted on its cache
// directory keeps its identity, role and objects, and rejoins its petal
// from its stored view without asking the bootstrap service for entry
// points (the seed's reconnection rule).
func TestRestartRejoinsFromStoredView(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 30 << 10, "/static/b.bin": 30 << 10})
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	get(t, p1, o.URL+"/static/a.bin")
	get(t, p1, o.URL+"/static/b.bin")
	waitFounder(t, boot, o, p1)

	dir := t.TempDir()
	store, err := peer.OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p2 := startPeer(t, boot, o, hub.factory(), 0, store, key)
	if r := get(t, p2, o.URL+"/static/a.bin"); r.Source != core.SourcePeer {
		t.Fatalf("before the restart: %s", describe(r))
	}
	peertest.Eventually(t, "p2 in the petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })
	// The reconnection rule needs a stored view to rejoin from.
	peertest.Eventually(t, "p2 has petal contacts in its view", 10*time.Second, func() bool {
		var n int
		p2.Node(func(nd *core.Node) { n = nd.ViewLen(ids.SiteOf(o.URL)) })
		return n > 0
	})
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = peer.OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2 = startPeer(t, boot, o, hub.factory(), 0, store, key)
	if got := p2.Role(o.URL); got != core.RoleContent {
		t.Fatalf("restored role %v, want content", got)
	}
	if r := get(t, p2, o.URL+"/static/a.bin"); r.Source != core.SourceLocal {
		t.Fatalf("stored object after the restart: %s", describe(r))
	}
	if r := get(t, p2, o.URL+"/static/b.bin"); r.Source != core.SourcePeer || r.Peer != p1.ID() {
		t.Fatalf("petal fetch after the restart: %s", describe(r))
	}
	if n := p2.Stats().EntryRequests; n != 0 {
		t.Fatalf("the restarted peer asked the bootstrap service for entry points %d times", n)
	}
}

// TestRestartSmallerQuota: a peer restarted with a smaller quota keeps
// only what fits, and the store follows: the bodies the restored node no
// longer holds are deleted, not left on disk outside the quota.
func TestRestartSmallerQuota(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 30 << 10, "/static/b.bin": 30 << 10, "/static/c.bin": 30 << 10})
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	dir := t.TempDir()
	store, err := peer.OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p := startPeer(t, boot, o, hub.factory(), 0, store, key)
	for _, path := range []string{"/static/a.bin", "/static/b.bin", "/static/c.bin"} {
		get(t, p, o.URL+path)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if l, _ := store.List(); len(l) != 3 {
		t.Fatalf("%d objects stored before the restart, want 3", len(l))
	}

	if store, err = peer.OpenDiskStore(dir); err != nil {
		t.Fatal(err)
	}
	p = startPeerWith(t, boot, o, hub.factory(), 0, store, key, func(c *peer.Config) { c.Core.CacheBytes = 40 << 10 })
	var held int
	p.Node(func(n *core.Node) { held = n.CacheLen(ids.SiteOf(o.URL)) })
	l, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if held != 1 || len(l) != held {
		t.Fatalf("after the restart with a 40 KiB quota: the node holds %d objects, the store %d", held, len(l))
	}
}

// TestStoreFollowsTheNode: an object the node does not cache (larger than
// its quota) is answered but does not stay in the store, where nothing
// would ever evict it.
func TestStoreFollowsTheNode(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/big.bin": 64 << 10, "/static/small.bin": 4 << 10})
	boot := startBootstrap(t, 1, o.URL)
	store := peer.NewMemStore()
	p := startPeerWith(t, boot, o, newHub().factory(), 0, store, nil, func(c *peer.Config) { c.Core.CacheBytes = 16 << 10 })
	if r := get(t, p, o.URL+"/static/small.bin"); r.Source != core.SourceOrigin || !r.Shared {
		t.Fatalf("small object: %s", describe(r))
	}
	if r := get(t, p, o.URL+"/static/big.bin"); r.Source != core.SourceOrigin || len(r.Body) != 64<<10 {
		t.Fatalf("big object: %s", describe(r))
	}
	var cached int
	p.Node(func(n *core.Node) { cached = n.CacheLen(ids.SiteOf(o.URL)) })
	list, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != cached {
		t.Fatalf("the store holds %d objects, the node caches %d", len(list), cached)
	}
}

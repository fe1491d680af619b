package peer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestUploadLimit: a peer capped at 100 KiB/s sends a 256 KiB object in
// about 2.5 s (a quarter-second burst, then the cap), and lifting the cap
// lets the next transfer run at full speed.
func TestUploadLimit(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 256 << 10, "/static/b.bin": 256 << 10})
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	get(t, p1, o.URL+"/static/a.bin")
	get(t, p1, o.URL+"/static/b.bin")
	waitFounder(t, boot, o, p1)
	p1.SetUploadLimit(100 << 10)
	if got := p1.UploadLimit(); got != 100<<10 {
		t.Fatalf("UploadLimit %d", got)
	}
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	start := time.Now()
	r := get(t, p2, o.URL+"/static/a.bin")
	took := time.Since(start)
	if r.Source != core.SourcePeer {
		t.Fatalf("capped transfer: %s", describe(r))
	}
	// 256 KiB at 100 KiB/s after a 25 KiB burst: 2.3 s at least.
	if took < 2200*time.Millisecond || took > 6*time.Second {
		t.Fatalf("256 KiB at a 100 KiB/s cap took %v, want about 2.3-2.6 s", took)
	}
	p1.SetUploadLimit(0)
	start = time.Now()
	r = get(t, p2, o.URL+"/static/b.bin")
	if r.Source != core.SourcePeer || time.Since(start) > time.Second {
		t.Fatalf("uncapped transfer: %s in %v", describe(r), time.Since(start))
	}
	t.Logf("capped: %v; uncapped: %v", took, time.Since(start))
}

// TestVisitorControls: with NoServe the peer uploads nothing and the other
// peer gets the object from the origin; Clear empties the peer's cache and
// store, so its next request is not a local hit; Leave takes the peer out
// of the site (role none, lookups refused) and a peer started with the
// site in Config.Left stays out.
func TestVisitorControls(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 64 << 10, "/static/b.bin": 64 << 10})
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	store := peer.NewMemStore()
	p1 := startPeer(t, boot, o, hub.factory(), 0, store, nil)
	get(t, p1, o.URL+"/static/a.bin")
	waitFounder(t, boot, o, p1)
	p1.SetRestrictions(core.Restrictions{NoServe: true, NoDirectory: true})
	peertest.Eventually(t, "p1 gives its directory position up", 5*time.Second, func() bool { return p1.Role(o.URL) != core.RoleDirectory })
	if r := p1.Restrictions(); !r.NoServe || !r.NoDirectory {
		t.Fatalf("restrictions %+v", r)
	}
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if r := get(t, p2, o.URL+"/static/a.bin"); r.Source != core.SourceOrigin {
		t.Fatalf("object of a peer that does not serve: %s", describe(r))
	}
	if s := p1.Stats(); s.Served != 0 || s.BytesUploaded != 0 {
		t.Fatalf("p1 served %d objects, %d bytes under NoServe", s.Served, s.BytesUploaded)
	}
	if n := o.Hits("/static/a.bin"); n != 2 {
		t.Fatalf("origin hits %d, want 2", n)
	}

	n, err := p1.Clear(o.URL)
	if err != nil || n != 1 {
		t.Fatalf("Clear: %d, %v; want 1 object", n, err)
	}
	if l, err := store.List(); err != nil || len(l) != 0 {
		t.Fatalf("store after Clear: %v, %v", l, err)
	}
	cached := -1
	p1.Node(func(nd *core.Node) { cached = nd.CacheLen(ids.SiteOf(o.URL)) })
	if cached != 0 {
		t.Fatalf("node caches %d objects after Clear", cached)
	}
	if r := get(t, p1, o.URL+"/static/a.bin"); r.Source == core.SourceLocal {
		t.Fatalf("after Clear: %s, want no local hit", describe(r))
	}

	if err := p1.Leave(o.URL); err != nil {
		t.Fatal(err)
	}
	if role := p1.Role(o.URL); role != core.RoleNone || !p1.Left(o.URL) {
		t.Fatalf("after Leave: role %v, left %v", role, p1.Left(o.URL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p1.Lookup(ctx, o.URL+"/static/b.bin", nil); !errors.Is(err, peer.ErrLeft) || !errors.Is(err, peer.ErrOrigin) {
		t.Fatalf("Lookup after Leave: %v, want ErrLeft and ErrOrigin", err)
	}
	if err := p1.Rejoin(o.URL); err != nil || p1.Role(o.URL) != core.RoleClient || p1.Left(o.URL) {
		t.Fatalf("Rejoin: %v, role %v", err, p1.Role(o.URL))
	}

	// Left while no peer ran: a restart with Config.Left stays out, even
	// with a saved state that lists the site.
	p3store := peer.NewMemStore()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p3 := startPeer(t, boot, o, hub.factory(), 0, p3store, key)
	get(t, p3, o.URL+"/static/b.bin")
	if err := p3.Close(); err != nil {
		t.Fatal(err)
	}
	p3 = startPeerWith(t, boot, o, hub.factory(), 0, p3store, key, func(c *peer.Config) { c.Left = []string{o.URL} })
	if role := p3.Role(o.URL); role != core.RoleNone || !p3.Left(o.URL) {
		t.Fatalf("restarted with Left: role %v", role)
	}
}

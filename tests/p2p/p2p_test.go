package p2p_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestOverWebRTC is the integration scenario, over pion data
// channels on 127.0.0.1 with the real bootstrap binary and peers in two
// localities.
func TestOverWebRTC(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{
		"/static/a.bin": 300 << 10, "/static/b.bin": 80 << 10, "/static/c.bin": 2 << 20,
		"/dyn/d.bin": 40 << 10, "/dyn/e.bin": 40 << 10, "/private/cookie": 2000, "/private/nostore": 2000,
	})
	boot := startBootstrap(t, o.URL, 2)
	a := o.URL + "/static/a.bin"

	// The first fetch of an object comes from the origin; the peer founds
	// D-ring and becomes its locality's directory.
	badStore := &peertest.CorruptStore{Store: peer.NewMemStore()}
	p1 := startPeer(t, boot, o.URL, peerOpts{loc: 0, store: badStore})
	if r := get(t, p1, a); r.Source != core.SourceOrigin || !r.Verified || !bytes.Equal(r.Body, o.Body("/static/a.bin")) {
		t.Fatalf("first fetch: %s", describe(r))
	}
	peertest.Eventually(t, "p1 directory of locality 0", 10*time.Second, func() bool { return p1.Role(o.URL) == core.RoleDirectory })
	peertest.WaitDirectory(t, boot, o.URL, 0, p1.ID())

	// A second peer of the same locality gets it from the first over
	// WebRTC.
	dir2 := t.TempDir()
	store2, err := peer.OpenDiskStore(dir2)
	if err != nil {
		t.Fatal(err)
	}
	_, key2, _ := ed25519.GenerateKey(rand.Reader)
	p2 := startPeer(t, boot, o.URL, peerOpts{loc: 0, store: store2, key: key2})
	if r := get(t, p2, a); r.Source != core.SourcePeer || r.Peer != p1.ID() || !r.Verified || !bytes.Equal(r.Body, o.Body("/static/a.bin")) {
		t.Fatalf("second peer, same locality: %s", describe(r))
	}
	if n := o.Hits("/static/a.bin"); n != 1 {
		t.Fatalf("origin served a.bin %d times, want 1", n)
	}
	peertest.Eventually(t, "p2 content peer of locality 0", 10*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })
	// A 2 MiB object crosses in chunks.
	get(t, p2, o.URL+"/static/c.bin")
	peertest.WaitIndexed(t, p1, o.URL, o.URL+"/static/c.bin")
	if r := get(t, p1, o.URL+"/static/c.bin"); r.Source != core.SourcePeer || !bytes.Equal(r.Body, o.Body("/static/c.bin")) {
		t.Fatalf("2 MiB object: %s", describe(r))
	}

	// A peer of the other locality: its first query finds its locality's
	// position vacant (origin), and it becomes that locality's directory.
	// Once the two directories exchanged summaries, it gets a.bin from
	// locality 0 through them.
	p3 := startPeer(t, boot, o.URL, peerOpts{loc: 1})
	get(t, p3, o.URL+"/static/b.bin")
	peertest.Eventually(t, "p3 directory of locality 1", 10*time.Second, func() bool { return p3.Role(o.URL) == core.RoleDirectory })
	peertest.WaitDirectory(t, boot, o.URL, 1, p3.ID())
	peertest.Eventually(t, "p3 holds locality 0's summary", 10*time.Second, func() bool {
		var n int
		p3.Node(func(nd *core.Node) { n = len(nd.RemoteCandidates(ids.SiteOf(o.URL), ids.ObjectOf(a))) })
		return n > 0
	})
	if r := get(t, p3, a); r.Source != core.SourcePeer || r.Locality != 0 {
		var st core.Stats
		p3.Node(func(n *core.Node) { st = n.Stats() })
		t.Fatalf("peer of locality 1: %s; origin reasons %v", describe(r), st.Origin)
	}

	// Private responses are answered from the origin and never served to
	// a peer.
	for _, path := range []string{"/private/cookie", "/private/nostore"} {
		if r := get(t, p1, o.URL+path); r.Source != core.SourceOrigin || r.Shared {
			t.Fatalf("%s: %s, shared %v", path, describe(r), r.Shared)
		}
		if r := get(t, p2, o.URL+path); r.Source != core.SourceOrigin {
			t.Fatalf("%s, second peer: %s", path, describe(r))
		}
		if n := o.Hits(path); n != 2 {
			t.Fatalf("%s: origin hits %d, want 2 (one per peer)", path, n)
		}
	}

	// A restarted peer rejoins its petal from its stored view, without
	// asking for entry points.
	// The reconnection rule needs a stored view to rejoin from.
	peertest.Eventually(t, "p2 has petal contacts in its view", 10*time.Second, func() bool {
		var n int
		p2.Node(func(nd *core.Node) { n = nd.ViewLen(ids.SiteOf(o.URL)) })
		return n > 0
	})
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	if store2, err = peer.OpenDiskStore(dir2); err != nil {
		t.Fatal(err)
	}
	p2 = startPeer(t, boot, o.URL, peerOpts{loc: 0, store: store2, key: key2})
	if got := p2.Role(o.URL); got != core.RoleContent {
		t.Fatalf("restarted peer's role %v, want content", got)
	}
	if r := get(t, p2, a); r.Source != core.SourceLocal {
		t.Fatalf("restarted peer's stored object: %s", describe(r))
	}
	get(t, p1, o.URL+"/static/b.bin")
	if r := get(t, p2, o.URL+"/static/b.bin"); r.Source != core.SourceOrigin && r.Source != core.SourcePeer {
		t.Fatalf("restarted peer: %s", describe(r))
	}
	if n := p2.Stats().EntryRequests; n != 0 {
		t.Fatalf("the restarted peer asked for entry points %d times", n)
	}

	// A malicious peer serves altered bytes: detected, dropped, the peer
	// avoided, and the request completes from the origin.
	get(t, p1, o.URL+"/dyn/d.bin")
	badStore.SetCorrupt(true)
	r := get(t, p2, o.URL+"/dyn/d.bin")
	if r.Source == core.SourcePeer && r.Peer == p1.ID() || !bytes.Equal(r.Body, o.Body("/dyn/d.bin")) {
		t.Fatalf("after altered bytes: %s", describe(r))
	}
	if n := p2.Stats().VerifyFailures; n != 1 {
		t.Fatalf("verification failures at p2: %d, want 1", n)
	}
	badStore.SetCorrupt(false)

	// Killing the directory peer: a content peer replaces it (tryJoin) and
	// queries keep being answered.
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	peertest.Eventually(t, "p2 takes over locality 0's directory", 20*time.Second, func() bool { return p2.Role(o.URL) == core.RoleDirectory })
	peertest.WaitDirectory(t, boot, o.URL, 0, p2.ID())
	p4 := startPeer(t, boot, o.URL, peerOpts{loc: 0})
	if r := get(t, p4, a); r.Source != core.SourcePeer || r.Peer != p2.ID() {
		t.Fatalf("after the directory left: %s", describe(r))
	}
	get(t, p4, o.URL+"/dyn/e.bin")
	peertest.WaitIndexed(t, p2, o.URL, o.URL+"/dyn/e.bin")
	if r := get(t, p2, o.URL+"/dyn/e.bin"); r.Source != core.SourcePeer || r.Peer != p4.ID() {
		t.Fatalf("new directory's petal: %s", describe(r))
	}
}

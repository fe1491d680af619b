package peer_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestPeerHost: the peer host over an in-memory network with a real
// (in-process) bootstrap service and a signed origin: origin first, then a
// petal neighbour; private responses never shared; a corrupted object from
// a peer is dropped and the query completes from the origin.
func TestPeerHost(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 200 << 10, "/dyn/x.bin": 50 << 10, "/private/cookie": 1000, "/private/nostore": 1000})
	boot := startBootstrap(t, 2, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	// A client joins with its first query (the seed's submitQuery).
	r := get(t, p1, o.URL+"/static/a.bin")
	if r.Source != core.SourceOrigin || !r.Verified || !r.Shared || !bytes.Equal(r.Body, o.Body("/static/a.bin")) {
		t.Fatalf("first fetch: %s verified %v shared %v", describe(r), r.Verified, r.Shared)
	}
	waitFounder(t, boot, o, p1)
	if r = get(t, p1, o.URL+"/static/a.bin"); r.Source != core.SourceLocal {
		t.Fatalf("second fetch by the same peer: %s", describe(r))
	}

	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	r = get(t, p2, o.URL+"/static/a.bin")
	if r.Source != core.SourcePeer || r.Peer != p1.ID() || !r.Verified || !bytes.Equal(r.Body, o.Body("/static/a.bin")) {
		t.Fatalf("petal fetch: %s", describe(r))
	}
	if n := o.Hits("/static/a.bin"); n != 1 {
		t.Fatalf("origin served a.bin %d times, want 1", n)
	}
	peertest.Eventually(t, "p2 joins p1's petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })

	// Private responses: answered, never stored or served.
	for _, path := range []string{"/private/cookie", "/private/nostore"} {
		r = get(t, p1, o.URL+path)
		if r.Source != core.SourceOrigin || r.Shared {
			t.Fatalf("%s: %s shared %v", path, describe(r), r.Shared)
		}
		r = get(t, p2, o.URL+path)
		if r.Source != core.SourceOrigin || o.Hits(path) != 2 {
			t.Fatalf("%s: second peer got it from %s; origin hits %d", path, r.Source, o.Hits(path))
		}
	}
	if s := p1.Stats(); s.PrivateResponses != 2 || s.Served != 1 {
		t.Fatalf("p1 stats %+v", s)
	}

	// A peer that corrupts what it sends: dropped, avoided, origin.
	if r = get(t, p1, o.URL+"/dyn/x.bin"); r.Source != core.SourceOrigin || !r.Shared {
		t.Fatalf("dynamic object: %s shared %v", describe(r), r.Shared)
	}
	hub.mu.Lock()
	hub.corrupt[p1.ID()] = true
	hub.mu.Unlock()
	r = get(t, p2, o.URL+"/dyn/x.bin")
	if r.Source != core.SourceOrigin || !bytes.Equal(r.Body, o.Body("/dyn/x.bin")) {
		t.Fatalf("after a corrupt transfer: %s", describe(r))
	}
	if s := p2.Stats(); s.VerifyFailures != 1 {
		t.Fatalf("p2 verification failures %d, want 1", s.VerifyFailures)
	}

	// A message that does not decode is counted and dropped.
	hub.get(p1.ID()).h.Message(p2.ID(), []byte{0xff, 0xff})
	if s := p1.Stats(); s.BadFrames != 1 {
		t.Fatalf("p1 bad frames %d, want 1", s.BadFrames)
	}
}

package peer_test

import (
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestJoinProbe: a peer with nothing to ask joins its site's petal through
// a probe query that no peer holds and the origin never sees.
func TestJoinProbe(t *testing.T) {
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 10 << 10})
	boot := startBootstrap(t, 1, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if err := p1.Join(t.Context(), o.URL); err != nil {
		t.Fatal(err)
	}
	waitFounder(t, boot, o, p1)
	p2 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	if err := p2.Join(t.Context(), o.URL); err != nil {
		t.Fatal(err)
	}
	peertest.Eventually(t, "p2 joins p1's petal", 5*time.Second, func() bool { return p2.Role(o.URL) == core.RoleContent })
	if n := o.Hits("/.well-known/flower-cdn-join"); n != 0 {
		t.Fatalf("the origin saw the join probe %d times", n)
	}
	if s := p2.Stats(); s.FromOrigin != 0 || s.FromPeer != 0 {
		t.Fatalf("p2 stats after joining: %+v", s)
	}
}

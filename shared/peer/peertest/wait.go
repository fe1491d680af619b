package peertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
)

// Eventually polls cond until it holds, failing the test after d.
func Eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitDirectory waits until the bootstrap service at boot (http://host:port)
// lists peer id as a directory of origin in locality loc: a peer that
// starts before the service knows the petal's directory founds D-ring
// again.
func WaitDirectory(t testing.TB, boot, origin string, loc int, id ids.PeerID) {
	t.Helper()
	Eventually(t, fmt.Sprintf("the bootstrap lists %s as directory of locality %d", id.Short(), loc), 10*time.Second, func() bool {
		e, err := client.FetchEntries(context.Background(), nil, boot, origin, loc)
		return err == nil && slices.ContainsFunc(e.Local, func(m ids.Member) bool { return m.ID == id })
	})
}

// Get fetches url through p, failing the test on error.
func Get(t testing.TB, p *peer.Peer, url string) *peer.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := p.Get(ctx, url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	return r
}

// Describe says where a result came from, for failure messages.
func Describe(r *peer.Result) string {
	return fmt.Sprintf("%s from %s (peer %s, locality %d, %d bytes, verified %v)", r.URL, r.Source, r.Peer.Short(), r.Locality, len(r.Body), r.Verified)
}

// WaitIndexed waits until p's directory position for origin indexes a
// content peer holding url (pushes reach the directory a moment after the
// holder got the object).
func WaitIndexed(t testing.TB, p *peer.Peer, origin, url string) {
	t.Helper()
	Eventually(t, fmt.Sprintf("%s's index lists a holder of %s", p.ID().Short(), url), 10*time.Second, func() bool {
		var ok bool
		p.Node(func(n *core.Node) { ok = n.IndexHolds(ids.SiteOf(origin), ids.ObjectOf(url)) })
		return ok
	})
}

// FastCore is the protocol configuration of test peers: periods short
// enough for a test, and timeouts that do not fire on peers slowed by a
// busy machine.
func FastCore() core.Config {
	cfg := core.DefaultConfig()
	cfg.GossipPeriod = 500 * time.Millisecond
	cfg.KeepalivePeriod = 500 * time.Millisecond
	cfg.SummaryPeriod = 300 * time.Millisecond
	cfg.SummaryMinInterval = 100 * time.Millisecond
	cfg.StabilizePeriod = 300 * time.Millisecond
	cfg.RingCheckPeriod = time.Second
	cfg.JoinJitter = 10 * time.Millisecond
	// Loopback RTTs are tiny, but these tests share two cores with the
	// whole suite (with -race): RTT-derived timeouts would fire on busy
	// peers and empty small views.
	cfg.MinTimeout = cfg.RequestTimeout
	return cfg
}

package peer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap"
	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/tests/bootstraptest"
)

// startReportingBootstrap runs a bootstrap service that takes a report
// per connection every 20 ms.
func startReportingBootstrap(t *testing.T, origin string) string {
	t.Helper()
	cfg := bootstrap.DefaultConfig()
	cfg.Localities = 2
	cfg.AllowedOrigins = []string{origin}
	cfg.ReportInterval = 20 * time.Millisecond
	return startBootstrapCfg(t, cfg)
}

// metric sums the samples of name on boot's /metrics whose labels contain
// sel.
func metric(t *testing.T, boot, name, sel string) float64 {
	t.Helper()
	return bootstraptest.Metric(t, boot, name, sel)
}

// Real peers report their counters to the bootstrap service they use:
// periodically, and a last time as they close; /metrics shows the sums and
// the offload ratio the origin's own count implies. A peer of a site that
// turned metrics off reports nothing.
func TestPeersReportCounters(t *testing.T) {
	const path = "/static/a.bin"
	const size = 100 << 10
	o := peertest.NewOrigin(t, map[string]int{path: size, "/static/b.bin": 30 << 10})
	boot := startReportingBootstrap(t, o.URL)
	hub := newHub()
	fast := func(c *peer.Config) { c.ReportPeriod = 50 * time.Millisecond }
	p1 := startPeerWith(t, boot, o, hub.factory(), 0, nil, nil, fast)
	get(t, p1, o.URL+path) // origin
	waitFounder(t, boot, o, p1)
	get(t, p1, o.URL+path) // own cache
	p2 := startPeerWith(t, boot, o, hub.factory(), 0, nil, nil, func(c *peer.Config) { c.ReportPeriod = time.Hour })
	if r := get(t, p2, o.URL+path); r.Source != core.SourcePeer {
		t.Fatalf("p2: %s", describe(r))
	}
	c2, err := p2.SiteCounters(o.URL)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Requests[opmetrics.SourcePeer] != 1 || c2.Bytes[opmetrics.SourcePeer] != size || c2.PeerTTFB.Count() != 1 {
		t.Fatalf("p2's own counters %+v", c2)
	}
	quiet := startPeerWith(t, boot, o, hub.factory(), 0, nil, nil, func(c *peer.Config) { c.NoReport, c.ReportPeriod = true, 10*time.Millisecond })
	get(t, quiet, o.URL+"/static/b.bin") // from the origin, never reported
	if err := quiet.Close(); err != nil {
		t.Fatal(err)
	}
	// p2 reports once an hour: what it counted arrives with its last report.
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf("site=%q", o.URL)
	peertest.Eventually(t, "both peers' counts on /metrics", 10*time.Second, func() bool {
		return metric(t, boot, "flower_site_bytes_total", site+`,source="peer"`) == size &&
			metric(t, boot, "flower_site_requests_total", site+`,source="cache"`) == 1 &&
			metric(t, boot, "flower_site_ttfb_seconds_count", site+`,source="peer"`) == 1 &&
			metric(t, boot, "flower_site_ttfb_seconds_count", site+`,source="origin"`) >= 1
	})
	originBytes := metric(t, boot, "flower_site_bytes_total", site+`,source="origin"`)
	// The origin served a.bin once and b.bin once, to the quiet peer,
	// whose site turned reports off.
	if o.Hits(path) != 1 || o.Hits("/static/b.bin") != 1 || originBytes != size {
		t.Fatalf("origin bytes reported %v, want %d (origin hits a %d, b %d)", originBytes, size, o.Hits(path), o.Hits("/static/b.bin"))
	}
	want := float64(size) / float64(size+size)
	if r := metric(t, boot, "flower_site_offload_ratio", site); r != want {
		t.Fatalf("offload ratio %v, want %v", r, want)
	}
}

// A content peer restarted from its stored state (a browser's next page)
// rejoins its petal as content without any role change, and is still
// registered, so the service counts its reports; with Counters, ReportBase
// and Reported it reports what the counters source counted across the
// restart, once.
func TestRestartedContentPeerReports(t *testing.T) {
	const size = 40 << 10
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": size, "/static/b.bin": size})
	boot := startReportingBootstrap(t, o.URL)
	hub := newHub()
	p1 := startPeer(t, boot, o, hub.factory(), 0, nil, nil)
	get(t, p1, o.URL+"/static/a.bin")
	get(t, p1, o.URL+"/static/b.bin")
	waitFounder(t, boot, o, p1)

	// An outside counters source (the browser's service worker), and what
	// was reported of it, both surviving the restart.
	var mu sync.Mutex
	var source, reported opmetrics.SiteCounters
	tune := func(c *peer.Config) {
		c.ReportPeriod = 20 * time.Millisecond
		c.Counters = func(string) opmetrics.SiteCounters { mu.Lock(); defer mu.Unlock(); return source }
		c.ReportBase = func(string) opmetrics.SiteCounters { mu.Lock(); defer mu.Unlock(); return reported }
		c.Reported = func(_ string, v opmetrics.SiteCounters) { mu.Lock(); defer mu.Unlock(); reported = v }
	}
	count := func(n uint64) {
		mu.Lock()
		defer mu.Unlock()
		source.Requests[opmetrics.SourcePeer] += 1
		source.Bytes[opmetrics.SourcePeer] += n
	}
	store := peer.NewMemStore()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p2 := startPeerWith(t, boot, o, hub.factory(), 0, store, key, tune)
	get(t, p2, o.URL+"/static/a.bin")
	count(size)
	peertest.Eventually(t, "p2 in the petal with contacts", 10*time.Second, func() bool {
		var n int
		p2.Node(func(nd *core.Node) { n = nd.ViewLen(ids.SiteOf(o.URL)) })
		return p2.Role(o.URL) == core.RoleContent && n > 0
	})
	site := fmt.Sprintf("site=%q", o.URL)
	peertest.Eventually(t, "p2's first count reported", 10*time.Second, func() bool {
		return metric(t, boot, "flower_site_bytes_total", site+`,source="peer"`) == size
	})
	// Counted after the last report and before the restart: the next run
	// reports it.
	count(size)
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	// The service has read the old connection to its end (its last report
	// came before the close) before the same id connects again, which
	// would replace the old connection and drop what it had not read.
	peertest.Eventually(t, "the old connection gone", 10*time.Second, func() bool {
		return metric(t, boot, "flower_bootstrap_peers", "") == 1
	})
	p2 = startPeerWith(t, boot, o, hub.factory(), 0, store, key, func(c *peer.Config) { tune(c); c.ReportPeriod = 10 * time.Millisecond })
	if got := p2.Role(o.URL); got != core.RoleContent {
		t.Fatalf("restored role %v", got)
	}
	get(t, p2, o.URL+"/static/b.bin")
	count(size)
	peertest.Eventually(t, "every count reported once", 10*time.Second, func() bool {
		return metric(t, boot, "flower_site_bytes_total", site+`,source="peer"`) == 3*size &&
			metric(t, boot, "flower_site_requests_total", site+`,source="peer"`) == 3
	})
	if v := metric(t, boot, "flower_bootstrap_reports_total", `result="unregistered"`); v != 0 {
		t.Fatalf("%v reports refused as unregistered", v)
	}
}

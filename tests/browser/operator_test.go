package browser_test

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/bootstraptest"
	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// bootMetric sums the samples of name on the bootstrap's /metrics whose
// labels contain sel.
func bootMetric(t *testing.T, d *demo, name, sel string) float64 {
	t.Helper()
	return bootstraptest.Metric(t, d.boot.URL, name, sel)
}

// TestOperatorMetrics: visitors A then B read the demo; their page-side
// peers report the service worker's counters to the bootstrap service
// (every 500 ms here: the flower-report-ms setting, and a bootstrap that
// takes a report every 100 ms), whose /metrics then shows an offload ratio
// within 3 percentage points of what the origin's own log implies: peer
// bytes / (peer bytes + the whitelisted bytes the origin served them).
func TestOperatorMetrics(t *testing.T) {
	t.Setenv("FLOWER_REPORT_INTERVAL", "100ms") // read by the bootstrap binary
	const token = "operator-token-for-the-test"
	t.Setenv("FLOWER_OPERATOR_TOKEN", token)
	d := startDemo(t, 1)
	site := fmt.Sprintf("site=%q", d.url)
	read := func(name string) *browsertest.Visitor {
		v := browsertest.NewVisitor(t, name, browsertest.Options{})
		v.Navigate(d.url + demoPages[0])
		v.MustEval(`localStorage.setItem("flower-report-ms", "500"), true`, nil)
		for _, p := range demoPages {
			readPage(t, d, v, p)
		}
		return v
	}
	a := read("a")
	b := read("b")

	// The reports catch up with the visitors' own counters (the worker
	// saves them each second, the peers report every 500 ms).
	var as, bs stats
	var peerBytes, originBytes float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.MustEval(`flower.stats()`, &as)
		b.MustEval(`flower.stats()`, &bs)
		peerBytes = bootMetric(t, d, "flower_site_bytes_total", site+`,source="peer"`)
		originBytes = bootMetric(t, d, "flower_site_bytes_total", site+`,source="origin"`)
		if peerBytes == float64(as.Bytes.Peers+bs.Bytes.Peers) && originBytes == float64(as.Bytes.Origin+bs.Bytes.Origin) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported peer/origin bytes %v/%v, the visitors counted %d/%d (a: %s; b: %s)",
				peerBytes, originBytes, as.Bytes.Peers+bs.Bytes.Peers, as.Bytes.Origin+bs.Bytes.Origin, as.brief(), bs.brief())
		}
		time.Sleep(200 * time.Millisecond) // polling interval, not an assertion
	}
	var originLog int64
	for _, name := range []string{"a", "b"} {
		for _, r := range d.originRequests(name) {
			if whitelisted(pathOf(r.Path)) {
				originLog += r.Bytes
			}
		}
	}
	if peerBytes == 0 || originLog == 0 {
		t.Fatalf("nothing to compare: peer bytes %v, origin log %d bytes", peerBytes, originLog)
	}
	implied := peerBytes / (peerBytes + float64(originLog))
	reported := bootMetric(t, d, "flower_site_offload_ratio", site)
	t.Logf("offload: /metrics %.4f (peer %v, origin %v bytes), origin log implies %.4f (origin log %d bytes)",
		reported, peerBytes, originBytes, implied, originLog)
	if math.Abs(reported-peerBytes/(peerBytes+originBytes)) > 1e-9 {
		t.Errorf("flower_site_offload_ratio %v disagrees with the byte counters", reported)
	}
	if math.Abs(reported-implied) > 0.03 {
		t.Errorf("offload ratio on /metrics %.4f, the origin's log implies %.4f: more than 3 points apart", reported, implied)
	}
	if n := bootMetric(t, d, "flower_site_ttfb_seconds_count", site+`,source="peer"`); n < float64(bs.Requests.Peers) {
		t.Errorf("peer TTFB observations %v, b alone got %d answers from peers", n, bs.Requests.Peers)
	}
	if n := bootMetric(t, d, "flower_site_peers", site); n < 2 {
		t.Errorf("flower_site_peers %v, want the 2 visitors", n)
	}
	if n := bootMetric(t, d, "flower_bootstrap_reports_total", `result="accepted"`); n < 2 {
		t.Errorf("accepted reports %v", n)
	}

	// The operator's page shows the same ratio (to the tenth of a percent
	// it prints) and the two visitors online, and draws its chart.
	a.Navigate(d.boot.URL + "/dashboard?token=" + token)
	want := fmt.Sprintf("%.1f %%", 100*reported)
	a.WaitEval(`document.getElementById("offload").textContent === `+strconv.Quote(want)+` &&
		Number(document.getElementById("online").textContent) >= 2 &&
		document.querySelector("#chart canvas") !== null`, 20*time.Second)
	a.Screenshot("operator.png")
}

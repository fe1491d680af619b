package browser_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// pageTiming is what one page view took, from the page's own Navigation
// and Resource Timing entries (milliseconds from the navigation's start).
type pageTiming struct {
	LoadMs  float64   `json:"loadMs"`  // the load event's end
	MediaMs float64   `json:"mediaMs"` // the last picture or video byte
	TTFBMs  []float64 `json:"ttfbMs"`  // per picture/video: response start - fetch start
}

const timingJS = `(() => {
	const nav = performance.getEntriesByType("navigation")[0];
	const media = performance.getEntriesByType("resource").filter(e => /\/(img|video)\/[^/]+\.(jpg|webm)$/.test(e.name));
	return {
		loadMs: nav.loadEventEnd,
		mediaMs: Math.max(0, ...media.map(e => e.responseEnd)),
		ttfbMs: media.filter(e => e.responseStart > 0).map(e => e.responseStart - e.startTime),
	};
})()`

// viewPage reads one page (readPage) and returns its timing.
func viewPage(t *testing.T, d *demo, v *browsertest.Visitor, page string) pageTiming {
	t.Helper()
	readPage(t, d, v, page)
	var pt pageTiming
	v.MustEval(timingJS, &pt)
	return pt
}

// writePlain writes the demo's pages without Flower-CDN under /plain/:
// no embed script, media with a plain src.
func writePlain(t *testing.T, d *demo) {
	t.Helper()
	tag := regexp.MustCompile(`<script src="/flower/flower.js"[^>]*></script>`)
	if err := os.MkdirAll(filepath.Join(d.dir, "plain"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range demoPages {
		b, err := os.ReadFile(filepath.Join(d.dir, p))
		if err != nil {
			t.Fatal(err)
		}
		s := tag.ReplaceAllString(string(b), "")
		s = strings.ReplaceAll(s, "data-flower-src=", "src=")
		if err := os.WriteFile(filepath.Join(d.dir, "plain", p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var readyRE = regexp.MustCompile(`worker ready in (\d+) ms`)

// workerStarts are the service worker's start times its console reported.
func workerStarts(v *browsertest.Visitor) []float64 {
	var out []float64
	for _, l := range v.Logs() {
		if m := readyRE.FindStringSubmatch(l); m != nil {
			ms, _ := strconv.ParseFloat(m[1], 64)
			out = append(out, ms)
		}
	}
	return out
}

// figures are the numbers docs/browser.md quotes.
type figures struct {
	WorkerColdMs    []float64             `json:"workerColdStartMs"`
	WorkerRestartMs []float64             `json:"workerRestartMs"`
	TTFBPeerMs      float64               `json:"ttfbPeerMedianMs"`
	TTFBOriginMs    float64               `json:"ttfbOriginViaWorkerMedianMs"`
	TTFBPlainMs     float64               `json:"ttfbOriginNoFlowerMedianMs"`
	Plain           map[string]pageTiming `json:"pagesWithoutFlower"`
	Visitors        []visitorFigures      `json:"visitors"`
}

type visitorFigures struct {
	Name       string                `json:"name"`
	PeerShare  float64               `json:"peerShare"` // of whitelisted bytes, by the origin's log
	BytesPeers int64                 `json:"bytesFromPeers"`
	BytesOrig  int64                 `json:"bytesFromOrigin"`
	Pages      map[string]pageTiming `json:"pages"`
}

// TestFigures measures, in this harness, what docs/browser.md reports: the
// service worker's cold start and restart, time to the first byte from
// peers and from the origin, page load times with and without Flower-CDN,
// and the share of bytes from peers for visitors 1 to 5 (each arriving
// while the previous one still has a page open). It checks only what must
// hold (every page loads, nothing fails verification); the numbers are
// logged, and written as JSON to $FLOWER_FIGURES when set.
func TestFigures(t *testing.T) {
	d := startDemo(t, 1)
	writePlain(t, d)
	f := figures{Plain: map[string]pageTiming{}}

	plain := browsertest.NewVisitor(t, "plain", browsertest.Options{})
	var plainTTFB []float64
	for _, p := range demoPages {
		plain.Navigate(d.url + "/plain" + p)
		plain.ScrollToBottom()
		plain.MustEval(`(() => { const v = document.querySelector("video"); if (v) { v.muted = true; v.play().catch(() => {}); } return true; })()`, nil)
		plain.WaitEval(`[...document.images].every(i => i.complete && i.naturalWidth > 0) && [...document.querySelectorAll("video")].every(x => x.readyState >= 2)`, 30*time.Second)
		var pt pageTiming
		plain.MustEval(timingJS, &pt)
		f.Plain[p] = pt
		plainTTFB = append(plainTTFB, pt.TTFBMs...)
	}
	plain.Close()
	f.TTFBPlainMs = median(plainTTFB)

	var open []*browsertest.Visitor
	var originTTFB, peerTTFB []float64
	for i := 1; i <= 5; i++ {
		name := "v" + strconv.Itoa(i)
		v := browsertest.NewVisitor(t, name, browsertest.Options{})
		vf := visitorFigures{Name: name, Pages: map[string]pageTiming{}}
		for _, p := range demoPages {
			pt := viewPage(t, d, v, p)
			vf.Pages[p] = pt
			if i == 1 {
				originTTFB = append(originTTFB, pt.TTFBMs...)
			} else {
				peerTTFB = append(peerTTFB, pt.TTFBMs...)
			}
		}
		var s stats
		v.MustEval(`flower.stats()`, &s)
		if s.VerifyFailures != 0 {
			t.Errorf("%s: %d verification failures", name, s.VerifyFailures)
		}
		var fromOrigin int64
		for _, r := range d.originRequests(name) {
			if whitelisted(strings.SplitN(r.Path, "?", 2)[0]) {
				fromOrigin += r.Bytes
			}
		}
		vf.BytesPeers, vf.BytesOrig = s.Bytes.Peers, fromOrigin
		if s.Bytes.Peers+fromOrigin > 0 {
			vf.PeerShare = float64(s.Bytes.Peers) / float64(s.Bytes.Peers+fromOrigin)
		}
		t.Logf("%s: %.1f%% of whitelisted bytes from peers (%d from peers, %d from the origin); %s", name, 100*vf.PeerShare, s.Bytes.Peers, fromOrigin, s.brief())
		f.Visitors = append(f.Visitors, vf)
		if i == 1 {
			f.WorkerColdMs = workerStarts(v)
		}
		if i == 2 {
			// Restart after Chromium stopped the worker.
			before := len(workerStarts(v))
			v.StopWorkers()
			fetchSource(t, v, "/img/daisy-meadow.jpg")
			v.WaitLogCount("worker ready in", before+1, 30*time.Second)
			f.WorkerRestartMs = workerStarts(v)[before:]
		}
		open = append(open, v)
		if len(open) > 2 {
			open[0].Close()
			open = open[1:]
		}
	}
	f.TTFBOriginMs, f.TTFBPeerMs = median(originTTFB), median(peerTTFB)
	b, _ := json.MarshalIndent(f, "", "  ")
	t.Logf("figures:\n%s", b)
	if out := os.Getenv("FLOWER_FIGURES"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

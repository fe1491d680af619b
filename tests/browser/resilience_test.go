package browser_test

import (
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// The resilience tests: pages keep loading correctly (every picture
// decoded, the video playable, the text there) when the service worker is
// stopped in the middle of a visit, when the visitor serving a transfer
// leaves in its middle, and when the bootstrap service is down.

// TestResilienceWorkerRestart: visitor B's service worker is stopped while
// the gallery's pictures are loading (Chromium stops idle workers; a
// restarted worker has lost its Go state and its map of page-side peers).
// The pictures still all load, the text is there, and the restarted worker
// still answers. The test logs the worker's cold start and its restart as
// the visitor sees them: the time of a fetch through a stopped worker
// against the same fetch through a running one.
func TestResilienceWorkerRestart(t *testing.T) {
	d := startDemo(t, 1)
	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	for _, p := range []string{"/index.html", "/gallery.html", "/garden.html"} {
		readPage(t, d, a, p)
	}

	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	readPage(t, d, b, "/index.html")
	if ready := workerReady(b); len(ready) > 0 {
		t.Logf("b: service worker cold start: ready %d ms after its script started", ready[0])
	}

	// The gallery's pictures wait for the page-side peer (data-flower-src):
	// right after the load event they are not loaded yet.
	b.Navigate(d.url + "/gallery.html")
	var pending int
	b.MustEval(`document.querySelectorAll("[data-flower-src]").length`, &pending)
	b.StopWorkers()
	t.Logf("b: stopped the service worker with %d of the gallery's media not yet requested", pending)
	b.WaitEval(`window.flower && (flower.state === "running" || flower.state === "failed")`, 30*time.Second)
	b.WaitEval(`document.querySelectorAll("[data-flower-src]").length === 0`, 15*time.Second)
	b.ScrollToBottom()
	// And once more while the pictures are on their way.
	b.StopWorkers()
	pageIntact(t, b, 8)

	// The restart, from the visitor's side.
	const probe = "/css/site.css"
	cold := timedFetch(t, b, probe, true)
	warm := timedFetch(t, b, probe, false)
	t.Logf("b: a fetch of %s through a stopped service worker took %.1f ms (restart included), through the running worker %.1f ms", probe, cold, warm)
	t.Logf("b: the worker's own start times (ms after its script started), in order: %v", workerReady(b))

	// The restarted worker still answers the shared URLs (its
	// Flower-Source header), and the bytes are right.
	const fresh = "/img/water-lily.jpg"
	got := pageFetch(t, b, fresh)
	t.Logf("b: %s after the restarts: %s", fresh, got)
	if got.Source == "" {
		t.Errorf("b: %s has no Flower-Source header: the restarted worker did not answer it", fresh)
	}
	if want := fileSHA256(t, d, fresh); got.SHA256 != want {
		t.Errorf("b: %s has SHA-256 %s, the origin's file %s", fresh, got.SHA256, want)
	}
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	t.Logf("b: %s", bs.brief())
}

// TestResilienceVisitorLeaves: visitor A, the only peer holding the video,
// closes its browser while it is sending the video to visitor B. B's page
// still plays the video, with the origin's exact bytes, from another
// source: with no other peer holding it, that source is the origin, and the
// test checks it (B's request in the origin's log).
//
// The demo's video is 1.9 MB, which crosses between two browsers on one
// machine in a fraction of a second. So that the test can act in the middle
// of the transfer without racing it, A's uplink is made slow: a wrapper of
// RTCDataChannel.send in A's page (test-side fault injection; the product's
// code is untouched) lets A's first small message on each data channel out
// at once and then paces what follows at one message per 100 ms, in order,
// about 640 KB/s for 64 KiB chunks. B's first byte is not delayed (the
// transfer's meta is small and goes first), so B's service worker commits
// to the transfer as it would on a fast link.
func TestResilienceVisitorLeaves(t *testing.T) {
	d := startDemo(t, 1)
	const video = "/video/garden-tour.webm"
	size := mediaOf(t, d)[video]
	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	readPage(t, d, a, "/index.html")
	readPage(t, d, a, "/video.html")
	a.MustEval(slowUplinkJS, nil)

	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	readPage(t, d, b, "/index.html")
	b.Navigate(d.url + "/video.html")
	b.WaitEval(`window.flower && flower.state === "running"`, 30*time.Second)
	b.WaitEval(`document.querySelectorAll("[data-flower-src]").length === 0`, 15*time.Second)
	b.MustEval(`(() => { const v = document.querySelector("video"); v.muted = true; v.play().catch(() => {}); return true; })()`, nil)
	// On this page B's other shared URLs are in its cache: the first object
	// bytes from a peer are the video's.
	b.WaitEval(`flower.stats().then(s => s.peerStats && s.peerStats.BytesIn > 0)`, 30*time.Second)
	var received float64
	b.MustEval(`flower.stats().then(s => s.peerStats.BytesIn)`, &received)
	var paced struct{ Queued, Sent int }
	a.MustEval(`({queued: window.__flowerTestPaced.queued, sent: window.__flowerTestPaced.sent})`, &paced)
	t.Logf("b has %.0f of the video's %d bytes from a; a has sent %d of %d paced messages; a leaves now", received, size, paced.Sent, paced.Queued)
	if int64(received) >= size {
		t.Fatalf("b already has all %d bytes: a did not leave in the middle of the transfer", size)
	}
	left := time.Now()
	a.Close()

	b.WaitEval(`[...document.querySelectorAll("video")].every(x => x.readyState >= 2)`, 60*time.Second)
	t.Logf("b: the video has data %v after a left", time.Since(left).Round(time.Millisecond))
	pageIntact(t, b, 0)
	got := pageFetch(t, b, video)
	t.Logf("b: %s: %s", video, got)
	if want := fileSHA256(t, d, video); got.SHA256 != want {
		t.Errorf("b: the video has SHA-256 %s, the origin's file %s", got.SHA256, want)
	}
	var ps struct {
		PeerStats struct{ TransferFailures, FromPeer, BytesIn int64 } `json:"peerStats"`
	}
	b.MustEval(`flower.stats()`, &ps)
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	t.Logf("b: %s; transfer failures %d", bs.brief(), ps.PeerStats.TransferFailures)
	if ps.PeerStats.TransferFailures == 0 {
		t.Errorf("b's page-side peer saw no broken transfer: a's leaving did not cut the video's transfer")
	}
	// The other source is the origin: b asked it for the video.
	if !slices.Contains(paths(d.originRequests("b")), video) {
		t.Errorf("b: the origin saw no request for %s; b's requests: %v", video, paths(d.originRequests("b")))
	}
}

// TestResilienceBootstrapDown: with the bootstrap service down, a new
// visitor's pages load from the origin through its service worker; the
// page-side peer cannot start (flower.state "failed") or is still trying
// ("starting"); the page does not care.
func TestResilienceBootstrapDown(t *testing.T) {
	d := startDemo(t, 1)
	d.boot.Stop()
	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	for _, page := range []string{"/index.html", "/gallery.html", "/video.html"} {
		b.Navigate(d.url + page)
		// Without a running peer the media load after data-defer-ms (4 s).
		b.WaitEval(`document.querySelectorAll("[data-flower-src]").length === 0`, 30*time.Second)
		b.ScrollToBottom()
		b.MustEval(`(() => { const v = document.querySelector("video"); if (v) { v.muted = true; v.play().catch(() => {}); } return true; })()`, nil)
		pageIntact(t, b, map[string]int{"/gallery.html": 8}[page])
		var st struct{ State, Error string }
		b.MustEval(`({state: flower.state, error: flower.error})`, &st)
		t.Logf("b: %s loaded; flower.state %q (%s)", page, st.State, st.Error)
		if st.State != "failed" && st.State != "starting" {
			t.Errorf("b: flower.state %q with the bootstrap service down, want failed or starting (retrying)", st.State)
		}
	}
	// Everything came from the origin.
	bPaths := paths(d.originRequests("b"))
	for p := range mediaOf(t, d) {
		if p == "/video/garden-tour.webm" || slices.Contains([]string{"/img/daisy-meadow.jpg", "/img/summer-border.jpg"}, p) {
			if !slices.Contains(bPaths, p) {
				t.Errorf("b: the origin saw no request for %s", p)
			}
		}
	}
	if got := pageFetch(t, b, "/img/summer-border.jpg"); got.SHA256 != fileSHA256(t, d, "/img/summer-border.jpg") {
		t.Errorf("b: /img/summer-border.jpg has the wrong bytes (%s)", got)
	}
}

// pageIntact checks that the visitor's page is whole: every picture
// complete and decoded (at least minPictures content pictures), every video
// with data, and the page's heading and text there.
func pageIntact(t *testing.T, v *browsertest.Visitor, minPictures int) {
	t.Helper()
	v.WaitEval(`[...document.images].every(i => i.complete && i.naturalWidth > 0) &&
		[...document.querySelectorAll("video")].every(x => x.readyState >= 2)`, 60*time.Second)
	var page struct {
		Pictures, Decoded, Text int
		Title                   string
	}
	v.MustEval(`(() => {
		const pics = [...document.images].filter(i => i.src.includes("/img/") && !i.src.endsWith(".svg"));
		return {pictures: pics.length, decoded: pics.filter(i => i.naturalWidth > 0).length,
			text: document.body.innerText.length, title: (document.querySelector("h1") || {}).textContent || ""};
	})()`, &page)
	t.Logf("%s: %q: %d of %d pictures decoded, %d characters of text", v.Name, page.Title, page.Decoded, page.Pictures, page.Text)
	if page.Pictures < minPictures || page.Decoded != page.Pictures || page.Title == "" || page.Text < 200 {
		t.Errorf("%s: the page is not whole: %+v, want at least %d decoded pictures, a heading and text", v.Name, page, minPictures)
	}
}

// timedFetch fetches path from the page and returns how long it took in
// milliseconds; stopFirst stops the service workers just before.
func timedFetch(t *testing.T, v *browsertest.Visitor, path string, stopFirst bool) float64 {
	t.Helper()
	if stopFirst {
		v.StopWorkers()
	}
	var ms float64
	v.MustEval(`(async () => { const t0 = performance.now(); const r = await fetch(`+"`"+path+"`"+`); await r.arrayBuffer();
		return performance.now() - t0; })()`, &ms)
	return ms
}

var workerReadyRE = regexp.MustCompile(`\[flower\] worker ready in (\d+) ms`)

// workerReady lists the start times the visitor's service worker logged
// ("[flower] worker ready in N ms", N from the worker script's start), in
// order: the first is the cold start, the others restarts.
func workerReady(v *browsertest.Visitor) []int {
	var out []int
	for _, l := range v.Logs() {
		if m := workerReadyRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// slowUplinkJS paces the page's data channel sends (see
// TestResilienceVisitorLeaves): on each channel, sends go out at once until
// the first one of 16 KiB or more; from then on every send on that channel
// is queued and one leaves every 100 ms, in order.
const slowUplinkJS = `(() => {
	const send = RTCDataChannel.prototype.send;
	const queues = new WeakMap();
	const paced = window.__flowerTestPaced = {queued: 0, sent: 0};
	RTCDataChannel.prototype.send = function (data) {
		let q = queues.get(this);
		if (!q && !(data && data.byteLength >= 16384)) return send.call(this, data);
		if (!q) {
			q = [];
			queues.set(this, q);
			const ch = this;
			const timer = setInterval(() => {
				if (ch.readyState !== "open") { clearInterval(timer); return; }
				const next = q.shift();
				if (next === undefined) return;
				send.call(ch, next);
				paced.sent++;
			}, 100);
		}
		q.push(data);
		paced.queued++;
	};
	return true;
})()`

package browser_test

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// picture is one of the demo's pictures: URL path and size in the built site.
type picture struct {
	path string
	size int64
}

// demoPictures lists the demo's raster pictures (the SVG logo is not on
// the share list's media), by path.
func demoPictures(t *testing.T, d *demo) []picture {
	t.Helper()
	var out []picture
	for p, n := range mediaOf(t, d) {
		if strings.HasPrefix(p, "/img/") {
			out = append(out, picture{p, n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	if len(out) < 6 {
		t.Fatalf("the demo has %d pictures, want at least 6", len(out))
	}
	return out
}

// openDashboard opens the visitor dashboard as the visitor's page and waits
// until its peer runs there, the service worker controls the page, and the
// dashboard shows figures.
func openDashboard(t *testing.T, d *demo, v *browsertest.Visitor) {
	t.Helper()
	v.Navigate(d.url + "/flower/dashboard.html")
	v.WaitEval(`window.flower && flower.state === "running" && !!navigator.serviceWorker.controller &&
		document.querySelector('[data-k="peer"]').dataset.v !== undefined`, 45*time.Second)
}

// dashboard returns what the dashboard shows: each field's raw value
// (data-v) and text, by its data-k name.
func dashboard(t *testing.T, v *browsertest.Visitor, frame string) map[string][2]string {
	t.Helper()
	doc := "document"
	if frame != "" {
		doc = `document.getElementById("` + frame + `").contentWindow.document`
	}
	var out map[string][2]string
	v.MustEval(`Object.fromEntries([...`+doc+`.querySelectorAll("[data-k]")].map(e => [e.dataset.k, [e.dataset.v || "", e.textContent]]))`, &out)
	return out
}

// storedObjects counts what the visitor's IndexedDB store holds: objects
// and bytes (the meta records' sizes).
func storedObjects(t *testing.T, v *browsertest.Visitor) (int, int64) {
	t.Helper()
	var out struct {
		N     int   `json:"n"`
		Bytes int64 `json:"bytes"`
	}
	v.MustEval(`new Promise((resolve, reject) => {
		const r = indexedDB.open("flower-cdn");
		r.onerror = () => reject(r.error);
		r.onsuccess = () => {
			const all = r.result.transaction("meta").objectStore("meta").getAll();
			all.onerror = () => reject(all.error);
			all.onsuccess = () => { r.result.close(); resolve({n: all.result.length, bytes: all.result.reduce((s, m) => s + m.size, 0)}); };
		};
	})`, &out)
	return out.N, out.Bytes
}

// TestVisitorDashboard: a visitor fetches the demo's pictures (from the
// origin, then again from its cache); the dashboard shows exactly what the
// test counted (requests and bytes by source, objects and bytes cached,
// which IndexedDB confirms, no uploads) and what flower.stats() says, with
// its chart drawn. A second dashboard in the same browser, whose page does
// not run the peer (the Web Lock), shows the same figures from the running
// page, and its controls reach the running peer; the setting persists
// across a reload.
func TestVisitorDashboard(t *testing.T) {
	d := startDemo(t, 1)
	pics := demoPictures(t, d)
	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	openDashboard(t, d, a)

	var total int64
	for _, p := range pics {
		total += p.size
		if src, n := fetchSource(t, a, p.path); src != "origin" || int64(n) != p.size {
			t.Fatalf("first fetch of %s: %q, %d bytes; want origin, %d", p.path, src, n, p.size)
		}
	}
	for _, p := range pics {
		if src, _ := fetchSource(t, a, p.path); src != "cache" {
			t.Fatalf("second fetch of %s: %q, want cache", p.path, src)
		}
	}
	// The origin's own log: one request per picture, nothing else shared.
	var logged int64
	var paths []string
	for _, r := range d.originRequests("a") {
		if path := strings.SplitN(r.Path, "?", 2)[0]; whitelisted(path) {
			logged += r.Bytes
			paths = append(paths, path)
		}
	}
	if len(paths) != len(pics) || logged != total {
		t.Fatalf("origin log: %d shared requests, %d bytes (%v); want %d, %d", len(paths), logged, paths, len(pics), total)
	}

	n := strconv.Itoa(len(pics))
	a.WaitEval(`(() => { const v = (k) => document.querySelector('[data-k="' + k + '"]').dataset.v;
		return v("requests.origin") === "`+n+`" && v("requests.cache") === "`+n+`" && v("objects") === "`+n+`"; })()`, 15*time.Second)
	figs := dashboard(t, a, "")
	var st stats
	a.MustEval(`flower.stats()`, &st)
	t.Logf("a: %s", st.brief())
	tot := strconv.FormatInt(total, 10)
	for k, want := range map[string]string{
		"requests.origin": n, "bytes.origin": tot, "requests.cache": n, "bytes.cache": tot,
		"requests.peers": "0", "bytes.peers": "0", "objects": n, "bytesCached": tot,
		"uploads": "0", "bytesUploaded": "0", "verifyFailures": "0", "locality": "0",
		"role": st.Role, "directory": st.Directory, "contacts": strconv.Itoa(st.Contacts), "uploadLimit": "0",
	} {
		if got := figs[k][0]; got != want {
			t.Errorf("dashboard %s = %q, want %q", k, got, want)
		}
	}
	if figs["requests.origin"][1] != n || !strings.HasSuffix(figs["bytes.origin"][1], " MB") || figs["uploadLimit"][1] != "none" {
		t.Errorf("dashboard text: requests %q, bytes %q, cap %q", figs["requests.origin"][1], figs["bytes.origin"][1], figs["uploadLimit"][1])
	}
	if ttfb, err := strconv.ParseFloat(figs["ttfbOriginMs"][0], 64); err != nil || ttfb <= 0 || math.Abs(ttfb-st.TTFBOriginMs) > 1e-6 {
		t.Errorf("dashboard ttfbOriginMs %q, stats %v", figs["ttfbOriginMs"][0], st.TTFBOriginMs)
	}
	if st.Objects != len(pics) || st.BytesCached != total {
		t.Errorf("flower.stats(): %d objects, %d bytes; want %d, %d", st.Objects, st.BytesCached, len(pics), total)
	}
	if on, bytes := storedObjects(t, a); on != len(pics) || bytes != total {
		t.Errorf("IndexedDB holds %d objects, %d bytes; want %d, %d", on, bytes, len(pics), total)
	}
	// The chart: uPlot drew it, with the three series in its legend.
	a.WaitEval(`!!document.querySelector("#chart .u-over") && document.querySelectorAll("#chart .u-legend .u-series").length === 4`, 5*time.Second)
	a.Screenshot("dashboard.png")
	a.MustEval(`window.scrollTo(0, document.body.scrollHeight); true`, nil)
	a.Screenshot("dashboard-bottom.png")

	// What the browser says of the device: a battery running low, then a
	// cellular connection, keep the peer out of directory roles (uploads
	// go on). Headless Chromium reports a charging battery and no
	// connection type, so the test shadows the attributes flower.js reads
	// once a second on the browser's own objects.
	for _, c := range []struct{ name, set, unset, fetch string }{
		{"batterySaver",
			`navigator.getBattery().then(b => { Object.defineProperty(b, "charging", {value: false, configurable: true});
				Object.defineProperty(b, "level", {value: 0.15, configurable: true}); return true; })`,
			`navigator.getBattery().then(b => { delete b.charging; delete b.level; return true; })`, "/css/site.css"},
		{"metered",
			`(() => { Object.defineProperty(navigator.connection, "type", {value: "cellular", configurable: true}); return true; })()`,
			`(() => { delete navigator.connection.type; return true; })()`, "/js/app.js"},
	} {
		a.MustEval(c.set, nil)
		a.WaitEval(`flower.stats().then(s => s.controls.device.`+c.name+` && s.controls.noDirectory && !s.controls.noServe && s.role === "content")`, 5*time.Second)
		a.WaitEval(`document.querySelector('[data-k="device"]').textContent.includes("directory role never")`, 5*time.Second)
		if c.name == "batterySaver" {
			a.Screenshot("dashboard-battery-low.png")
		}
		a.MustEval(c.unset, nil)
		a.WaitEval(`flower.stats().then(s => !s.controls.device.`+c.name+` && !s.controls.noDirectory)`, 5*time.Second)
		// Back to directory: a's next query (for an object it does not
		// hold) finds the position vacant.
		if src := fetchNoStore(t, a, c.fetch); src != "origin" {
			t.Fatalf("%s: %q, want origin", c.fetch, src)
		}
		a.WaitEval(`flower.stats().then(s => s.role === "directory")`, 10*time.Second)
	}

	// A second dashboard in the same browser (an iframe: same origin, same
	// Web Lock) waits for the peer and shows the running page's figures.
	a.MustEval(`(() => { const f = document.createElement("iframe"); f.id = "other"; f.src = "/flower/dashboard.html?tab=2";
		f.style = "width: 100%; height: 700px; border: 2px solid #2b4f8a"; document.body.appendChild(f); return true; })()`, nil)
	// a holds the pictures and the two objects it fetched above.
	held := strconv.Itoa(len(pics) + 2)
	a.WaitEval(`(() => { const w = document.getElementById("other").contentWindow; if (!w.flower || w.flower.state !== "waiting") return false;
		const v = (d, k) => d.querySelector('[data-k="' + k + '"]').dataset.v;
		return v(w.document, "objects") === "`+held+`" && v(document, "objects") === "`+held+`" &&
			v(w.document, "requests.origin") === v(document, "requests.origin"); })()`, 20*time.Second)
	figs = dashboard(t, a, "")
	other := dashboard(t, a, "other")
	for _, k := range []string{"requests.origin", "bytes.origin", "requests.cache", "objects", "bytesCached", "peer", "role"} {
		if other[k][0] != figs[k][0] {
			t.Errorf("the other tab's dashboard: %s = %q, the running page's %q", k, other[k][0], figs[k][0])
		}
	}
	// Its controls reach the running peer: pause, and an upload cap.
	a.MustEval(`(async () => { const w = document.getElementById("other").contentWindow;
		await w.flower.pause(true); await w.flower.setUploadLimit(50000); return true; })()`, nil)
	a.WaitEval(`flower.stats().then(s => s.controls.paused && s.controls.noServe && s.controls.noDirectory && s.controls.uploadLimit === 50000)`, 5*time.Second)
	a.WaitEval(`document.getElementById("pause").checked && document.querySelector('[data-k="uploadLimit"]').dataset.v === "50000"`, 5*time.Second)
	a.WaitEval(`(() => { const w = document.getElementById("other").contentWindow;
		return w.document.getElementById("pause").checked && w.document.querySelector('[data-k="uploadLimit"]').dataset.v === "50000"; })()`, 5*time.Second)
	a.MustEval(`document.getElementById("other").scrollIntoView(); document.getElementById("other").contentWindow.scrollTo(0, 120); true`, nil)
	a.Screenshot("dashboard-other-tab-paused.png")

	// Persisted: the next page's peer starts paused and capped.
	openDashboard(t, d, a)
	a.WaitEval(`flower.stats().then(s => s.controls.paused && s.controls.uploadLimit === 50000 && s.role !== "directory")`, 10*time.Second)
	a.MustEval(`(async () => { await flower.pause(false); await flower.setUploadLimit(0); return true; })()`, nil)
	a.WaitEval(`flower.stats().then(s => !s.controls.paused && !s.controls.noServe && s.controls.uploadLimit === 0)`, 5*time.Second)
	if on, _ := storedObjects(t, a); strconv.Itoa(on) != held {
		t.Errorf("after the reload IndexedDB holds %d objects, want %s", on, held)
	}
}

// TestVisitorControls: visitor A caches the demo's pictures; visitor B
// then fetches them. While A's browser reports Save-Data (emulated through
// the DevTools protocol) A uploads nothing and B gets its pictures from the
// origin; with Save-Data off A serves B again (the control); once A pauses
// sharing with the dashboard's checkbox, A uploads nothing more and holds
// no directory role. Then A clears its cache with the dashboard's button:
// the dashboard and IndexedDB show nothing cached, and A's next request for
// a picture is not a cache hit. Last, A leaves the site with the dashboard's
// button: its peer holds no role, its worker passes the site's requests
// through to the origin, and so it stays after a reload, until A rejoins.
func TestVisitorControls(t *testing.T) {
	d := startDemo(t, 1)
	pics := demoPictures(t, d)
	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	openDashboard(t, d, a)
	for _, p := range pics {
		if src, _ := fetchSource(t, a, p.path); src != "origin" {
			t.Fatalf("a: %s from %q, want origin", p.path, src)
		}
	}
	n := strconv.Itoa(len(pics))
	a.WaitEval(`flower.stats().then(s => s.objects === `+n+` && s.role === "directory")`, 15*time.Second)
	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	openDashboard(t, d, b)
	time.Sleep(time.Second) // the worker acknowledges b's peer

	uploads := func() (int64, int64) {
		var s stats
		a.MustEval(`flower.stats()`, &s)
		return s.Uploads, s.BytesUploaded
	}
	// What b got, as the test counts it: requests and bytes by source.
	counted := map[string]int{}
	countedBytes := map[string]int64{}
	took := map[string]time.Duration{}
	srcOf := map[string]string{}
	fetchAll := func(ps []picture) map[string]int {
		got := map[string]int{}
		for _, p := range ps {
			start := time.Now()
			src, size := fetchSource(t, b, p.path)
			took[p.path], srcOf[p.path] = time.Since(start), src
			if int64(size) != p.size {
				t.Fatalf("b: %s: %d bytes, want %d", p.path, size, p.size)
			}
			got[src]++
			counted[src]++
			countedBytes[src] += int64(size)
		}
		return got
	}

	// Save-Data: no uploads; a stays the directory (Save-Data says nothing
	// about that).
	a.SetSaveData(true)
	a.WaitEval(`flower.stats().then(s => s.controls.device.saveData && s.controls.noServe && !s.controls.noDirectory)`, 5*time.Second)
	a.WaitEval(`document.querySelector('[data-k="device"]').textContent.includes("Save-Data on")`, 5*time.Second)
	a.Screenshot("a-save-data.png")
	if got := fetchAll(pics[0:3]); got["origin"] != 3 {
		t.Errorf("b under a's Save-Data: sources %v, want 3 from the origin", got)
	}
	if up, bytes := uploads(); up != 0 || bytes != 0 {
		t.Errorf("a uploaded %d objects, %d bytes under Save-Data", up, bytes)
	}

	// The control: Save-Data off, a serves b again, within the upload cap
	// set with the dashboard's field (400 KB/s: a quarter second of burst,
	// then the cap).
	a.SetSaveData(false)
	a.WaitEval(`flower.stats().then(s => !s.controls.device.saveData && !s.controls.noServe)`, 5*time.Second)
	const capBps = 400000
	a.MustEval(`document.getElementById("cap").value = "400"; document.getElementById("cap-apply").click(); true`, nil)
	a.WaitEval(`flower.stats().then(s => s.controls.uploadLimit === 400000 &&
		document.querySelector('[data-k="uploadLimit"]').textContent === "400 kB/s")`, 5*time.Second)
	got := fetchAll(pics[3:6])
	if got["peer"] == 0 {
		t.Errorf("b with a sharing again: sources %v, want some from peers", got)
	}
	for _, p := range pics[3:6] {
		floor := time.Duration(float64(p.size-capBps/4) / capBps * float64(time.Second))
		t.Logf("b: %s, %d bytes from %s in %v (the cap's floor %v)", p.path, p.size, srcOf[p.path], took[p.path].Round(time.Millisecond), floor.Round(time.Millisecond))
		if srcOf[p.path] == "peer" && took[p.path] < floor {
			t.Errorf("b got %s (%d bytes) from a in %v, faster than a's cap allows (%v)", p.path, p.size, took[p.path], floor)
		}
	}
	a.MustEval(`document.getElementById("cap").value = ""; document.getElementById("cap-apply").click(); true`, nil)
	a.WaitEval(`flower.stats().then(s => s.controls.uploadLimit === 0)`, 5*time.Second)
	a.WaitEval(`flower.stats().then(s => s.uploads > 0)`, 10*time.Second)
	up0, bytes0 := uploads()

	// Pause with the dashboard's checkbox: no uploads, no directory role.
	a.MustEval(`document.getElementById("pause").click(); true`, nil)
	a.WaitEval(`flower.stats().then(s => s.controls.paused && s.controls.noServe && s.controls.noDirectory && s.role !== "directory")`, 10*time.Second)
	a.WaitEval(`document.getElementById("msg").textContent === "Sharing paused."`, 5*time.Second)
	if got := fetchAll(pics[6:]); got["origin"] != len(pics)-6 {
		t.Errorf("b while a is paused: sources %v, want %d from the origin", got, len(pics)-6)
	}
	if up, bytes := uploads(); up != up0 || bytes != bytes0 {
		t.Errorf("a uploaded %d objects, %d bytes while paused (before: %d, %d)", up-up0, bytes-bytes0, up0, bytes0)
	}
	// a handed its directory position over: b, its only content peer,
	// holds it now.
	b.WaitEval(`flower.stats().then(s => s.role === "directory")`, 10*time.Second)
	// b's dashboard shows what the test counted; what b got from peers is
	// what a uploaded (a is b's only peer).
	b.WaitEval(fmt.Sprintf(`(() => { const v = (k) => document.querySelector('[data-k="' + k + '"]').dataset.v;
		return v("requests.peers") === "%d" && v("requests.origin") === "%d" && v("bytes.peers") === "%d" && v("bytes.origin") === "%d"; })()`,
		counted["peer"], counted["origin"], countedBytes["peer"], countedBytes["origin"]), 10*time.Second)
	if int64(counted["peer"]) != up0 || countedBytes["peer"] != bytes0 {
		t.Errorf("b got %d objects, %d bytes from peers; a uploaded %d, %d", counted["peer"], countedBytes["peer"], up0, bytes0)
	}
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	t.Logf("a uploaded %d objects, %d bytes while sharing; b: %s", up0, bytes0, bs.brief())
	b.Screenshot("b.png")
	a.Screenshot("a-paused.png")

	// Clear with the dashboard's button.
	var before stats
	a.MustEval(`flower.stats()`, &before)
	a.MustEval(`document.getElementById("clear").click(); true`, nil)
	a.WaitEval(`document.getElementById("msg").textContent === "Cache cleared: `+n+` objects removed." &&
		document.querySelector('[data-k="objects"]').dataset.v === "0" && document.querySelector('[data-k="bytesCached"]').dataset.v === "0"`, 10*time.Second)
	if on, bytes := storedObjects(t, a); on != 0 || bytes != 0 {
		t.Errorf("IndexedDB after clearing: %d objects, %d bytes", on, bytes)
	}
	a.Screenshot("a-cleared.png")
	if src, _ := fetchSource(t, a, pics[0].path); src == "cache" || src == "" {
		t.Errorf("a's request after clearing: %q, want peer or origin", src)
	}
	time.Sleep(2 * time.Second) // the worker saves its counters once a second
	var after stats
	a.MustEval(`flower.stats()`, &after)
	if after.Requests.Cache != before.Requests.Cache || after.Requests.Origin+after.Requests.Peers != before.Requests.Origin+before.Requests.Peers+1 {
		t.Errorf("requests (cache/peers/origin) before clearing %d/%d/%d, after a refetch %d/%d/%d; want one more from peers or origin",
			before.Requests.Cache, before.Requests.Peers, before.Requests.Origin, after.Requests.Cache, after.Requests.Peers, after.Requests.Origin)
	}

	// Leave: no role, requests pass through the worker untouched (no
	// Flower-Source), persisted across a reload; rejoin.
	a.MustEval(`document.getElementById("leave").click(); true`, nil)
	a.WaitEval(`flower.stats().then(s => s.controls.left && s.role === "none" && s.objects === 0)`, 10*time.Second)
	a.WaitEval(`document.getElementById("leave").textContent.startsWith("Rejoin")`, 5*time.Second)
	a.Screenshot("a-left.png")
	// cache: "no-store": the browser's HTTP cache holds what the worker
	// fetched earlier, and would answer a request passed through.
	hits := len(d.originRequests("a"))
	if src := fetchNoStore(t, a, pics[1].path); src != "" {
		t.Errorf("a's request after leaving: Flower-Source %q, want none (passed through)", src)
	}
	if got := len(d.originRequests("a")); got != hits+1 {
		t.Errorf("origin saw %d requests from a after it left, want 1", got-hits)
	}
	openDashboard(t, d, a)
	a.WaitEval(`flower.stats().then(s => s.controls.left && s.role === "none")`, 10*time.Second)
	if src := fetchNoStore(t, a, pics[2].path); src != "" {
		t.Errorf("a's request after a reload: Flower-Source %q, want none (still left)", src)
	}
	a.MustEval(`document.getElementById("leave").click(); true`, nil)
	a.WaitEval(`flower.stats().then(s => !s.controls.left && s.role !== "none")`, 10*time.Second)
	if src, _ := fetchSource(t, a, pics[3].path); src == "" || src == "cache" {
		t.Errorf("a's request after rejoining: Flower-Source %q, want peer or origin", src)
	}
}

// fetchNoStore fetches path from the page past the browser's HTTP cache
// (cache: "no-store"; the service worker still sees the request) and
// returns the Flower-Source header ("" if the worker did not answer).
func fetchNoStore(t *testing.T, v *browsertest.Visitor, path string) string {
	t.Helper()
	var out struct {
		Source string `json:"source"`
		Status int    `json:"status"`
	}
	v.MustEval(`(async () => { const r = await fetch(`+"`"+path+"`"+`, {cache: "no-store"}); await r.arrayBuffer();
		return {source: r.headers.get("Flower-Source") || "", status: r.status}; })()`, &out)
	if out.Status != 200 {
		t.Fatalf("%s: fetch %s: status %d", v.Name, path, out.Status)
	}
	return out.Source
}

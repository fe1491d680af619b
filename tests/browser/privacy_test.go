package browser_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowercdn/flower/site/origin"
	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// TestPrivacy: a request that carries cookies, and a response marked
// no-store, are never shared between visitors.
//
// Visitor A reads the front page (its service worker installs), logs in
// (/me/login sets a session cookie scoped to /me/), reads the about page,
// whose badge (/me/badge.jpg) is then personal (private, Vary: Cookie), and
// fetches the live clock (/live/now.json, no-store). Visitor B, with no
// cookie, then reads the same pages. The test checks that
//   - A's badge is its personal one, asked for with A's cookie and answered
//     from the origin (the cookie is HttpOnly: the worker cannot see it, and
//     fetches with it; the response's Vary: Cookie keeps it unshared);
//   - A's store (IndexedDB) never held the badge or the clock;
//   - B's requests for both reached the origin, and B got neither from a
//     peer;
//   - a path outside the site's whitelist (a page) is not touched by the
//     service worker at all.
func TestPrivacy(t *testing.T) {
	d := startDemo(t, 1)
	staticBadge := fileSHA256(t, d, origin.BadgePath)

	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	readPage(t, d, a, "/index.html")
	a.Navigate(d.url + origin.LoginPath)
	// What the service worker's cookie check (the Cookie Store API) sees of
	// the session cookie, which the origin sets HttpOnly: on this page,
	// under the cookie's path, for information.
	var visible struct {
		Store  int    `json:"store"`
		Cookie string `json:"cookie"`
	}
	if err := a.Eval(`cookieStore.getAll().then(c => ({store: c.length, cookie: document.cookie}))`, &visible); err != nil {
		t.Logf("a: Cookie Store API: %v", err)
	}
	t.Logf("a: logged in; under %s the Cookie Store API shows %d cookies, document.cookie %q", origin.CookiePath, visible.Store, visible.Cookie)
	readPage(t, d, a, "/about.html")
	aBadge := pageFetch(t, a, origin.BadgePath)
	aLive := pageFetch(t, a, origin.LivePath)
	t.Logf("a: badge %s, live %s", aBadge, aLive)

	// A's badge is personal: asked for with A's cookie, from the origin,
	// not the site's public badge.
	var withCookie int
	for _, r := range d.originRequests("a") {
		if pathOf(r.Path) == origin.BadgePath && r.Cookie {
			withCookie++
		}
	}
	if withCookie == 0 {
		t.Errorf("a: the origin saw no request for %s with a cookie; a's requests: %v", origin.BadgePath, paths(d.originRequests("a")))
	}
	// The cookie is HttpOnly: the worker cannot see it, so it may handle
	// the request, but only through the origin, with the cookie.
	if aBadge.Source != "" && aBadge.Source != "origin" {
		t.Errorf("a: %s came from %q: a response that varies with the cookie must come from the origin", origin.BadgePath, aBadge.Source)
	}
	if aBadge.SHA256 == staticBadge {
		t.Errorf("a: %s is the site's public badge, not a's personal one", origin.BadgePath)
	}
	if aLive.Source == "peer" || aLive.Source == "cache" {
		t.Errorf("a: %s came from %q, want the origin", origin.LivePath, aLive.Source)
	}

	// Nothing of either is in A's store.
	held := storedURLs(t, a)
	t.Logf("a holds %d objects", len(held))
	for _, u := range held {
		if p := strings.TrimPrefix(u, d.url); p == origin.BadgePath || p == origin.LivePath {
			// A's own badge request carried its cookie: nothing of its
			// answer may be kept (what is there can only be the public,
			// signed badge: a personal one fails verification).
			t.Errorf("a's store holds %s, kept for a request that carried a's cookie", u)
		}
	}
	var as stats
	a.MustEval(`flower.stats()`, &as)
	t.Logf("a: %s", as.brief())

	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	readPage(t, d, b, "/index.html")
	readPage(t, d, b, "/about.html")
	bLive := pageFetch(t, b, origin.LivePath)
	bBadge := pageFetch(t, b, origin.BadgePath)
	t.Logf("b: badge %s, live %s", bBadge, bLive)
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	t.Logf("b: %s", bs.brief())

	// B's requests for both reached the origin; neither came from a peer.
	bPaths := paths(d.originRequests("b"))
	for _, p := range []string{origin.BadgePath, origin.LivePath} {
		if !slices.Contains(bPaths, p) {
			t.Errorf("b: the origin saw no request for %s; b's requests: %v", p, bPaths)
		}
	}
	if bBadge.Source == "peer" || bLive.Source == "peer" {
		t.Errorf("b got the badge from %q and the clock from %q: neither may come from a peer", bBadge.Source, bLive.Source)
	}
	if bBadge.SHA256 != staticBadge {
		t.Errorf("b: %s is not the site's public badge", origin.BadgePath)
	}
	if bLive.Source == "cache" {
		t.Errorf("b: %s came from its cache: a no-store answer was kept", origin.LivePath)
	}
	if held := storedURLs(t, b); slices.Contains(held, d.url+origin.LivePath) {
		t.Errorf("b's store holds %s", origin.LivePath)
	}
	if seqA, seqB := liveSeq(t, aLive.Body), liveSeq(t, bLive.Body); seqA == seqB {
		t.Errorf("a and b got the same clock answer (seq %s)", seqA)
	}

	// A page is not on the whitelist: the service worker lets it through.
	if page := pageFetch(t, b, "/about.html"); page.Source != "" {
		t.Errorf("b: /about.html has Flower-Source %q: the service worker must not touch a path off the whitelist", page.Source)
	}
}

// fetched is what the page's fetch of a path returned.
type fetched struct {
	Source string `json:"source"` // the Flower-Source header, "" if none
	Status int    `json:"status"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"` // hex
	Body   string `json:"body"`   // the first 200 bytes, as text
}

func (f fetched) String() string {
	return "source=" + f.Source + " status=" + itoa(int64(f.Status)) + " size=" + itoa(int64(f.Size)) + " sha256=" + f.SHA256[:min(12, len(f.SHA256))]
}

// pageFetch fetches path from the visitor's page, as its scripts would
// (cookies included where they apply), and hashes the body.
func pageFetch(t *testing.T, v *browsertest.Visitor, path string) fetched {
	t.Helper()
	var out fetched
	v.MustEval(`(async () => {
		const r = await fetch(`+"`"+path+"`"+`);
		const b = await r.arrayBuffer();
		const h = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
		return {source: r.headers.get("Flower-Source") || "", status: r.status, size: b.byteLength,
			sha256: [...h].map(x => x.toString(16).padStart(2, "0")).join(""),
			body: new TextDecoder().decode(b.slice(0, 200))};
	})()`, &out)
	if out.Status != 200 {
		t.Fatalf("%s: fetch %s: status %d", v.Name, path, out.Status)
	}
	return out
}

// storedURLs lists the URLs of the objects in the visitor's IndexedDB
// store (shared/idb: the "meta" object store of the "flower-cdn"
// database).
func storedURLs(t *testing.T, v *browsertest.Visitor) []string {
	t.Helper()
	var out []string
	v.MustEval(`new Promise((resolve, reject) => {
		const open = indexedDB.open("flower-cdn");
		open.onerror = () => reject(open.error);
		open.onsuccess = () => {
			const db = open.result;
			const q = db.transaction("meta").objectStore("meta").getAll();
			q.onerror = () => reject(q.error);
			q.onsuccess = () => { db.close(); resolve(q.result.map(m => m.url)); };
		};
	})`, &out)
	return out
}

// fileSHA256 is the hex SHA-256 of a file of the built site.
func fileSHA256(t *testing.T, d *demo, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(strings.TrimPrefix(path, "/"))))
	if err != nil {
		t.Fatalf("the built site's %s: %v", path, err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// liveSeq is the "seq" field of a /live/now.json answer.
func liveSeq(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `"seq":`)
	if i < 0 {
		t.Fatalf("no seq in the clock's answer %q", body)
	}
	return strings.TrimRight(strings.TrimSpace(body[i+6:]), "}\n")
}

func pathOf(uri string) string { return strings.SplitN(uri, "?", 2)[0] }

func paths(reqs []origin.Request) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, pathOf(r.Path))
	}
	return out
}

package browser_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// demoPages are the demo's pages, in the order a visitor reads them.
var demoPages = []string{"/index.html", "/gallery.html", "/garden.html", "/video.html", "/about.html"}

// readPage loads one page as a reader would: it waits for the page-side
// peer, scrolls to the bottom, plays the video if there is one, and waits
// until every picture is decoded and the video has data.
func readPage(t *testing.T, d *demo, v *browsertest.Visitor, page string) {
	t.Helper()
	v.Navigate(d.url + page)
	if os.Getenv("FLOWER_BROWSER_DEBUG") != "" {
		v.MustEval(`localStorage.setItem("flower-log", "debug")`, nil)
	}
	v.WaitEval(`window.flower && (flower.state === "running" || flower.state === "failed")`, 30*time.Second)
	v.WaitEval(`document.querySelectorAll("[data-flower-src]").length === 0`, 15*time.Second)
	v.ScrollToBottom()
	v.MustEval(`(() => { const vid = document.querySelector("video"); if (vid) { vid.muted = true; vid.play().catch(() => {}); } return true; })()`, nil)
	v.WaitEval(`[...document.images].every(i => i.complete && i.naturalWidth > 0) &&
		[...document.querySelectorAll("video")].every(x => x.readyState >= 2)`, 30*time.Second)
}

// mediaOf lists the pictures and video the demo's pages load (by URL path)
// with their sizes in the built site.
func mediaOf(t *testing.T, d *demo) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, dir := range []string{"img", "video"} {
		files, err := filepath.Glob(filepath.Join(d.dir, dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil || st.IsDir() || strings.HasSuffix(f, ".svg") {
				continue
			}
			out["/"+dir+"/"+filepath.Base(f)] = st.Size()
		}
	}
	return out
}

// TestVisitorsShare is the product's main promise: visitor A reads the demo
// (from the origin); visitor B, same locality, then reads it with no native
// seeder running and gets its pictures and video from A's browser, each
// verified, none from the origin; at least 90% of the whitelisted bytes B
// loads come from peers.
func TestVisitorsShare(t *testing.T) {
	d := startDemo(t, 1)
	media := mediaOf(t, d)
	var total int64
	for _, n := range media {
		total += n
	}
	a := browsertest.NewVisitor(t, "a", browsertest.Options{})
	for _, p := range demoPages {
		readPage(t, d, a, p)
	}
	var as stats
	a.MustEval(`flower.stats()`, &as)
	t.Logf("a: %+v", as.brief())
	if as.Objects < len(media)-1 { // the badge on the about page is not on a page path a loads signed... see below
		t.Logf("a holds %d objects for %d media files", as.Objects, len(media))
	}

	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	for _, p := range demoPages {
		readPage(t, d, b, p)
	}
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	t.Logf("b: %+v", bs.brief())

	var fromOrigin int64
	var mediaAtOrigin []string
	for _, r := range d.originRequests("b") {
		path := strings.SplitN(r.Path, "?", 2)[0]
		if !whitelisted(path) {
			continue
		}
		fromOrigin += r.Bytes
		if _, ok := media[path]; ok {
			mediaAtOrigin = append(mediaAtOrigin, path)
		}
	}
	whitelistedBytes := bs.Bytes.Peers + bs.Bytes.Origin + bs.Bytes.Cache
	t.Logf("b: %d whitelisted bytes, %d from peers, %d from its cache, %d at the origin (origin log: %d bytes); media %d files, %d bytes",
		whitelistedBytes, bs.Bytes.Peers, bs.Bytes.Cache, bs.Bytes.Origin, fromOrigin, len(media), total)
	if len(mediaAtOrigin) > 0 {
		t.Errorf("b fetched media from the origin: %v", mediaAtOrigin)
	}
	if share := float64(bs.Bytes.Peers) / float64(bs.Bytes.Peers+fromOrigin); share < 0.9 {
		t.Errorf("b got %.1f%% of its whitelisted bytes from peers, want at least 90%%", 100*share)
	}
	if bs.VerifyFailures != 0 || bs.Worker.FromPeers < int64(len(media))-1 {
		t.Errorf("b: %d verification failures, %d objects from peers", bs.VerifyFailures, bs.Worker.FromPeers)
	}
	if as.Uploads == 0 {
		var after stats
		a.MustEval(`flower.stats()`, &after)
		if after.Uploads == 0 {
			t.Errorf("a uploaded nothing")
		}
	}
}

// whitelisted: the demo's shared URL patterns (scripts/build-site.sh).
func whitelisted(path string) bool {
	for _, p := range []string{"/img/", "/css/", "/js/", "/video/", "/me/", "/live/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// stats is flower.stats() (wasm/stats.go), as far as the tests read it.
type stats struct {
	State          string  `json:"state"`
	Role           string  `json:"role"`
	Locality       int     `json:"locality"`
	Contacts       int     `json:"contacts"`
	Directory      string  `json:"directory"`
	Objects        int     `json:"objects"`
	BytesCached    int64   `json:"bytesCached"`
	Requests       sources `json:"requests"`
	Bytes          sources `json:"bytes"`
	TTFBPeerMs     float64 `json:"ttfbPeerMs"`
	TTFBOriginMs   float64 `json:"ttfbOriginMs"`
	VerifyFailures int64   `json:"verifyFailures"`
	Uploads        int64   `json:"uploads"`
	BytesUploaded  int64   `json:"bytesUploaded"`
	Worker         struct {
		FromCache, FromPeers, FromOrigin int64
	} `json:"worker"`
}

type sources struct {
	Cache  int64 `json:"cache"`
	Peers  int64 `json:"peers"`
	Origin int64 `json:"origin"`
}

func (s stats) brief() string {
	return strings.Join([]string{
		"state=" + s.State, "role=" + s.Role, "dir=" + s.Directory,
		"objects=" + itoa(int64(s.Objects)), "cached=" + itoa(s.BytesCached),
		"req(c/p/o)=" + itoa(s.Requests.Cache) + "/" + itoa(s.Requests.Peers) + "/" + itoa(s.Requests.Origin),
		"bytes(c/p/o)=" + itoa(s.Bytes.Cache) + "/" + itoa(s.Bytes.Peers) + "/" + itoa(s.Bytes.Origin),
		"up=" + itoa(s.Uploads) + "/" + itoa(s.BytesUploaded), "verifyFail=" + itoa(s.VerifyFailures),
	}, " ")
}

package origintest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/security"
)

// TestBuildSite builds the demo site with scripts/build-site.sh, serves it,
// and checks every object of its manifest against the origin's bytes.
func TestBuildSite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flower.wasm and the demo media")
	}
	dir := t.TempDir()
	srv := Serve(t, dir)
	const boot = "http://127.0.0.1:7799"
	key := BuildSite(t, dir, srv.URL(), boot)

	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL()+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	_, page := get("/gallery.html")
	if !strings.Contains(string(page), `data-bootstrap="`+boot+`" data-site-key="`+key.String()+`"`) {
		t.Error("gallery.html: the script tag's attributes are not filled in")
	}
	if _, dash := get("/flower/dashboard.html"); !strings.Contains(string(dash), `data-bootstrap="`+boot+`" data-site-key="`+key.String()+`"`) {
		t.Error("flower/dashboard.html: the script tag's attributes are not filled in")
	}
	_, data := get(security.ManifestPath)
	m, err := security.ParseManifest(data, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	objects := m.Objects()
	if len(objects) < 15 {
		t.Errorf("%d objects signed", len(objects))
	}
	for _, o := range objects {
		url := o.Statement.URL
		_, body := get(strings.TrimPrefix(url, srv.URL()))
		if err := security.Verify(key, o.Statement, url, body, time.Now()); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	for _, enc := range []string{"br", "gzip"} {
		if resp, _ := get("/flower/flower.wasm", "Accept-Encoding", enc); resp.Header.Get("Content-Encoding") != enc || resp.Header.Get("Content-Type") != "application/wasm" {
			t.Errorf("flower.wasm for %s: %v", enc, resp.Header)
		}
	}
	for _, p := range []string{"/flower/wasm_exec.js", "/flower-sw.js", "/video/garden-tour.webm", "/me/badge.jpg"} {
		if resp, _ := get(p); resp.StatusCode != 200 {
			t.Errorf("%s: status %d", p, resp.StatusCode)
		}
	}
}

// Package browser_test runs Flower-CDN end to end in real headless
// Chromium: the demo site served by the demo origin, the real bootstrap
// binary, and visitors that are separate Chromium processes with their own
// profiles (tests/browser/browsertest).
package browser_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/site/origin"
	"github.com/flowercdn/flower/site/origin/origintest"
	"github.com/flowercdn/flower/tests/browser/browsertest"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// demo is one running demo: origin, bootstrap service, built site.
type demo struct {
	origin *origin.Server
	boot   *browsertest.Bootstrap
	url    string
	dir    string // the built site
}

// startDemo serves the demo site on a free loopback port with a bootstrap
// service of the given localities.
func startDemo(t *testing.T, localities int) *demo {
	t.Helper()
	dir := t.TempDir()
	srv := origintest.Serve(t, dir)
	boot := browsertest.RunBootstrap(t, srv.URL(), localities)
	origintest.BuildSite(t, dir, srv.URL(), boot.URL)
	return &demo{origin: srv, boot: boot, url: srv.URL(), dir: dir}
}

// visitor opens a new visitor and waits until its page-side peer runs.
func (d *demo) visitor(t *testing.T, name, page string) *browsertest.Visitor {
	t.Helper()
	v := browsertest.NewVisitor(t, name, browsertest.Options{})
	v.Navigate(d.url + page)
	v.WaitEval(`window.flower && flower.state === "running"`, 30*time.Second)
	return v
}

// originRequests are the origin's log entries from one visitor.
func (d *demo) originRequests(name string) []origin.Request {
	var out []origin.Request
	for _, r := range d.origin.Requests() {
		if strings.HasSuffix(r.UserAgent, "flower-visitor/"+name) {
			out = append(out, r)
		}
	}
	return out
}

// fetchSource fetches path from the page and returns the Flower-Source
// header the service worker set ("" if it did not answer) and the size.
func fetchSource(t *testing.T, v *browsertest.Visitor, path string) (string, int) {
	t.Helper()
	var out struct {
		Source string `json:"source"`
		Size   int    `json:"size"`
		Status int    `json:"status"`
	}
	v.MustEval(`(async () => { const r = await fetch(`+"`"+path+"`"+`); const b = await r.arrayBuffer();
		return {source: r.headers.get("Flower-Source") || "", size: b.byteLength, status: r.status}; })()`, &out)
	if out.Status != 200 {
		t.Fatalf("%s: fetch %s: status %d", v.Name, path, out.Status)
	}
	return out.Source, out.Size
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

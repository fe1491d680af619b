package browser_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/shared/rtc"
	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// TestTamper: an object a malicious peer alters is rejected by the
// visitor's browser, fetched elsewhere, and the page shows the right
// content.
//
// The malicious peer M is a native peer (pion WebRTC, as `flower peer`
// runs) whose store flips the first byte of every object it serves, with
// the site's valid signed statement (peertest.CorruptStore). It prefetches
// the whole site, so it founds the petal and is its directory and only
// holder. Visitor B (Chromium) then reads the gallery: B's page-side peer
// asks M, checks the statement (valid: the transfer starts), then the body
// digest, which fails; it reports M to its core, which avoids it. With no
// other peer holding the object, the query ends at the origin: B's service
// worker fetches the object itself. "Elsewhere" is therefore the origin,
// and the test checks exactly that: each rejected URL is in the origin's
// log under B's User-Agent, and B got nothing at all from a peer.
func TestTamper(t *testing.T) {
	d := startDemo(t, 1)
	bad := &peertest.CorruptStore{Store: peer.NewMemStore()}
	m := startNativePeer(t, d, bad)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := m.Prefetch(ctx, d.url, 0)
	if err != nil {
		t.Fatalf("malicious peer: prefetch: %v", err)
	}
	if err := m.Join(ctx, d.url); err != nil {
		t.Fatalf("malicious peer: join: %v", err)
	}
	peertest.Eventually(t, "the malicious peer directs the petal", 20*time.Second, func() bool { return m.Role(d.url) == core.RoleDirectory })
	peertest.WaitDirectory(t, d.boot.URL, d.url, 0, m.ID())
	bad.SetCorrupt(true)
	t.Logf("malicious peer %s holds %d objects and directs locality 0; it now serves altered bytes", m.ID().Short(), n)

	b := browsertest.NewVisitor(t, "b", browsertest.Options{})
	readPage(t, d, b, "/gallery.html")
	var widths []int
	b.MustEval(`[...document.images].filter(i => i.src.includes("/img/") && !i.src.endsWith(".svg")).map(i => i.naturalWidth)`, &widths)
	if len(widths) != 8 || slices.Contains(widths, 0) {
		t.Errorf("b: gallery pictures' natural widths %v, want 8 decoded pictures", widths)
	}
	var bs stats
	b.MustEval(`flower.stats()`, &bs)
	var ps struct {
		PeerStats peer.Stats `json:"peerStats"`
	}
	b.MustEval(`flower.stats()`, &ps)
	ms := m.Stats()
	t.Logf("b: %s; peer: verify failures %d, transfer failures %d", bs.brief(), ps.PeerStats.VerifyFailures, ps.PeerStats.TransferFailures)
	t.Logf("malicious peer: served %d objects (%d bytes)", ms.Served, ms.BytesUploaded)
	t.Logf("b's IndexedDB holds %d objects", len(storedURLs(t, b)))

	// B rejected altered copies, each from M.
	rejected := rejectedObjects(b)
	t.Logf("b rejected: %v", rejected)
	if bs.VerifyFailures == 0 || len(rejected) == 0 {
		t.Fatalf("b rejected nothing (verify failures %d): the test did not reach the malicious peer (it served %d objects)", bs.VerifyFailures, ms.Served)
	}
	for u, from := range rejected {
		if from != m.ID().Short() {
			t.Errorf("b rejected %s from peer %s, but the only other peer is the malicious %s", u, from, m.ID().Short())
		}
	}

	// Elsewhere is the origin: every rejected object is in the origin's
	// log under B's name, and B took nothing from any peer.
	bPaths := paths(d.originRequests("b"))
	for u := range rejected {
		if p := strings.TrimPrefix(u, d.url); !slices.Contains(bPaths, p) {
			t.Errorf("b rejected %s, and the origin saw no request from b for it: where did b get it? b's origin requests: %v", u, bPaths)
		}
	}
	if bs.Worker.FromPeers != 0 || bs.Bytes.Peers != 0 {
		t.Errorf("b took %d objects (%d bytes) from peers: the only peer is the malicious one", bs.Worker.FromPeers, bs.Bytes.Peers)
	}

	// The bytes are the origin's. One rejected picture, as the page has it
	// now (B's verified cache), and one picture the page has not asked for
	// yet, fetched through the service worker for the first time (M is
	// asked again or avoided; either way the bytes must be right).
	var picture string
	for u := range rejected {
		if p := strings.TrimPrefix(u, d.url); strings.HasPrefix(p, "/img/") && (picture == "" || p < picture) {
			picture = p
		}
	}
	if picture == "" {
		t.Fatalf("b rejected no picture: %v", rejected)
	}
	for _, p := range []string{picture, "/img/lavender-field.jpg"} {
		got := pageFetch(t, b, p)
		t.Logf("b: %s: %s", p, got)
		if want := fileSHA256(t, d, p); got.SHA256 != want {
			t.Errorf("b: the page's %s has SHA-256 %s, the origin's file %s", p, got.SHA256, want)
		}
		if got.Source == "peer" {
			t.Errorf("b: %s came from a peer; the only peer is the malicious one", p)
		}
	}
}

// startNativePeer starts a native peer (pion WebRTC) for the demo site in
// locality 0 with store, as `flower peer` would run it, with test protocol
// periods. Chromium's host candidates carry the machine's interface address
// (browsertest turns mDNS names off), which pion gathers by default: no
// loopback candidates are needed.
func startNativePeer(t *testing.T, d *demo, store peer.Store) *peer.Peer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("side", "native")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := peer.Start(ctx, peer.Config{
		Bootstrap: d.boot.URL, Sites: []string{d.url}, Store: store, Key: key,
		Net: peer.RTC(rtc.Config{Logger: log, ConnectTimeout: 10 * time.Second}), Core: peertest.FastCore(),
		Locality: 0, Logger: log,
	})
	if err != nil {
		t.Fatalf("start a native peer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var badObjectRE = regexp.MustCompile(`msg="bad object from peer".*\bpeer=(\S+).*\burl=(\S+)`)

// rejectedObjects are the objects the visitor's page-side peer rejected
// (its "bad object from peer" log lines): URL → the sender's short id.
func rejectedObjects(v *browsertest.Visitor) map[string]string {
	out := map[string]string{}
	for _, l := range v.Logs() {
		if m := badObjectRE.FindStringSubmatch(l); m != nil {
			out[m[2]] = m[1]
		}
	}
	return out
}

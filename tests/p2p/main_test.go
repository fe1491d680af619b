// Package p2p_test runs Flower-CDN peers over real WebRTC (pion data
// channels on 127.0.0.1) with the real flower-bootstrap binary and a
// signed origin.
package p2p_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/shared/rtc"
	"github.com/flowercdn/flower/tests/bootstraptest"
)

func TestMain(m *testing.M) { bootstraptest.Main(m) }

// startBootstrap runs the flower-bootstrap binary on a free loopback port
// for origin, with the given number of localities, until the test ends.
func startBootstrap(t *testing.T, origin string, localities int) string {
	t.Helper()
	return bootstraptest.Start(t, origin, localities).URL
}

// peerOpts are how a test peer differs from the default.
type peerOpts struct {
	loc   int
	store peer.Store
	key   ed25519.PrivateKey
}

// startPeer starts a native peer over real WebRTC, with protocol periods
// short enough for a test.
func startPeer(t *testing.T, boot, origin string, o peerOpts) *peer.Peer {
	t.Helper()
	if o.key == nil {
		_, o.key, _ = ed25519.GenerateKey(rand.Reader)
	}
	if o.store == nil {
		o.store = peer.NewMemStore()
	}
	cfg := peertest.FastCore()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc := rtc.Config{Logger: log, ConnectTimeout: 5 * time.Second}
	rc.Native.IncludeLoopback = true
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := peer.Start(ctx, peer.Config{
		Bootstrap: boot, Sites: []string{origin}, Store: o.store, Key: o.key, Net: peer.RTC(rc),
		Core: cfg, Locality: o.loc, Logger: log,
	})
	if err != nil {
		t.Fatalf("start peer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func get(t *testing.T, p *peer.Peer, url string) *peer.Result {
	t.Helper()
	return peertest.Get(t, p, url)
}

func describe(r *peer.Result) string { return peertest.Describe(r) }

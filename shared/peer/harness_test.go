package peer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap"
	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// startBootstrap runs a bootstrap service in process on 127.0.0.1.
func startBootstrap(t *testing.T, localities int, origins ...string) string {
	t.Helper()
	return startBootstrapWith(t, localities, origins, nil)
}

// startBootstrapWith also names the landmarks the service announces.
func startBootstrapWith(t *testing.T, localities int, origins, landmarks []string) string {
	t.Helper()
	cfg := bootstrap.DefaultConfig()
	cfg.Localities = localities
	cfg.AllowedOrigins = origins
	cfg.Landmarks = landmarks
	return startBootstrapCfg(t, cfg)
}

// startBootstrapCfg runs a bootstrap service with cfg on a free loopback
// port until the test ends, and returns its base URL.
func startBootstrapCfg(t *testing.T, cfg bootstrap.Config) string {
	t.Helper()
	srv, err := bootstrap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, []net.Listener{ln}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// startPeer starts a peer of the origin in locality loc.
func startPeer(t *testing.T, boot string, o *peertest.Origin, newNet peer.NewNet, loc int, store peer.Store, key ed25519.PrivateKey) *peer.Peer {
	t.Helper()
	return startPeerWith(t, boot, o, newNet, loc, store, key, nil)
}

// startPeerWith is startPeer with a last say on the configuration.
func startPeerWith(t *testing.T, boot string, o *peertest.Origin, newNet peer.NewNet, loc int, store peer.Store, key ed25519.PrivateKey, tune func(*peer.Config)) *peer.Peer {
	t.Helper()
	if key == nil {
		_, key, _ = ed25519.GenerateKey(rand.Reader)
	}
	if store == nil {
		store = peer.NewMemStore()
	}
	cfg := peertest.FastCore()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pcfg := peer.Config{
		Bootstrap: boot, Sites: []string{o.URL}, Store: store, Key: key, Net: newNet,
		Core: cfg, Locality: loc, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tune != nil {
		tune(&pcfg)
	}
	p, err := peer.Start(ctx, pcfg)
	if err != nil {
		t.Fatalf("start peer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// waitFounder waits until p, the first peer of the site, holds its
// locality's directory position and the bootstrap service lists it: a peer
// started before that would found D-ring again.
func waitFounder(t *testing.T, boot string, o *peertest.Origin, p *peer.Peer) {
	t.Helper()
	peertest.Eventually(t, "the first peer founds D-ring as directory", 5*time.Second, func() bool { return p.Role(o.URL) == core.RoleDirectory })
	peertest.WaitDirectory(t, boot, o.URL, p.Locality(), p.ID())
}

func get(t *testing.T, p *peer.Peer, url string) *peer.Result {
	t.Helper()
	return peertest.Get(t, p, url)
}

func describe(r *peer.Result) string { return peertest.Describe(r) }

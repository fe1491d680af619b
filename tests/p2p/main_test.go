// Package p2p_test runs Flower-CDN peers over real WebRTC (pion data
// channels on 127.0.0.1) with the real flower-bootstrap binary and a
// signed origin.
package p2p_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/shared/rtc"
)

var bootstrapBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flower-p2p-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bootstrapBin = filepath.Join(dir, "flower-bootstrap")
	build := exec.Command("go", "build", "-o", bootstrapBin, "github.com/flowercdn/flower/cmd/flower-bootstrap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build flower-bootstrap:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startBootstrap runs the flower-bootstrap binary on a free loopback port
// for origin, with the given number of localities, until the test ends.
func startBootstrap(t *testing.T, origin string, localities int) string {
	t.Helper()
	cmd := exec.Command(bootstrapBin, "--listen", "127.0.0.1:0", "--allow-origins", origin,
		"--localities", fmt.Sprint(localities), "--log-level", "debug")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bootstrap: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(15 * time.Second):
		t.Fatal("bootstrap did not report its address")
	}
	return ""
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

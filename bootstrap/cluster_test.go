package bootstrap_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// Three instances over an embedded NATS server are one service: signalling
// crosses instances, entry points include every instance's directories, and
// an instance that dies loses only its own peers.
func TestClusterOverNATS(t *testing.T) {
	url := startNATS(t)
	const site = "https://a.example"
	args := []string{"--nats", url, "--dir-snapshot", "300ms", "--allow-origins", site}
	i1, i2, i3 := start(t, nil, args...), start(t, nil, args...), start(t, nil, args...)
	a := dial(t, i1.ws(), client.Options{})
	b := dial(t, i2.ws(), client.Options{})
	c := dial(t, i3.ws(), client.Options{})
	time.Sleep(100 * time.Millisecond) // let the peer subscriptions reach NATS

	if err := a.Signal(ctxT(t), b.ID, []byte("a->b")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, b, frame.TDeliver); d.Peer != a.ID || string(d.Payload) != "a->b" {
		t.Fatalf("b got %q from %s", d.Payload, d.Peer)
	}
	if err := c.Signal(ctxT(t), a.ID, []byte("c->a")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, a, frame.TDeliver); d.Peer != c.ID || string(d.Payload) != "c->a" {
		t.Fatalf("a got %q from %s", d.Payload, d.Peer)
	}
	ghost := ids.PeerID{7}
	if err := b.Signal(ctxT(t), ghost, []byte("?")); err != nil {
		t.Fatal(err)
	}
	if f := expectError(t, b, frame.CodeUnknownTarget); f.Peer != ghost {
		t.Fatalf("unknown target about %s", f.Peer)
	}

	// Directories registered on i2 (locality 0) and i3 (locality 1) are
	// entry points on i1, with their keys.
	s := ids.SiteOf(site)
	db := register(t, b, s, 0, 0)
	dc := register(t, c, s, 1, 2)
	eventually(t, 10*time.Second, "entries from every instance on i1", func() bool {
		e := httpEntries(t, i1, site, 0, 10)
		return sameEntries(e, members(db), members(dc)) && same(e.Random, db.m, dc.m)
	})
	if e := socketEntries(t, a, 1, s, 1, 5); !sameEntries(e, members(dc), members(db)) || !same(e.Random, db.m, dc.m) {
		t.Fatalf("socket entries on i1: %+v", e)
	}
	// An instance with another key layout is one service for signalling,
	// but its directory keys mean something else: i1 ignores them.
	i4 := start(t, nil, append(args, "--instance-bits", "2")...)
	d := dial(t, i4.ws(), client.Options{})
	register(t, d, s, 0, 1)
	eventually(t, 10*time.Second, "i1 to report the other layout", func() bool {
		return strings.Contains(i1.logText(), "another key layout")
	})
	if e := httpEntries(t, i1, site, 0, 10); !sameEntries(e, members(db), members(dc)) {
		t.Fatalf("entries on i1 with a foreign layout around: %+v", e)
	}
	_ = i4.stop(syscall.SIGTERM)

	// i3 dies without a word.
	if err := i3.stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	eventually(t, 10*time.Second, "dead instance's directories to age out", func() bool {
		return sameEntries(httpEntries(t, i1, site, 0, 10), members(db), nil)
	})
	if err := a.Signal(ctxT(t), c.ID, []byte("?")); err != nil {
		t.Fatal(err)
	}
	if f := expectError(t, a, frame.CodeUnknownTarget); f.Peer != c.ID {
		t.Fatalf("unknown target about %s", f.Peer)
	}
	if err := b.Signal(ctxT(t), a.ID, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, a, frame.TDeliver); d.Peer != b.ID {
		t.Fatalf("a got from %s", d.Peer)
	}
	// A clean stop withdraws its directories at once (bye), and its peers
	// are told to reconnect elsewhere.
	if err := i2.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("clean stop: %v\n%s", err, i2.logText())
	}
	recvType(t, b, frame.TGoAway)
	eventually(t, 10*time.Second, "stopped instance's directories to leave", func() bool {
		return httpEntries(t, i1, site, 0, 10).Empty()
	})
}

package bootstrap_test

import (
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

	s := ids.SiteOf(site)
	if err := b.Register(ctxT(t), frame.Reg{Site: s, Loc: 0, Role: frame.RoleDirectory}); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctxT(t), frame.Reg{Site: s, Loc: 0, Role: frame.RoleDirectory}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "entries from every instance on i1", func() bool {
		return sameSet(httpEntries(t, i1, site, 0, 10), b, c)
	})
	if err := a.Send(ctxT(t), &frame.Frame{Type: frame.TEntryReq, ReqID: 1, Site: s, Loc: 0, N: 5}); err != nil {
		t.Fatal(err)
	}
	if e := recvType(t, a, frame.TEntries); len(e.Peers) != 2 {
		t.Fatalf("socket entries on i1: %v", e.Peers)
	}

	// i3 dies without a word.
	if err := i3.stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	eventually(t, 10*time.Second, "dead instance's directories to age out", func() bool {
		return sameSet(httpEntries(t, i1, site, 0, 10), b)
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
		return len(httpEntries(t, i1, site, 0, 10)) == 0
	})
}

package bootstrap_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/bootstrap/loadtest"
	"github.com/flowercdn/flower/shared/ids"
)

// Two peers signal each other through the real binary; the server stamps the
// sender id, which the Signal frame cannot even carry.
func TestTwoPeersSignal(t *testing.T) {
	in := start(t, nil)
	a := dial(t, in.ws(), client.Options{})
	b := dial(t, in.ws(), client.Options{})
	if a.ID == b.ID || a.Welcome.Peer != a.ID {
		t.Fatalf("ids: a=%s b=%s welcome=%s", a.ID, b.ID, a.Welcome.Peer)
	}
	offer := []byte(`{"type":"offer","sdp":"v=0..."}`)
	if err := a.Signal(ctxT(t), b.ID, offer); err != nil {
		t.Fatal(err)
	}
	d := recvType(t, b, frame.TDeliver)
	if d.Peer != a.ID || !bytes.Equal(d.Payload, offer) {
		t.Fatalf("b got from %s payload %q", d.Peer, d.Payload)
	}
	answer := []byte(`{"type":"answer"}`)
	if err := b.Signal(ctxT(t), a.ID, answer); err != nil {
		t.Fatal(err)
	}
	d = recvType(t, a, frame.TDeliver)
	if d.Peer != b.ID || !bytes.Equal(d.Payload, answer) {
		t.Fatalf("a got from %s payload %q", d.Peer, d.Payload)
	}
	// ICE candidates: many small messages arrive in order.
	for i := range 50 {
		if err := a.Signal(ctxT(t), b.ID, []byte(fmt.Sprintf("cand-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if d := recvType(t, b, frame.TDeliver); string(d.Payload) != fmt.Sprintf("cand-%d", i) || d.Peer != a.ID {
			t.Fatalf("candidate %d: %q from %s", i, d.Payload, d.Peer)
		}
	}
	if v := in.metric("flower_bootstrap_relay_total", `result="local"`); v != 52 {
		t.Fatalf("relay_total local = %v, want 52", v)
	}
}

// Nobody can take another peer's id: a key it does not hold, a signature
// relayed from another host, or one replayed from another challenge.
func TestImpersonationFails(t *testing.T) {
	in := start(t, nil)
	victim := dial(t, in.ws(), client.Options{})
	victimPub := victim.Key.Public().(ed25519.PublicKey)
	_, attackerKey, _ := ed25519.GenerateKey(nil)
	var replayed [frame.SigLen]byte
	copy(replayed[:], ed25519.Sign(victim.Key, frame.AuthMessage(strings.TrimPrefix(in.addr, ""), victim.Challenge.Nonce)))

	attempts := map[string]func(ch frame.Frame, host string) frame.Frame{
		"victim key, attacker signature": func(ch frame.Frame, host string) frame.Frame {
			h := frame.Frame{Type: frame.THello}
			copy(h.Key[:], victimPub)
			copy(h.Sig[:], ed25519.Sign(attackerKey, frame.AuthMessage(host, ch.Nonce)))
			return h
		},
		"signature made for another service": func(ch frame.Frame, host string) frame.Frame {
			// What a malicious bootstrap would get from the victim and relay.
			h := frame.Frame{Type: frame.THello}
			copy(h.Key[:], victimPub)
			copy(h.Sig[:], ed25519.Sign(victim.Key, frame.AuthMessage("evil.example:443", ch.Nonce)))
			return h
		},
		"replay of an earlier handshake": func(ch frame.Frame, host string) frame.Frame {
			h := frame.Frame{Type: frame.THello, Sig: replayed}
			copy(h.Key[:], victimPub)
			return h
		},
	}
	for name, hello := range attempts {
		_, err := client.Dial(ctxT(t), in.ws(), client.Options{Hello: hello})
		var rej *client.ErrRejected
		if !errors.As(err, &rej) || rej.Frame.Code != frame.CodeAuthFailed {
			t.Fatalf("%s: got %v, want an auth_failed rejection", name, err)
		}
	}
	if v := in.metric("flower_bootstrap_connections_total", `result="auth_failed"`); v != 3 {
		t.Fatalf("auth_failed = %v, want 3", v)
	}
	// The victim still owns its id and its signalling.
	sender := dial(t, in.ws(), client.Options{})
	if err := sender.Signal(ctxT(t), victim.ID, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, victim, frame.TDeliver); d.Peer != sender.ID {
		t.Fatalf("victim got a frame from %s", d.Peer)
	}
}

// A signal to an unknown or departed peer gets an unknown-target error.
func TestUnknownTarget(t *testing.T) {
	in := start(t, nil)
	a := dial(t, in.ws(), client.Options{})
	ghost := ids.PeerID{0xde, 0xad}
	if err := a.Signal(ctxT(t), ghost, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if f := expectError(t, a, frame.CodeUnknownTarget); f.Peer != ghost || f.Ref != frame.TSignal {
		t.Fatalf("error about %s ref %s", f.Peer, f.Ref)
	}
	b := dial(t, in.ws(), client.Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b to leave", func() bool { return in.metric("flower_bootstrap_peers", "") == 1 })
	if err := a.Signal(ctxT(t), b.ID, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if f := expectError(t, a, frame.CodeUnknownTarget); f.Peer != b.ID {
		t.Fatalf("error about %s, want %s", f.Peer, b.ID)
	}
	ping(t, a, 1) // the sender stays connected
}

type entryJSON struct {
	Site  string   `json:"site"`
	Loc   int      `json:"loc"`
	Peers []string `json:"peers"`
}

func httpEntries(t *testing.T, in *instance, site string, loc, n int) map[string]bool {
	t.Helper()
	code, body := in.get(fmt.Sprintf("/v1/entry?site=%s&loc=%d&n=%d", site, loc, n), "")
	if code != http.StatusOK {
		t.Fatalf("entry: %d %s", code, body)
	}
	var e entryJSON
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("entry json %q: %v", body, err)
	}
	m := map[string]bool{}
	for _, p := range e.Peers {
		m[p] = true
	}
	return m
}

func sameSet(got map[string]bool, want ...*client.Client) bool {
	if len(got) != len(want) {
		return false
	}
	for _, c := range want {
		if !got[c.ID.String()] {
			return false
		}
	}
	return true
}

// Entry points are live directory peers of exactly that site and locality,
// over HTTP and over the socket, chosen at random.
func TestEntryPoints(t *testing.T) {
	const siteA, siteB = "https://a.example", "https://b.example"
	in := start(t, nil, "--allow-origins", siteA+","+siteB, "--localities", "4")
	a, b := ids.SiteOf(siteA), ids.SiteOf(siteB)
	reg := func(c *client.Client, regs ...frame.Reg) {
		t.Helper()
		if err := c.Register(ctxT(t), regs...); err != nil {
			t.Fatal(err)
		}
	}
	d1 := dial(t, in.ws(), client.Options{})
	d2 := dial(t, in.ws(), client.Options{})
	d3 := dial(t, in.ws(), client.Options{})
	d4 := dial(t, in.ws(), client.Options{})
	c1 := dial(t, in.ws(), client.Options{})
	reg(d1, frame.Reg{Site: a, Loc: 1, Role: frame.RoleDirectory}, frame.Reg{Site: b, Loc: 2, Role: frame.RoleContent})
	reg(d2, frame.Reg{Site: a, Loc: 1, Role: frame.RoleDirectory})
	reg(d3, frame.Reg{Site: a, Loc: 2, Role: frame.RoleDirectory})
	reg(d4, frame.Reg{Site: b, Loc: 1, Role: frame.RoleDirectory})
	reg(c1, frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent})
	eventually(t, 5*time.Second, "registrations", func() bool {
		return sameSet(httpEntries(t, in, siteA, 1, 10), d1, d2)
	})
	if got := httpEntries(t, in, fmt.Sprintf("%016x", uint64(a)), 2, 10); !sameSet(got, d3) {
		t.Fatalf("site a loc 2 by site id: %v", got)
	}
	if got := httpEntries(t, in, siteB, 1, 10); !sameSet(got, d4) {
		t.Fatalf("site b loc 1: %v", got)
	}
	if got := httpEntries(t, in, siteB, 2, 10); len(got) != 0 {
		t.Fatalf("content peers are not entry points: %v", got)
	}
	// The same over the socket; the asker is never its own entry point.
	if err := c1.Send(ctxT(t), &frame.Frame{Type: frame.TEntryReq, ReqID: 7, Site: a, Loc: 1, N: 10}); err != nil {
		t.Fatal(err)
	}
	if e := recvType(t, c1, frame.TEntries); e.ReqID != 7 || len(e.Peers) != 2 || !peerSet(e.Peers)[d1.ID] || !peerSet(e.Peers)[d2.ID] {
		t.Fatalf("socket entries %+v", e)
	}
	if err := d1.Send(ctxT(t), &frame.Frame{Type: frame.TEntryReq, ReqID: 8, Site: a, Loc: 1, N: 10}); err != nil {
		t.Fatal(err)
	}
	if e := recvType(t, d1, frame.TEntries); len(e.Peers) != 1 || e.Peers[0] != d2.ID {
		t.Fatalf("d1 asking: %+v", e.Peers)
	}
	// Only live peers: a directory that leaves, or changes role, is gone.
	_ = d1.Close()
	eventually(t, 5*time.Second, "d1 gone from entries", func() bool { return sameSet(httpEntries(t, in, siteA, 1, 10), d2) })
	reg(d2, frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent})
	eventually(t, 5*time.Second, "d2 demoted", func() bool { return len(httpEntries(t, in, siteA, 1, 10)) == 0 })

	// Bad registrations are refused with a reason.
	reg(c1, frame.Reg{Site: ids.SiteOf("https://evil.example"), Loc: 0, Role: frame.RoleDirectory})
	expectError(t, c1, frame.CodeBadRegister)
	reg(c1, frame.Reg{Site: a, Loc: 4, Role: frame.RoleDirectory})
	expectError(t, c1, frame.CodeBadRegister)

	// Random: with 12 directory peers and n=3, the answers vary and cover
	// most of them.
	for range 12 {
		d := dial(t, in.ws(), client.Options{})
		reg(d, frame.Reg{Site: b, Loc: 3, Role: frame.RoleDirectory})
	}
	eventually(t, 5*time.Second, "12 directories", func() bool { return len(httpEntries(t, in, siteB, 3, 32)) == 12 })
	seen := map[string]bool{}
	for range 60 {
		got := httpEntries(t, in, siteB, 3, 3)
		if len(got) != 3 {
			t.Fatalf("n=3 gave %d", len(got))
		}
		for p := range got {
			seen[p] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("60 random draws of 3 out of 12 covered only %d peers", len(seen))
	}

	// Origin checks: CORS for allowed sites, 403 for others, on HTTP and WS.
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+"/v1/entry?site="+siteA+"&loc=1", nil)
	req.Header.Set("Origin", siteA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != siteA {
		t.Fatalf("CORS: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if code, _ := in.get("/v1/entry?site="+siteA+"&loc=1", "https://evil.example"); code != http.StatusForbidden {
		t.Fatalf("evil origin over HTTP: %d", code)
	}
	if _, err := client.Dial(ctxT(t), in.ws(), client.Options{Origin: "https://evil.example"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("evil origin over WS: %v", err)
	}
	dial(t, in.ws(), client.Options{Origin: siteB})
}

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

// A peer flooding another is rate limited; other peers see no difference.
func TestFloodIsRateLimited(t *testing.T) {
	in := start(t, nil, "--peer-rate", "20", "--peer-burst", "20")
	flooder := dial(t, in.ws(), client.Options{})
	victim := dial(t, in.ws(), client.Options{})
	x := dial(t, in.ws(), client.Options{})
	y := dial(t, in.ws(), client.Options{})

	// The victim counts what reaches it, concurrently.
	got := make(chan int)
	go func() {
		n := 0
		for {
			ctx, cancel := contextWithTimeout(2 * time.Second)
			f, err := victim.Recv(ctx)
			cancel()
			if err != nil {
				got <- n
				return
			}
			if f.Type == frame.TDeliver {
				n++
			}
		}
	}()
	rateErrs := make(chan int)
	go func() {
		n := 0
		for {
			ctx, cancel := contextWithTimeout(2 * time.Second)
			f, err := flooder.Recv(ctx)
			cancel()
			if err != nil {
				rateErrs <- n
				return
			}
			if f.Type == frame.TError && f.Code == frame.CodeRateLimited {
				n++
			}
		}
	}()
	begin := time.Now()
	const flood = 3000
	for i := range flood {
		if err := flooder.Signal(ctxT(t), victim.ID, []byte(fmt.Sprintf("spam %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Meanwhile two other peers signal each other as usual: every message
	// arrives, none is limited.
	for i := range 15 {
		if err := x.Signal(ctxT(t), y.ID, []byte("offer")); err != nil {
			t.Fatal(err)
		}
		if d := recvType(t, y, frame.TDeliver); d.Peer != x.ID {
			t.Fatalf("y: from %s", d.Peer)
		}
		if err := y.Signal(ctxT(t), x.ID, []byte("answer")); err != nil {
			t.Fatal(err)
		}
		if d := recvType(t, x, frame.TDeliver); d.Peer != y.ID {
			t.Fatalf("x %d: from %s", i, d.Peer)
		}
	}
	elapsed := time.Since(begin)
	delivered := <-got
	errs := <-rateErrs
	max := 20 + int(20*(elapsed.Seconds()+1))
	if delivered > max || delivered < 20 {
		t.Fatalf("victim got %d of %d flood messages in %s; the limit allows 20..%d", delivered, flood, elapsed, max)
	}
	if errs < 1 {
		t.Fatal("flooder was not told it is rate limited")
	}
	if v := in.metric("flower_bootstrap_rate_limited_total", ""); v < flood-float64(max) {
		t.Fatalf("rate_limited_total = %v", v)
	}
	t.Logf("flood: %d sent, %d delivered in %s, %d rate-limit errors", flood, delivered, elapsed, errs)
}

// A peer that stops reading is dropped once its bounded send queue is full;
// the server's memory does not follow the sender.
func TestSlowReaderDropped(t *testing.T) {
	in := start(t, nil, "--peer-rate", "100000", "--peer-burst", "100000",
		"--send-queue", "64", "--send-queue-bytes", "262144", "--write-timeout", "30s")
	slow := dial(t, in.ws(), client.Options{}) // never reads
	sender := dial(t, in.ws(), client.Options{})
	bystander := dial(t, in.ws(), client.Options{})
	rssBefore := in.metric("process_resident_memory_bytes", "")

	payload := bytes.Repeat([]byte("s"), frame.MaxSignal)
	// Watch the server's queued bytes while pushing; stop at the error.
	maxQueued := 0.0
	errc := make(chan frame.Frame, 1)
	go func() {
		ctx, cancel := contextWithTimeout(60 * time.Second)
		defer cancel()
		for {
			f, err := sender.Recv(ctx)
			if err != nil {
				close(errc)
				return
			}
			if f.Type == frame.TError {
				errc <- f
				return
			}
		}
	}()
	sent := 0
	var gotErr frame.Frame
push:
	for sent < 20000 { // at most 320 MiB
		select {
		case f, ok := <-errc:
			if !ok {
				t.Fatal("sender connection failed")
			}
			gotErr = f
			break push
		default:
		}
		if err := sender.Signal(ctxT(t), slow.ID, payload); err != nil {
			t.Fatal(err)
		}
		sent++
		if sent%200 == 0 {
			maxQueued = max(maxQueued, in.metric("flower_bootstrap_send_queue_bytes", ""))
		}
	}
	if gotErr.Code != frame.CodeUnknownTarget || gotErr.Peer != slow.ID {
		t.Fatalf("after %d messages the sender got %+v; want unknown_target for the dropped slow reader", sent, gotErr)
	}
	if v := in.metric("flower_bootstrap_slow_reader_drops_total", ""); v != 1 {
		t.Fatalf("slow_reader_drops_total = %v", v)
	}
	if maxQueued > 262144+float64(frame.MaxFrame) {
		t.Fatalf("queued bytes reached %v, over the bound", maxQueued)
	}
	rssAfter := in.metric("process_resident_memory_bytes", "")
	t.Logf("pushed %d x 16 KiB (%d MiB) before the drop; max queued %v B; RSS %0.f -> %0.f MiB",
		sent, sent*len(payload)>>20, maxQueued, rssBefore/(1<<20), rssAfter/(1<<20))
	if rssAfter-rssBefore > 64<<20 {
		t.Fatalf("server RSS grew by %.0f MiB", (rssAfter-rssBefore)/(1<<20))
	}
	// The slow reader finds its connection closed once it reads again.
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	for {
		if _, err := slow.Recv(ctx); err != nil {
			break
		}
	}
	// Everyone else is served (the sender first reads the errors for the
	// messages it sent after the drop).
	if err := sender.Send(ctxT(t), &frame.Frame{Type: frame.TPing, ReqID: 2}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := sender.Recv(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == frame.TPong {
			break
		}
		if f.Type != frame.TError || f.Code != frame.CodeUnknownTarget {
			t.Fatalf("sender got %s %s", f.Type, f.Code)
		}
	}
	ping(t, bystander, 3)
	if err := sender.Signal(ctxT(t), bystander.ID, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	recvType(t, bystander, frame.TDeliver)
}

// Malformed, oversized, unknown and out-of-order frames get a clear error,
// and a close only where it must; everyone else keeps being served.
func TestBadFrames(t *testing.T) {
	in := start(t, nil)
	c := dial(t, in.ws(), client.Options{})
	other := dial(t, in.ws(), client.Options{})
	send := func(b []byte) {
		t.Helper()
		if err := c.SendRaw(ctxT(t), b); err != nil {
			t.Fatal(err)
		}
	}
	send([]byte{9, byte(frame.TPing), 0, 0, 0, 1})
	expectError(t, c, frame.CodeBadVersion)
	send([]byte{frame.Version, 0x7e})
	expectError(t, c, frame.CodeUnknownType)
	send([]byte{frame.Version, byte(frame.TSignal), 1, 2})
	expectError(t, c, frame.CodeMalformed)
	send([]byte{frame.Version})
	expectError(t, c, frame.CodeMalformed)
	send((&frame.Frame{Type: frame.THello}).Append(nil))
	expectError(t, c, frame.CodeOutOfOrder)
	send((&frame.Frame{Type: frame.TWelcome}).Append(nil))
	expectError(t, c, frame.CodeOutOfOrder)
	if err := c.Conn().Write(ctxT(t), websocket.MessageText, []byte(`{"json":true}`)); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, frame.CodeMalformed)
	ping(t, c, 1) // still connected after all that

	// Oversized: an error frame, then a close with status 1009.
	send(make([]byte, frame.MaxFrame+100))
	expectError(t, c, frame.CodeTooLarge)
	_, err := c.Recv(ctxT(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v (%v), want 1009", s, err)
	}

	// Before authentication anything but Hello is refused and closed.
	_, err = client.Dial(ctxT(t), in.ws(), client.Options{Hello: func(frame.Frame, string) frame.Frame {
		return frame.Frame{Type: frame.TPing}
	}})
	var rej *client.ErrRejected
	if !errors.As(err, &rej) || rej.Frame.Code != frame.CodeOutOfOrder {
		t.Fatalf("ping before hello: %v", err)
	}
	ping(t, other, 2)
	if v := in.metric("flower_bootstrap_frames_bad_total", ""); v < 7 {
		t.Fatalf("frames_bad_total = %v", v)
	}
}

// Graceful shutdown tells peers where to reconnect and closes with 1001.
func TestGracefulShutdown(t *testing.T) {
	alt := "ws://127.0.0.1:1/v1/ws"
	in := start(t, nil, "--alternates", alt)
	c := dial(t, in.ws(), client.Options{})
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ga := recvType(t, c, frame.TGoAway)
	if len(ga.URLs) != 1 || ga.URLs[0] != alt || ga.Text == "" {
		t.Fatalf("goaway %+v", ga)
	}
	_, err := c.Recv(ctxT(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v (%v), want 1001", s, err)
	}
	select {
	case err := <-in.done:
		in.done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, in.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("bootstrap did not exit after SIGTERM")
	}
}

// Operations: health, readiness, metrics, landmarks, probe, env config,
// max peers, per-IP limit, keepalive and idle timeout.
func TestOperations(t *testing.T) {
	in := start(t, []string{"FLOWER_LOCALITIES=5", "FLOWER_LANDMARKS=https://lm1.example/p,https://lm2.example/p"},
		"--max-peers", "3", "--ping-interval", "200ms", "--idle-timeout", "1s", "--allow-origins", "https://a.example")
	if code, body := in.get("/healthz", ""); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}
	code, body := in.get("/v1/landmarks", "https://a.example")
	var lm struct {
		Localities int      `json:"localities"`
		Landmarks  []string `json:"landmarks"`
		Probe      string   `json:"probe"`
	}
	if err := json.Unmarshal([]byte(body), &lm); err != nil || code != 200 {
		t.Fatalf("landmarks %d %s %v", code, body, err)
	}
	if lm.Localities != 5 || len(lm.Landmarks) != 2 || lm.Landmarks[1] != "https://lm2.example/p" {
		t.Fatalf("landmarks from env: %+v", lm)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+lm.Probe, nil)
	req.Header.Set("Origin", "https://a.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://a.example" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("probe %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodOptions, "http://"+in.addr+"/v1/entry", nil)
	req.Header.Set("Origin", "https://a.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
	}
	for _, m := range []string{"process_resident_memory_bytes", "go_goroutines", "flower_bootstrap_peers"} {
		if _, body := in.get("/metrics", ""); !strings.Contains(body, "\n"+m+" ") {
			t.Fatalf("metrics lack %s", m)
		}
	}

	// Keepalive: a peer that sends ping frames (every ping interval, as its
	// Welcome says) stays past the idle timeout; a silent one is dropped.
	live := dial(t, in.ws(), client.Options{})
	mute := dial(t, in.ws(), client.Options{})
	if live.Welcome.PingInterval != 0 { // 200ms rounds down to 0 s
		t.Fatalf("welcome ping interval %d", live.Welcome.PingInterval)
	}
	readErr := make(chan error, 1)
	go func() {
		for i := range 20 {
			if err := live.Send(ctxT(t), &frame.Frame{Type: frame.TPing, ReqID: uint32(i)}); err != nil {
				readErr <- err
				return
			}
			ctx, cancel := contextWithTimeout(2 * time.Second)
			f, err := live.Recv(ctx)
			cancel()
			if err != nil || f.Type != frame.TPong {
				readErr <- fmt.Errorf("pong %d: %v %v", i, f.Type, err)
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
		readErr <- nil
	}()
	third := dial(t, in.ws(), client.Options{})
	_, err = client.Dial(ctxT(t), in.ws(), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("4th peer with --max-peers 3: %v", err)
	}
	if code, _ := in.get("/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz when full: %d", code)
	}
	_ = third.Close()
	eventually(t, 5*time.Second, "mute peer dropped for idleness", func() bool {
		return in.metric("flower_bootstrap_errors_sent_total", `code="idle"`) == 1
	})
	if err := <-readErr; err != nil {
		t.Fatalf("live peer: %v", err)
	}
	eventually(t, 10*time.Second, "only the live peer left", func() bool { return in.metric("flower_bootstrap_peers", "") == 1 })
	_ = mute
	if code, _ := in.get("/readyz", ""); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
}

// Per-IP limit on new connections: a burst beyond it is refused with 429.
func TestPerIPConnectionLimit(t *testing.T) {
	in := start(t, nil, "--ip-rate", "1", "--ip-burst", "3")
	for range 3 {
		dial(t, in.ws(), client.Options{})
	}
	_, err := client.Dial(ctxT(t), in.ws(), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("4th connection in a burst of 3: %v", err)
	}
}

// The portable mode (one reader goroutine per peer, --poller=false) behaves
// the same: signalling, unknown targets, bad and oversized frames, shutdown.
func TestReaderGoroutineMode(t *testing.T) {
	in := start(t, nil, "--poller=false")
	a := dial(t, in.ws(), client.Options{})
	b := dial(t, in.ws(), client.Options{})
	if err := a.Signal(ctxT(t), b.ID, []byte("offer")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, b, frame.TDeliver); d.Peer != a.ID || string(d.Payload) != "offer" {
		t.Fatalf("b got %q from %s", d.Payload, d.Peer)
	}
	if err := b.Signal(ctxT(t), ids.PeerID{1}, nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeUnknownTarget)
	if err := b.SendRaw(ctxT(t), []byte{frame.Version, 0x7e}); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeUnknownType)
	ping(t, b, 9)
	if err := b.SendRaw(ctxT(t), make([]byte, frame.MaxFrame+1)); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeTooLarge)
	if _, err := b.Recv(ctxT(t)); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized: %v", err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	recvType(t, a, frame.TGoAway)
	if _, err := a.Recv(ctxT(t)); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("shutdown: %v", err)
	}
}

// The load generator against the real binary: every peer connects, messages
// are relayed and timed, and the server's RSS is read from /metrics.
func TestLoadtestSmall(t *testing.T) {
	in := start(t, nil, "--peer-rate", "1000", "--peer-burst", "1000", "--ip-rate", "0")
	res, err := loadtest.Run(ctxT(t), loadtest.Config{
		URLs: []string{in.ws()}, Peers: 40, Duration: time.Second, Rate: 20, Payload: 64, Settle: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.PeersConnected != 40 || res.MsgsReceived == 0 || res.MsgsReceived > res.MsgsSent || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.ServerRSSBytes.Before <= 0 || res.ServerRSSBytes.Connected <= 0 || res.RelayP50Ms <= 0 || res.RelayP99Ms < res.RelayP50Ms {
		t.Fatalf("result %+v", res)
	}
	if v := in.metric("flower_bootstrap_relay_total", `result="local"`); v < float64(res.MsgsReceived) {
		t.Fatalf("server relayed %v, client received %d", v, res.MsgsReceived)
	}
}

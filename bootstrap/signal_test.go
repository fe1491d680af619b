package bootstrap_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
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

// recordConn copies what the client writes, to check what the server was sent.
type recordConn struct {
	net.Conn
	mu  *sync.Mutex
	out *bytes.Buffer
}

func (c recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// A hostile service relays this service's nonce to a victim, who signs it for
// the name it dialled (the hostile one's), and presents that Hello here with
// the same Host header. The signature must bind this service's own public
// names, never the Host the client chose: the relay is refused, and the
// honest peer, dialling a configured name, is welcomed.
func TestRelayedHelloRefused(t *testing.T) {
	in := start(t, nil)
	var mu sync.Mutex
	var wire bytes.Buffer
	forged := dialVia(in.addr, &mu, &wire) // evil.example resolves to the real service
	_, err := client.Dial(ctxT(t), "ws://evil.example/v1/ws", client.Options{HTTPClient: forged})
	mu.Lock()
	sent := wire.String()
	mu.Unlock()
	if !strings.Contains(sent, "\r\nHost: evil.example\r\n") {
		t.Fatalf("the forged request did not carry Host: evil.example:\n%s", sent)
	}
	var rej *client.ErrRejected
	if !errors.As(err, &rej) || rej.Frame.Code != frame.CodeAuthFailed {
		t.Fatalf("hello signed for evil.example (Host: evil.example): got %v, want an auth_failed rejection", err)
	}
	// Honest peers dial a configured name: the address, or localhost.
	dial(t, in.ws(), client.Options{})
	_, port, _ := net.SplitHostPort(in.addr)
	dial(t, "ws://localhost:"+port+"/v1/ws", client.Options{})

	// Configured names (here from the environment) replace the derived ones:
	// a peer that dialled svc.example is welcomed, one that signed the
	// listening address no longer is.
	named := start(t, []string{"FLOWER_PUBLIC_NAMES=svc.example, Other.example:8443"})
	dial(t, "ws://svc.example/v1/ws", client.Options{HTTPClient: dialVia(named.addr, &mu, &wire)})
	dial(t, "ws://other.example:8443/v1/ws", client.Options{HTTPClient: dialVia(named.addr, &mu, &wire)})
	_, err = client.Dial(ctxT(t), named.ws(), client.Options{})
	if !errors.As(err, &rej) || rej.Frame.Code != frame.CodeAuthFailed {
		t.Fatalf("hello signed for %s, not a public name: got %v, want auth_failed", named.addr, err)
	}
}

// dialVia is an HTTP client that sends every request, whatever its URL's
// host, to addr, recording what it writes in out.
func dialVia(addr string, mu *sync.Mutex, out *bytes.Buffer) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", addr, err)
			}
			return recordConn{Conn: c, mu: mu, out: out}, nil
		},
	}}
}

package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// Traffic others send never costs a peer its connection. Attackers that know
// a victim's id burst signals of 16 KiB at it (each its full burst of 100,
// written at once: 12.8 MB against a 256 KiB send queue, more than loopback's
// kernel buffers absorb). The victim, reading and handling each delivery,
// stays connected and keeps talking to a third peer; the attackers pay with
// target_busy errors for what did not fit.
func TestFloodCannotDropVictim(t *testing.T) {
	in := start(t, nil) // defaults: bursts of 100 frames, 256 KiB send queues
	floodVictim(t, in, in, 8)
}

// The same across instances: the attackers' signals reach the victim's
// instance over NATS, and the refusal comes back to them as target_busy (not
// unknown_target).
func TestClusterFloodCannotDropVictim(t *testing.T) {
	url := startNATS(t)
	args := []string{"--nats", url}
	attackIn, victimIn := start(t, nil, args...), start(t, nil, args...)
	floodVictim(t, attackIn, victimIn, 8)
}

// floodVictim runs the flood: attackers on attackIn, the victim and a third
// peer on victimIn.
func floodVictim(t *testing.T, attackIn, victimIn *instance, attackers int) {
	t.Helper()
	const burst = 100
	victim := dial(t, victimIn.ws(), client.Options{})
	third := dial(t, victimIn.ws(), client.Options{})
	vFrames, vErr := recvAll(victim, 2*time.Millisecond)
	type attacker struct {
		c      *client.Client
		nc     net.Conn
		frames <-chan frame.Frame
		errc   <-chan error
	}
	var as []*attacker
	isAttacker := map[ids.PeerID]bool{}
	for range attackers {
		a := &attacker{}
		a.c = dial(t, attackIn.ws(), client.Options{HTTPClient: captureConn(attackIn.addr, &a.nc)})
		a.frames, a.errc = recvAll(a.c, 0)
		isAttacker[a.c.ID] = true
		as = append(as, a)
	}
	if attackIn != victimIn {
		// The first signal over NATS needs the victim's subscription there.
		eventually(t, 10*time.Second, "victim reachable over NATS", func() bool {
			if err := third.Signal(ctxT(t), victim.ID, []byte("probe")); err != nil {
				t.Fatal(err)
			}
			f, ok := <-vFrames
			return ok && f.Peer == third.ID
		})
	}
	payload := bytes.Repeat([]byte("f"), frame.MaxSignal)
	var wire []byte
	for range burst {
		wire = appendMaskedFrame(wire, frame.AppendSignal(nil, victim.ID, payload))
	}
	var wg sync.WaitGroup
	for _, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.nc.Write(wire); err != nil {
				t.Errorf("attacker write: %v", err)
			}
		}()
	}
	// Every signal either reaches the victim or comes back to its sender as
	// busy.
	delivered, busy := 0, make([]int, attackers)
	sum := func() int {
		n := 0
		for _, b := range busy {
			n += b
		}
		return n
	}
	deadline := time.After(60 * time.Second)
	for delivered+sum() < attackers*burst {
		select {
		case f, ok := <-vFrames:
			if !ok {
				t.Fatalf("victim disconnected after %d deliveries (%v busy): %v", delivered, busy, <-vErr)
			}
			if f.Type != frame.TDeliver || !isAttacker[f.Peer] {
				t.Fatalf("victim got %s %s from %s", f.Type, f.Code, f.Peer)
			}
			delivered++
		case <-deadline:
			t.Fatalf("after 60s: %d delivered, %v busy of %d", delivered, busy, attackers*burst)
		default:
			for i, a := range as {
				select {
				case f, ok := <-a.frames:
					if !ok {
						t.Fatalf("attacker %d disconnected: %v", i, <-a.errc)
					}
					if f.Type == frame.TError && f.Code == frame.CodeUnknownTarget && f.Peer == victim.ID {
						t.Fatalf("the victim was disconnected: attacker %d got unknown_target about it after %d deliveries", i, delivered)
					}
					if f.Type != frame.TError || f.Code != frame.CodeTargetBusy || f.Peer != victim.ID || f.Ref != frame.TSignal {
						t.Fatalf("attacker %d got %s %s about %s", i, f.Type, f.Code, f.Peer)
					}
					busy[i]++
				default:
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	t.Logf("%d attackers x %d x 16 KiB: %d delivered, refused as busy per attacker %v", attackers, burst, delivered, busy)
	for i, b := range busy {
		if b == 0 {
			t.Fatalf("attacker %d was never told the victim is busy", i)
		}
	}
	// The victim is still connected and served: it exchanges signals with a
	// third peer both ways.
	if err := third.Signal(ctxT(t), victim.ID, []byte("offer")); err != nil {
		t.Fatal(err)
	}
	select {
	case f, ok := <-vFrames:
		if !ok || f.Type != frame.TDeliver || f.Peer != third.ID || string(f.Payload) != "offer" {
			t.Fatalf("victim: %+v (open %v)", f, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("victim did not get the third peer's offer")
	}
	if err := victim.Signal(ctxT(t), third.ID, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, third, frame.TDeliver); d.Peer != victim.ID || string(d.Payload) != "answer" {
		t.Fatalf("third got %q from %s", d.Payload, d.Peer)
	}
	if v := victimIn.metric("flower_bootstrap_slow_reader_drops_total", ""); v != 0 {
		t.Fatalf("slow_reader_drops_total = %v, want 0", v)
	}
	if v := victimIn.metric("flower_bootstrap_relay_total", `result="busy"`); int(v) != sum() {
		t.Fatalf("relay_total busy = %v, want %d", v, sum())
	}
}

// recvAll reads c's frames into a channel until the connection fails (the
// error is then sent on the second channel), spending work on each frame as
// a peer handling it would.
func recvAll(c *client.Client, work time.Duration) (<-chan frame.Frame, <-chan error) {
	frames := make(chan frame.Frame, 1024)
	errc := make(chan error, 1)
	go func() {
		for {
			f, err := c.Recv(context.Background())
			if err != nil {
				errc <- err
				close(frames)
				return
			}
			frames <- f
			time.Sleep(work)
		}
	}()
	return frames, errc
}

// captureConn is an HTTP client that dials addr and stores the connection in
// *c, so that a test can write raw WebSocket frames on it.
func captureConn(addr string, c *net.Conn) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", addr, err)
			}
			*c = nc
			return nc, nil
		},
	}}
}

// appendMaskedFrame appends b as one final binary WebSocket frame from a
// client (masked, with the all-zero key, so the payload is written as is).
func appendMaskedFrame(dst, b []byte) []byte {
	dst = append(dst, 0x82)
	switch n := len(b); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, 0, 0, 0, 0) // mask key
	return append(dst, b...)
}

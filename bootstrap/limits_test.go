package bootstrap_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
)

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

// A peer that never reads costs the server a bounded queue, and it is dropped
// once a write to it is stuck past the write timeout. Meanwhile whoever keeps
// signalling it is told it is busy (the sender pays, not the reader), and
// then, once it is gone, that it is an unknown target. Server memory does not
// follow the sender.
func TestSlowReaderBounded(t *testing.T) {
	const queueBytes = 262144
	in := start(t, nil, "--peer-rate", "100000", "--peer-burst", "100000",
		"--send-queue", "64", "--send-queue-bytes", fmt.Sprint(queueBytes), "--write-timeout", "3s")
	slow := dial(t, in.ws(), client.Options{}) // never reads
	sender := dial(t, in.ws(), client.Options{})
	bystander := dial(t, in.ws(), client.Options{})
	rssBefore := in.metric("process_resident_memory_bytes", "")
	sFrames, sErr := recvAll(sender, 0)

	payload := bytes.Repeat([]byte("s"), frame.MaxSignal)
	maxQueued := 0.0
	sent, busy, dropped := 0, 0, false
	for !dropped {
		if sent >= 20000 { // 320 MiB
			t.Fatalf("after %d signals (%d busy) the slow reader is still connected", sent, busy)
		}
	drain:
		for {
			select {
			case f, ok := <-sFrames:
				switch {
				case !ok:
					t.Fatalf("sender connection failed: %v", <-sErr)
				case f.Type == frame.TError && f.Code == frame.CodeTargetBusy && f.Peer == slow.ID:
					busy++
				case f.Type == frame.TError && f.Code == frame.CodeUnknownTarget && f.Peer == slow.ID:
					dropped = true
				default:
					t.Fatalf("sender got %s %s about %s", f.Type, f.Code, f.Peer)
				}
			default:
				break drain
			}
		}
		if dropped {
			break
		}
		if busy > 0 {
			time.Sleep(5 * time.Millisecond) // the queue is full: keep knocking, gently
		}
		if err := sender.Signal(ctxT(t), slow.ID, payload); err != nil {
			t.Fatal(err)
		}
		sent++
		if sent%50 == 0 {
			maxQueued = max(maxQueued, in.metric("flower_bootstrap_send_queue_bytes", ""))
		}
	}
	if busy == 0 {
		t.Fatalf("the slow reader was dropped after %d signals without its sender ever being told it is busy", sent)
	}
	if v := in.metric("flower_bootstrap_slow_reader_drops_total", ""); v != 1 {
		t.Fatalf("slow_reader_drops_total = %v", v)
	}
	if maxQueued > queueBytes {
		t.Fatalf("queued bytes reached %v, over the %d bound", maxQueued, queueBytes)
	}
	rssAfter := in.metric("process_resident_memory_bytes", "")
	t.Logf("pushed %d x 16 KiB (%d MiB), %d refused as busy, before the write timeout dropped the reader; max queued %v B; RSS %.0f -> %.0f MiB",
		sent, sent*len(payload)>>20, busy, maxQueued, rssBefore/(1<<20), rssAfter/(1<<20))
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
	// signals still in flight).
	if err := sender.Send(ctxT(t), &frame.Frame{Type: frame.TPing, ReqID: 2}); err != nil {
		t.Fatal(err)
	}
	for f := range sFrames {
		if f.Type == frame.TPong {
			break
		}
		if f.Type != frame.TError || (f.Code != frame.CodeUnknownTarget && f.Code != frame.CodeTargetBusy) {
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

package rtc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// connected returns a net with peers 1 and 2 connected.
func connected(t *testing.T, cfg Config) (*testNet, *Manager, *rec, *Manager, *rec) {
	n := newTestNet(t, 0)
	a, ra := n.add(pid(1), cfg)
	b, rb := n.add(pid(2), cfg)
	if err := a.Send(pid(2), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, rb)
	return n, a, ra, b, rb
}

func TestCancelByReceiver(t *testing.T) {
	noLeaks(t)
	_, a, _, b, rb := connected(t, testConfig())
	firstChunk := make(chan struct{}, 1)
	rb.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		s.onWrite = func(int) error {
			select {
			case firstChunk <- struct{}{}:
			default:
			}
			return nil
		}
		rb.objs <- s
		return s, nil
	})
	done := make(chan error, 1)
	go func() {
		done <- a.SendObject(context.Background(), pid(2), 9, nil, 1<<40, neverEnds{})
	}()
	s := recvObj(t, rb)
	<-firstChunk
	b.Cancel(pid(1), 9)
	wantErr(t, sinkClosed(t, s, 5*time.Second), ErrCancelled)
	select {
	case err := <-done:
		wantErr(t, err, ErrCancelled)
	case <-time.After(10 * time.Second):
		t.Fatal("sender did not stop")
	}
	// The connection survives and a new transfer with the same id works.
	if err := a.SendObject(context.Background(), pid(2), 9, nil, 3, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	if err := sinkClosed(t, recvObj(t, rb), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.ProtocolErrors != 0 || st.ConnsOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCancelBySender(t *testing.T) {
	noLeaks(t)
	_, a, _, _, rb := connected(t, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.SendObject(ctx, pid(2), 4, []byte("m"), 1<<40, neverEnds{})
	}()
	s := recvObj(t, rb)
	time.Sleep(50 * time.Millisecond)
	cancel()
	wantErr(t, <-done, context.Canceled)
	wantErr(t, sinkClosed(t, s, 5*time.Second), ErrCancelled)
}

func TestRefusedAndSinkError(t *testing.T) {
	noLeaks(t)
	_, a, _, b, rb := connected(t, testConfig())
	rb.setObject(func(ids.PeerID, uint64, []byte, int64) (Sink, error) { return nil, errors.New("not wanted") })
	err := a.SendObject(context.Background(), pid(2), 1, nil, 10<<20, neverEnds{})
	wantErr(t, err, ErrCancelled)
	rb.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		s.onWrite = func(n int) error {
			if n > 1<<20 {
				return errors.New("disk full")
			}
			return nil
		}
		rb.objs <- s
		return s, nil
	})
	err = a.SendObject(context.Background(), pid(2), 2, nil, 10<<20, neverEnds{})
	wantErr(t, err, ErrCancelled)
	if err := sinkClosed(t, recvObj(t, rb), 5*time.Second); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("sink closed with %v", err)
	}
	if st := b.Stats(); st.ProtocolErrors != 0 || st.TransfersFailed != 2 || st.ConnsOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFlowControl: with a slow sink the sender keeps at most about the
// high-water mark buffered.
func TestFlowControl(t *testing.T) {
	noLeaks(t)
	cfg := testConfig()
	cfg.HighWater = 256 << 10
	_, a, _, _, rb := connected(t, cfg)
	rb.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		s.onWrite = func(int) error { time.Sleep(2 * time.Millisecond); return nil }
		rb.objs <- s
		return s, nil
	})
	c := connOf(t, a, pid(2))
	stop := make(chan struct{})
	maxBuf := make(chan uint64, 1)
	go func() {
		var hi uint64
		for {
			select {
			case <-stop:
				maxBuf <- hi
				return
			default:
			}
			hi = max(hi, c.objBuffered())
			time.Sleep(200 * time.Microsecond)
		}
	}()
	body := pattern(4 << 20)
	if err := a.SendObject(context.Background(), pid(2), 1, nil, int64(len(body)), bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	s := recvObj(t, rb)
	if err := sinkClosed(t, s, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if hi := <-maxBuf; hi > cfg.HighWater+maxFrameSize {
		t.Fatalf("buffered up to %d bytes, high-water mark %d", hi, cfg.HighWater)
	}
	if !bytes.Equal(s.buf.Bytes(), body) {
		t.Fatal("body differs")
	}
}

func TestStallAbort(t *testing.T) {
	noLeaks(t)
	cfg := testConfig()
	cfg.StallTimeout = 300 * time.Millisecond
	_, a, _, b, rb := connected(t, cfg)
	// b's transfer stops after one chunk (raw frames: the manager never
	// stalls by itself).
	cb := connOf(t, b, pid(1))
	if err := cb.objs[0].Send(appendStart(nil, 5, 1000, nil)); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, chunkHeaderSize+100)
	putChunkHeader(chunk, 5)
	if err := cb.objs[0].Send(chunk); err != nil {
		t.Fatal(err)
	}
	ra := a
	_ = ra
	var s *memSink
	select {
	case s = <-a.h.(*rec).objs:
	case <-time.After(5 * time.Second):
		t.Fatal("no object")
	}
	start := time.Now()
	wantErr(t, sinkClosed(t, s, 5*time.Second), ErrStalled)
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("stalled after %v", el)
	}
	if st := a.Stats(); st.Stalls != 1 || st.ConnsOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Late chunks of the aborted transfer are dropped, its abort clears it,
	// and the connection keeps working.
	if err := cb.objs[0].Send(chunk); err != nil {
		t.Fatal(err)
	}
	if err := cb.objs[0].Send(appendReason(nil, fAbort, 5, reasonAck)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(pid(1), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, a.h.(*rec)); string(m.data) != "still here" {
		t.Fatalf("got %q", m.data)
	}
	_ = rb
}

// TestMalformedDisconnectsOnlyOffender: peer 3 misbehaves towards peer 1;
// peer 1 drops it and keeps talking to peer 2.
func TestMalformedDisconnectsOnlyOffender(t *testing.T) {
	noLeaks(t)
	chunk := func(qid uint64, n int) []byte {
		b := make([]byte, chunkHeaderSize+n)
		putChunkHeader(b, qid)
		return b
	}
	cases := []struct {
		name   string
		ctl    [][]byte
		obj    [][]byte
		reason string
	}{
		{name: "unknown type", ctl: [][]byte{{99, 1, 2}}},
		{name: "empty frame", ctl: [][]byte{{}}},
		{name: "object frame on control", ctl: [][]byte{appendQID(nil, fEnd, 1)}},
		{name: "message on object channel", obj: [][]byte{appendMsg(nil, []byte("x"))}},
		{name: "chunk of unknown transfer", obj: [][]byte{chunk(7, 10)}},
		{name: "more than announced", obj: [][]byte{appendStart(nil, 7, 5, nil), chunk(7, 10)}},
		{name: "end before size", obj: [][]byte{appendStart(nil, 7, 50, nil), chunk(7, 10), appendQID(nil, fEnd, 7)}},
		{name: "duplicate start", obj: [][]byte{appendStart(nil, 7, 50, nil), appendStart(nil, 7, 50, nil)}},
		{name: "too many transfers", obj: func() [][]byte {
			var f [][]byte
			for q := range uint64(9) {
				f = append(f, appendStart(nil, q, 50, nil))
			}
			return f
		}()},
		{name: "oversized message", obj: [][]byte{make([]byte, maxFrameSize+100)}},
		{name: "text message", ctl: nil, obj: nil, reason: "text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, 0)
			a, ra := n.add(pid(1), testConfig())
			n.add(pid(2), testConfig())
			bad, rbad := n.add(pid(3), testConfig())
			for _, p := range []byte{2, 3} {
				if err := a.Send(pid(p), []byte("hi")); err != nil {
					t.Fatal(err)
				}
				recvMsg(t, n.recs[pid(p)])
			}
			c := connOf(t, bad, pid(1))
			for _, f := range tc.ctl {
				if err := c.ctl.Send(f); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.obj {
				if err := c.objs[0].Send(f); err != nil {
					t.Fatal(err)
				}
			}
			if tc.reason == "text" {
				if err := c.ctl.SendText("hello"); err != nil {
					t.Fatal(err)
				}
			}
			d := recvDown(t, ra, 10*time.Second)
			if d.peer != pid(3) {
				t.Fatalf("Down of %s", d.peer.Short())
			}
			wantErr(t, d.err, ErrProtocol)
			recvDown(t, rbad, 10*time.Second)
			if err := a.Send(pid(2), []byte("fine")); err != nil {
				t.Fatal(err)
			}
			if m := recvMsg(t, n.recs[pid(2)]); string(m.data) != "fine" {
				t.Fatalf("got %q", m.data)
			}
			if st := a.Stats(); st.ProtocolErrors != 1 || st.ConnsOpen != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

var _ io.Reader = neverEnds{}

// TestCredit: while the Sink takes nothing, the sender stops at the initial
// credit, whatever the channel could buffer.
func TestCredit(t *testing.T) {
	noLeaks(t)
	_, a, _, _, rb := connected(t, testConfig())
	release := make(chan struct{})
	rb.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		s.onWrite = func(int) error { <-release; return nil }
		rb.objs <- s
		return s, nil
	})
	before := a.Stats().BytesSent
	body := pattern(4 << 20)
	done := make(chan error, 1)
	go func() {
		done <- a.SendObject(context.Background(), pid(2), 3, nil, int64(len(body)), bytes.NewReader(body))
	}()
	s := recvObj(t, rb)
	time.Sleep(300 * time.Millisecond)
	sent := a.Stats().BytesSent - before
	if limit := uint64(initialCredit + 8*chunkHeaderSize + startFixedSize); sent > limit {
		t.Fatalf("sent %d bytes without credit (limit %d)", sent, limit)
	}
	close(release)
	if err := sinkClosed(t, s, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.buf.Bytes(), body) {
		t.Fatal("body differs")
	}
}

// TestManyConcurrentTransfers: more SendObject calls than MaxTransfers to one
// peer wait for a slot instead of tripping the receiver's limit.
func TestManyConcurrentTransfers(t *testing.T) {
	noLeaks(t)
	_, a, _, b, rb := connected(t, testConfig())
	const k = MaxTransfers + 5
	errs := make(chan error, k)
	for q := range uint64(k) {
		go func() {
			body := pattern(200<<10 + int(q))
			errs <- a.SendObject(context.Background(), pid(2), q, nil, int64(len(body)), bytes.NewReader(body))
		}()
	}
	for range k {
		if err := sinkClosed(t, recvObj(t, rb), 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for range k {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Stats(); st.ProtocolErrors != 0 || st.TransfersRecv != k {
		t.Fatalf("stats %+v", st)
	}
}

// TestQIDReuseOnAnotherChannel: a qid is reused as soon as SendObject
// returned; the new transfer runs on another object channel while the
// receiver has not yet read the old one's end (its Sink is still inside
// Write), and both arrive with no protocol error.
func TestQIDReuseOnAnotherChannel(t *testing.T) {
	noLeaks(t)
	_, a, _, b, rb := connected(t, testConfig())
	release := make(chan struct{})
	var n int
	rb.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		if n++; n == 1 {
			s.onWrite = func(int) error { <-release; return nil }
		}
		rb.objs <- s
		return s, nil
	})
	for i := range 2 {
		if err := a.SendObject(context.Background(), pid(2), 5, nil, 100, bytes.NewReader(pattern(100))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	first, second := recvObj(t, rb), recvObj(t, rb)
	if err := sinkClosed(t, second, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := sinkClosed(t, first, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.ProtocolErrors != 0 || st.TransfersRecv != 2 {
		t.Fatalf("stats %+v", st)
	}
}

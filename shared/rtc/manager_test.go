package rtc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

func TestMessagesBothWays(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	a, ra := n.add(pid(1), testConfig())
	b, rb := n.add(pid(2), testConfig())
	// While connecting, up to MaxQueued messages wait; more are refused.
	for i := range 64 {
		if err := a.Send(pid(2), msgN(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if c := connOrNil(a, pid(2)); c != nil && c.state == stateConnecting {
		wantErr(t, a.Send(pid(2), []byte("one too many")), ErrQueueFull)
	}
	for i := range 64 {
		if m := recvMsg(t, rb); !bytes.Equal(m.data, msgN(i)) {
			t.Fatalf("queued message %d: %q", i, m.data)
		}
	}
	const k = 200
	for i := range k {
		if err := a.Send(pid(2), msgN(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range k {
		m := recvMsg(t, rb)
		if m.from != pid(1) || !bytes.Equal(m.data, msgN(i)) {
			t.Fatalf("message %d: %q from %s", i, m.data, m.from.Short())
		}
	}
	big := pattern(MaxMessageSize)
	for i := range 3 {
		if err := b.Send(pid(1), msgN(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(pid(1), big); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if m := recvMsg(t, ra); !bytes.Equal(m.data, msgN(i)) {
			t.Fatalf("reply %d: %q", i, m.data)
		}
	}
	if m := recvMsg(t, ra); !bytes.Equal(m.data, big) {
		t.Fatal("64 KiB message garbled")
	}
	if err := a.Send(pid(2), make([]byte, MaxMessageSize+1)); err == nil {
		t.Fatal("oversized message accepted")
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.ConnsOpen != 1 || sb.ConnsOpen != 1 || sa.ConnsCreated != 1 || sb.ConnsCreated != 1 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	if sa.MsgsSent != k+64 || sb.MsgsReceived != k+64 || sa.MsgsReceived != 4 {
		t.Fatalf("counters a %+v b %+v", sa, sb)
	}
}

// TestObjectWithMessages sends an object while messages flow both ways.
func TestObjectWithMessages(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	a, _ := n.add(pid(1), testConfig())
	b, rb := n.add(pid(2), testConfig())
	body := pattern(4<<20 + 12345)
	meta := []byte("signed statement")
	if err := a.Send(pid(2), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, rb)
	done := make(chan error, 1)
	go func() {
		done <- a.SendObject(context.Background(), pid(2), 77, meta, int64(len(body)), bytes.NewReader(body))
	}()
	for i := range 100 {
		if err := a.Send(pid(2), msgN(i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	s := recvObj(t, rb)
	if s.qid != 77 || s.from != pid(1) || !bytes.Equal(s.meta, meta) || s.size != int64(len(body)) {
		t.Fatalf("object header %d %s %q %d", s.qid, s.from.Short(), s.meta, s.size)
	}
	if err := sinkClosed(t, s, 20*time.Second); err != nil {
		t.Fatalf("sink closed with %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.sum() != sha256.Sum256(body) {
		t.Fatal("object body differs")
	}
	for i := range 100 {
		if m := recvMsg(t, rb); !bytes.Equal(m.data, msgN(i)) {
			t.Fatalf("message %d: %q", i, m.data)
		}
	}
	// An empty object and a second one on the same connection.
	if err := a.SendObject(context.Background(), pid(2), 78, nil, 0, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	if s := recvObj(t, rb); sinkClosed(t, s, 5*time.Second) != nil || s.buf.Len() != 0 {
		t.Fatal("empty object")
	}
	if st := b.Stats(); st.TransfersRecv != 2 || st.ConnsCreated != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A body shorter than announced: the receiver's sink is aborted.
	err := a.SendObject(context.Background(), pid(2), 79, nil, 100, bytes.NewReader(make([]byte, 10)))
	wantErr(t, err, ErrShortBody)
	wantErr(t, sinkClosed(t, recvObj(t, rb), 5*time.Second), ErrCancelled)
}

func TestGlare(t *testing.T) {
	noLeaks(t)
	for round := range 5 {
		n := newTestNet(t, time.Duration(round)*time.Millisecond)
		a, ra := n.add(pid(1), testConfig())
		b, rb := n.add(pid(2), testConfig())
		start := make(chan struct{})
		errs := make(chan error, 2)
		go func() { <-start; errs <- a.Send(pid(2), []byte("from a")) }()
		go func() { <-start; errs <- b.Send(pid(1), []byte("from b")) }()
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if m := recvMsg(t, rb); string(m.data) != "from a" {
			t.Fatalf("b got %q", m.data)
		}
		if m := recvMsg(t, ra); string(m.data) != "from b" {
			t.Fatalf("a got %q", m.data)
		}
		sa, sb := a.Stats(), b.Stats()
		if sa.ConnsOpen != 1 || sb.ConnsOpen != 1 || sa.ConnsOpened != 1 || sb.ConnsOpened != 1 {
			t.Fatalf("round %d: a %+v\nb %+v", round, sa, sb)
		}
		select {
		case d := <-ra.downs:
			t.Fatalf("unexpected Down %v", d.err)
		case d := <-rb.downs:
			t.Fatalf("unexpected Down %v", d.err)
		default:
		}
		n.close()
	}
}

func TestBudgetAndIdle(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	cfg := testConfig()
	cfg.MaxConns = 2
	a, ra := n.add(pid(1), cfg)
	for i := byte(2); i <= 5; i++ {
		n.add(pid(i), testConfig())
	}
	for _, p := range []byte{2, 3} {
		if err := a.Send(pid(p), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		recvMsg(t, n.recs[pid(p)])
	}
	// 2 is the least recently used: it goes for 4.
	time.Sleep(5 * time.Millisecond)
	if err := a.Send(pid(3), []byte("again")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, n.recs[pid(3)])
	if err := a.Send(pid(4), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	d := recvDown(t, ra, 5*time.Second)
	if d.peer != pid(2) {
		t.Fatalf("evicted %s", d.peer.Short())
	}
	wantErr(t, d.err, ErrEvicted)
	recvMsg(t, n.recs[pid(4)])
	if d := recvDown(t, n.recs[pid(2)], 10*time.Second); d.peer != pid(1) {
		t.Fatalf("peer 2 saw Down of %s", d.peer.Short())
	}
	// Both connections busy with a transfer: no room for 5.
	blocked := make(chan struct{})
	var stop = make(chan struct{})
	for _, p := range []byte{3, 4} {
		n.recs[pid(p)].setObject(func(_ ids.PeerID, qid uint64, _ []byte, size int64) (Sink, error) {
			s := newMemSink(pid(1), qid, nil, size)
			s.onWrite = func(int) error { <-stop; return errors.New("stopped") }
			return s, nil
		})
	}
	for _, p := range []byte{3, 4} {
		go func() {
			_ = a.SendObject(context.Background(), pid(p), 1, nil, 1<<20, bytes.NewReader(make([]byte, 1<<20)))
			blocked <- struct{}{}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		busy := 0
		for _, c := range a.conns {
			if len(c.outs) > 0 {
				busy++
			}
		}
		a.mu.Unlock()
		if busy == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("transfers did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantErr(t, a.Send(pid(5), []byte("no room")), ErrBudget)
	close(stop)
	<-blocked
	<-blocked
	if st := a.Stats(); st.ConnsEvicted != 1 || st.ConnsCreated != 3 || st.MsgsDropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIdleClose(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	a, ra := n.add(pid(1), cfg)
	n.add(pid(2), testConfig())
	if err := a.Send(pid(2), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, n.recs[pid(2)])
	d := recvDown(t, ra, 5*time.Second)
	wantErr(t, d.err, ErrIdle)
	if st := a.Stats(); st.ConnsIdleClosed != 1 || st.ConnsOpen != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The remote sees the close too, and a new Send reconnects.
	recvDown(t, n.recs[pid(2)], 10*time.Second)
	if err := a.Send(pid(2), []byte("back")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, n.recs[pid(2)]); string(m.data) != "back" {
		t.Fatalf("got %q", m.data)
	}
}

func TestConnectTimeout(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	cfg := testConfig()
	cfg.ConnectTimeout = 300 * time.Millisecond
	a, ra := n.add(pid(1), cfg)
	n.add(pid(2), testConfig())
	n.sig.BlackHole(pid(2))
	start := time.Now()
	if err := a.Send(pid(2), []byte("lost")); err != nil {
		t.Fatal(err)
	}
	d := recvDown(t, ra, 5*time.Second)
	wantErr(t, d.err, ErrConnectTimeout)
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("timed out after %v", el)
	}
	if st := a.Stats(); st.ConnsFailed != 1 || st.ConnsConnecting != 0 {
		t.Fatalf("stats %+v", st)
	}
	_, err := a.openConn(context.Background(), pid(2))
	wantErr(t, err, ErrConnectTimeout)
}

func TestSignalFailed(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	a, ra := n.add(pid(1), testConfig())
	start := time.Now()
	if err := a.Send(pid(9), []byte("nobody")); err != nil {
		t.Fatal(err)
	}
	d := recvDown(t, ra, 2*time.Second)
	if d.peer != pid(9) {
		t.Fatalf("Down of %s", d.peer.Short())
	}
	wantErr(t, d.err, ErrUnreachable)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v", el)
	}
	err := a.SendObject(context.Background(), pid(9), 1, nil, 1, bytes.NewReader([]byte{1}))
	wantErr(t, err, ErrUnreachable)
}

func TestRemoteClose(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	a, ra := n.add(pid(1), testConfig())
	b, rb := n.add(pid(2), testConfig())
	// An incoming transfer at a is open when b closes: its sink is closed
	// with an error before Down.
	s := make(chan *memSink, 1)
	ra.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		m := newMemSink(from, qid, meta, size)
		s <- m
		return m, nil
	})
	if err := a.Send(pid(2), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, rb)
	go func() {
		_ = b.SendObject(context.Background(), pid(1), 5, nil, 10<<20, io.LimitReader(neverEnds{}, 64<<10))
	}()
	sink := <-s
	_ = b.Close()
	d := recvDown(t, ra, 10*time.Second)
	if d.peer != pid(2) {
		t.Fatalf("Down of %s", d.peer.Short())
	}
	select {
	case err := <-sink.closed:
		if err == nil {
			t.Fatal("sink closed with nil")
		}
	default:
		t.Fatal("sink still open at Down")
	}
	select {
	case d := <-rb.downs:
		t.Fatalf("Down after Close: %v", d.err)
	default:
	}
	wantErr(t, b.Send(pid(1), []byte("x")), ErrClosed)
}

type neverEnds struct{}

func (neverEnds) Read(p []byte) (int, error) { return len(p), nil }

// TestRefusedWhenFull: a callee whose budget is full of busy connections
// answers an offer with a bye; the caller fails at once.
func TestRefusedWhenFull(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	cfg := testConfig()
	cfg.MaxConns = 1
	b, rb := n.add(pid(2), cfg)
	a, ra := n.add(pid(1), testConfig())
	_, rc := n.add(pid(3), testConfig())
	stop := make(chan struct{})
	rc.setObject(func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
		s := newMemSink(from, qid, meta, size)
		s.onWrite = func(int) error { <-stop; return errors.New("stopped") }
		return s, nil
	})
	sent := make(chan error, 1)
	go func() { sent <- b.SendObject(context.Background(), pid(3), 1, nil, 1<<20, neverEnds{}) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		c := b.conns[pid(3)]
		busy := c != nil && len(c.outs) > 0
		b.mu.Unlock()
		if busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("transfer did not start")
		}
	}
	start := time.Now()
	if err := a.Send(pid(2), []byte("knock")); err != nil {
		t.Fatal(err)
	}
	d := recvDown(t, ra, 2*time.Second)
	wantErr(t, d.err, ErrRefused)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("refusal took %v", el)
	}
	close(stop)
	<-sent
	select {
	case m := <-rb.msgs:
		t.Fatalf("b got %q", m.data)
	default:
	}
}

// TestPeerRestart: a peer that comes back with a new manager (same id)
// replaces the old connection.
func TestPeerRestart(t *testing.T) {
	noLeaks(t)
	n := newTestNet(t, 0)
	a, ra := n.add(pid(1), testConfig())
	b, rb := n.add(pid(2), testConfig())
	if err := a.Send(pid(2), []byte("one")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, rb)
	// b restarts: its old manager disappears without a word.
	_ = b.Close()
	b2, rb2 := n.add(pid(2), testConfig())
	if err := b2.Send(pid(1), []byte("back")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, ra); string(m.data) != "back" {
		t.Fatalf("got %q", m.data)
	}
	if err := a.Send(pid(2), []byte("welcome")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, rb2); string(m.data) != "welcome" {
		t.Fatalf("got %q", m.data)
	}
	// The old connection was reported down (closed by the peer, or
	// replaced by the new session, whichever a saw first).
	d := recvDown(t, ra, 10*time.Second)
	if d.peer != pid(2) || !(errors.Is(d.err, ErrReplaced) || errors.Is(d.err, ErrConnLost)) {
		t.Fatalf("Down %s %v", d.peer.Short(), d.err)
	}
}

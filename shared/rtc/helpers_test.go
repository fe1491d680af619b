package rtc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

func pid(b byte) ids.PeerID {
	var id ids.PeerID
	id[0] = b
	id[15] = b
	return id
}

var debugLogs = os.Getenv("RTC_DEBUG") != ""

func testConfig() Config {
	var log *slog.Logger
	if debugLogs {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Config{
		Logger:         log,
		ConnectTimeout: 5 * time.Second,
		StallTimeout:   2 * time.Second,
		Native:         Native{IncludeLoopback: true, LoopbackOnly: true, UDP4Only: true},
	}
}

type downEv struct {
	peer ids.PeerID
	err  error
}

type msgEv struct {
	from ids.PeerID
	data []byte
}

// rec is a Handler that records what it gets.
type rec struct {
	msgs  chan msgEv
	downs chan downEv
	objs  chan *memSink
	mu    sync.Mutex
	// object decides how Object answers; nil accepts into a memSink.
	object func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error)
}

func (r *rec) setObject(f func(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error)) {
	r.mu.Lock()
	r.object = f
	r.mu.Unlock()
}

func newRec() *rec {
	return &rec{msgs: make(chan msgEv, 4096), downs: make(chan downEv, 64), objs: make(chan *memSink, 64)}
}

func (r *rec) Message(from ids.PeerID, frame []byte) {
	r.msgs <- msgEv{from, append([]byte(nil), frame...)}
}

func (r *rec) Object(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
	r.mu.Lock()
	f := r.object
	r.mu.Unlock()
	if f != nil {
		return f(from, qid, meta, size)
	}
	s := newMemSink(from, qid, meta, size)
	r.objs <- s
	return s, nil
}

func (r *rec) Down(peer ids.PeerID, err error) { r.downs <- downEv{peer, err} }

type memSink struct {
	from   ids.PeerID
	qid    uint64
	meta   []byte
	size   int64
	mu     sync.Mutex
	buf    bytes.Buffer
	closed chan error
	// onWrite, if set, runs for each chunk (outside the lock).
	onWrite func(n int) error
}

func newMemSink(from ids.PeerID, qid uint64, meta []byte, size int64) *memSink {
	return &memSink{from: from, qid: qid, meta: append([]byte(nil), meta...), size: size, closed: make(chan error, 1)}
}

func (s *memSink) Write(chunk []byte) error {
	s.mu.Lock()
	s.buf.Write(chunk)
	n := s.buf.Len()
	f := s.onWrite
	s.mu.Unlock()
	if f != nil {
		return f(n)
	}
	return nil
}

func (s *memSink) Close(err error) {
	select {
	case s.closed <- err:
	default:
		panic("sink closed twice")
	}
}

func (s *memSink) sum() [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sha256.Sum256(s.buf.Bytes())
}

// net is a set of managers on one in-memory bootstrap.
type testNet struct {
	t    *testing.T
	sig  *MemSignals
	mgrs map[ids.PeerID]*Manager
	recs map[ids.PeerID]*rec
}

func newTestNet(t *testing.T, delay time.Duration) *testNet {
	n := &testNet{t: t, sig: NewMemSignals(delay), mgrs: map[ids.PeerID]*Manager{}, recs: map[ids.PeerID]*rec{}}
	t.Cleanup(n.close)
	return n
}

func (n *testNet) add(id ids.PeerID, cfg Config) (*Manager, *rec) {
	n.t.Helper()
	r := newRec()
	m, err := New(id, n.sig.For(id), r, cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.sig.Attach(id, m)
	n.mgrs[id], n.recs[id] = m, r
	return m, r
}

func (n *testNet) close() {
	for _, m := range n.mgrs {
		_ = m.Close()
	}
	n.sig.Close()
}

func recvMsg(t *testing.T, r *rec) msgEv {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	return msgEv{}
}

func recvDown(t *testing.T, r *rec, d time.Duration) downEv {
	t.Helper()
	select {
	case e := <-r.downs:
		return e
	case <-time.After(d):
		t.Fatal("no Down")
	}
	return downEv{}
}

func recvObj(t *testing.T, r *rec) *memSink {
	t.Helper()
	select {
	case s := <-r.objs:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no object")
	}
	return nil
}

func sinkClosed(t *testing.T, s *memSink, d time.Duration) error {
	t.Helper()
	select {
	case err := <-s.closed:
		return err
	case <-time.After(d):
		t.Fatal("sink not closed")
	}
	return nil
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// noLeaks fails the test if goroutines started during it outlive it (checked
// after the test's cleanups, with a grace period for pion's timers).
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			now := runtime.NumGoroutine()
			if now <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after\n%s", before, now, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// connOf returns m's connection to peer (for injecting raw frames).
func connOf(t *testing.T, m *Manager, peer ids.PeerID) *conn {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		m.mu.Lock()
		c := m.conns[peer]
		open := c != nil && c.state == stateOpen
		m.mu.Unlock()
		if open {
			return c
		}
	}
	t.Fatalf("no open connection to %s", peer.Short())
	return nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func msgN(i int) []byte { return []byte(fmt.Sprintf("msg-%06d", i)) }

func connOrNil(m *Manager, peer ids.PeerID) *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns[peer]
}

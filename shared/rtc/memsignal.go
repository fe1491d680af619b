package rtc

import (
	"errors"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// MemSignals is an in-memory bootstrap for tests and measurements: it relays
// payloads between managers of one process, in order per destination, with
// an optional delay, and reports unknown destinations through SignalFailed
// like the real service.
type MemSignals struct {
	mu    sync.Mutex
	peers map[ids.PeerID]*memPeer
	delay time.Duration
	drop  map[ids.PeerID]bool
	wg    sync.WaitGroup
}

type memPeer struct {
	m    *Manager
	in   chan memMsg
	done chan struct{}
}

type memMsg struct {
	from    ids.PeerID
	payload []byte
	fail    error // deliver as SignalFailed
}

// NewMemSignals returns an empty relay; delay is added to every payload.
func NewMemSignals(delay time.Duration) *MemSignals {
	return &MemSignals{peers: make(map[ids.PeerID]*memPeer), delay: delay, drop: make(map[ids.PeerID]bool)}
}

// For returns the Signaller a manager with id self uses.
func (s *MemSignals) For(self ids.PeerID) Signaller { return memSignaller{s: s, self: self} }

// Attach delivers payloads for id to m (replacing an earlier manager of id,
// as when a peer restarts).
func (s *MemSignals) Attach(id ids.PeerID, m *Manager) {
	p := &memPeer{m: m, in: make(chan memMsg, 1024), done: make(chan struct{})}
	s.mu.Lock()
	if old := s.peers[id]; old != nil {
		close(old.done)
	}
	s.peers[id] = p
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-p.done:
				return
			case msg := <-p.in:
				if s.delay > 0 {
					time.Sleep(s.delay)
				}
				if msg.fail != nil {
					p.m.SignalFailed(msg.from, msg.fail)
				} else {
					p.m.HandleSignal(msg.from, msg.payload)
				}
			}
		}
	}()
}

// BlackHole silently drops every payload sent to id (a peer that never
// answers).
func (s *MemSignals) BlackHole(id ids.PeerID) {
	s.mu.Lock()
	s.drop[id] = true
	s.mu.Unlock()
}

// Close stops the delivery goroutines.
func (s *MemSignals) Close() {
	s.mu.Lock()
	for id, p := range s.peers {
		close(p.done)
		delete(s.peers, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

var errUnknownPeer = errors.New("unknown or offline peer")

type memSignaller struct {
	s    *MemSignals
	self ids.PeerID
}

func (ms memSignaller) Signal(to ids.PeerID, payload []byte) error {
	s := ms.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drop[to] {
		return nil
	}
	msg := memMsg{from: ms.self, payload: append([]byte(nil), payload...)}
	p := s.peers[to]
	if p == nil {
		// The real service answers "unknown peer" to the sender.
		p, msg = s.peers[ms.self], memMsg{from: to, fail: errUnknownPeer}
		if p == nil {
			return errUnknownPeer
		}
	}
	select {
	case p.in <- msg:
		return nil
	default:
		return errors.New("rtc: memory relay full")
	}
}

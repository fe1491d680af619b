package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/flowercdn/flower/shared/ids"
)

// Manager keeps the WebRTC connections of one peer: at most one per remote
// peer, at most Config.MaxConns at once. All methods are safe for concurrent
// use.
type Manager struct {
	self ids.PeerID
	sig  Signaller
	h    Handler
	cfg  Config
	log  *slog.Logger
	api  *webrtc.API
	plat platform
	n    counters

	mu     sync.Mutex
	conns  map[ids.PeerID]*conn
	closed bool
	wg     sync.WaitGroup // every goroutine the manager starts
	stop   chan struct{}
}

type counters struct {
	created, opened, failed, evicted, idle, glare, proto  atomic.Uint64
	msgsSent, msgsRecv, msgsDropped, bytesSent, bytesRecv atomic.Uint64
	xferSent, xferRecv, xferFailed, stalls                atomic.Uint64
	sctpT3, sctpFastRtx                                   atomic.Uint64
}

// New starts a manager for peer self.
func New(self ids.PeerID, sig Signaller, h Handler, cfg Config) (*Manager, error) {
	if sig == nil || h == nil {
		return nil, errors.New("rtc: New needs a Signaller and a Handler")
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	m := &Manager{
		self:  self,
		sig:   sig,
		h:     h,
		cfg:   cfg,
		log:   cfg.Logger.With("self", self.Short()),
		conns: make(map[ids.PeerID]*conn),
		stop:  make(chan struct{}),
	}
	api, plat, err := newAPI(&m.cfg, m.log, &m.n)
	if err != nil {
		return nil, fmt.Errorf("rtc: webrtc api: %w", err)
	}
	m.api, m.plat = api, plat
	m.wg.Add(1)
	go m.janitor()
	return m, nil
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	s := Stats{
		ConnsCreated:    m.n.created.Load(),
		ConnsOpened:     m.n.opened.Load(),
		ConnsFailed:     m.n.failed.Load(),
		ConnsEvicted:    m.n.evicted.Load(),
		ConnsIdleClosed: m.n.idle.Load(),
		GlareYields:     m.n.glare.Load(),
		ProtocolErrors:  m.n.proto.Load(),
		MsgsSent:        m.n.msgsSent.Load(),
		MsgsReceived:    m.n.msgsRecv.Load(),
		MsgsDropped:     m.n.msgsDropped.Load(),
		BytesSent:       m.n.bytesSent.Load(),
		BytesReceived:   m.n.bytesRecv.Load(),
		TransfersSent:   m.n.xferSent.Load(),
		TransfersRecv:   m.n.xferRecv.Load(),
		TransfersFailed: m.n.xferFailed.Load(),
		Stalls:          m.n.stalls.Load(),
		SCTPT3Timeouts:  m.n.sctpT3.Load(),
		SCTPFastRetrans: m.n.sctpFastRtx.Load(),
		SocketBuffer:    m.plat.socketBuffer,
		SCTPWindow:      m.plat.sctpWindow,
	}
	m.mu.Lock()
	for _, c := range m.conns {
		if c.state == stateOpen {
			s.ConnsOpen++
		} else {
			s.ConnsConnecting++
		}
	}
	m.mu.Unlock()
	return s
}

// Close closes every connection and waits for the manager's goroutines.
// Down is not called for them; open Sinks are closed with ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	var downs []func()
	for _, c := range m.conns {
		downs = append(downs, c.failLocked(ErrClosed, false))
	}
	m.mu.Unlock()
	for _, f := range downs {
		f()
	}
	m.wg.Wait()
	return nil
}

// HandleSignal takes a payload the bootstrap service delivered from peer
// `from`. Malformed payloads are dropped (and logged).
func (m *Manager) HandleSignal(from ids.PeerID, payload []byte) {
	s, err := decodeSignal(payload)
	if err != nil {
		m.log.Debug("dropping signal", "from", from.Short(), "err", err)
		return
	}
	if from == m.self {
		return
	}
	switch s.kind {
	case sigOffer:
		m.onOffer(from, s)
	case sigAnswer:
		m.onAnswer(from, s)
	case sigCandidate:
		m.onCandidate(from, s)
	case sigBye:
		m.mu.Lock()
		c := m.conns[from]
		var run func()
		if c != nil && c.sess == s.session {
			err := ErrRefused
			if s.reason == byeClosed {
				err = ErrConnLost
			}
			run = c.failLocked(fmt.Errorf("%w: bye from %s", err, from.Short()), true)
		}
		m.mu.Unlock()
		if run != nil {
			run()
		}
	}
}

// SignalFailed fails the attempt to reach `to`: the bootstrap could not relay.
func (m *Manager) SignalFailed(to ids.PeerID, err error) {
	m.mu.Lock()
	c := m.conns[to]
	var run func()
	if c != nil && c.state == stateConnecting {
		run = c.failLocked(fmt.Errorf("%w: %s: %v", ErrUnreachable, to.Short(), err), true)
	}
	m.mu.Unlock()
	if run != nil {
		run()
	}
}

// Send sends one core message to `to`, connecting first if needed; while
// connecting, up to Config.MaxQueued messages wait. It never blocks.
func (m *Manager) Send(to ids.PeerID, frame []byte) error {
	if len(frame) > MaxMessageSize {
		return fmt.Errorf("rtc: send to %s: message of %d bytes exceeds %d", to.Short(), len(frame), MaxMessageSize)
	}
	if to == m.self {
		return fmt.Errorf("rtc: send to self")
	}
	b := appendMsg(make([]byte, 0, 1+len(frame)), frame)
	m.mu.Lock()
	c, evict, err := m.connLocked(to)
	if err != nil {
		m.mu.Unlock()
		m.n.msgsDropped.Add(1)
		return fmt.Errorf("rtc: send to %s: %w", to.Short(), err)
	}
	c.lastUsed = time.Now()
	if c.state == stateConnecting {
		if q := len(c.queue); q >= m.cfg.MaxQueued {
			m.mu.Unlock()
			m.n.msgsDropped.Add(1)
			return fmt.Errorf("rtc: send to %s: %w (%d queued while connecting)", to.Short(), ErrQueueFull, q)
		}
		c.queue = append(c.queue, b)
		m.mu.Unlock()
		evict()
		return nil
	}
	m.mu.Unlock()
	evict()
	if err := c.writeCtl(b); err != nil {
		m.n.msgsDropped.Add(1)
		return fmt.Errorf("rtc: send to %s: %w", to.Short(), err)
	}
	return nil
}

// Cancel gives up the incoming transfer qid from peer `from`: its Sink is
// closed with ErrCancelled and the sender is told to stop.
func (m *Manager) Cancel(from ids.PeerID, qid uint64) {
	m.mu.Lock()
	c := m.conns[from]
	if c == nil || c.state == stateClosed {
		m.mu.Unlock()
		return
	}
	var t *inXfer
	for _, x := range c.ins {
		if x != nil && x.qid == qid && !x.done {
			t = x
		}
	}
	if t == nil {
		m.mu.Unlock()
		return
	}
	run := c.closeInLocked(t, fmt.Errorf("%w by the receiver", ErrCancelled))
	m.mu.Unlock()
	run()
	_ = c.writeCtl(appendReason(nil, fCancel, qid, reasonCancelled))
}

// connLocked returns the connection to `to`, starting an attempt if there is
// none. evict (never nil) closes a connection evicted to make room; call it
// after unlocking.
func (m *Manager) connLocked(to ids.PeerID) (c *conn, evict func(), err error) {
	evict = func() {}
	if m.closed {
		return nil, evict, ErrClosed
	}
	if c := m.conns[to]; c != nil {
		return c, evict, nil
	}
	if evict, err = m.roomLocked(); err != nil {
		return nil, evict, err
	}
	c = m.newConnLocked(to, newSession(), true)
	m.wg.Add(1)
	go c.dial()
	return c, evict, nil
}

// roomLocked makes room for one more connection, evicting the least recently
// used idle one if the budget is full.
func (m *Manager) roomLocked() (func(), error) {
	if len(m.conns) < m.cfg.MaxConns {
		return func() {}, nil
	}
	var lru *conn
	for _, c := range m.conns {
		if c.idleLocked() && (lru == nil || c.lastUsed.Before(lru.lastUsed)) {
			lru = c
		}
	}
	if lru == nil {
		return func() {}, fmt.Errorf("%w: %d connections, none idle", ErrBudget, len(m.conns))
	}
	m.n.evicted.Add(1)
	return lru.failLocked(ErrEvicted, true), nil
}

func newSession() uint64 {
	for {
		if s := rand.Uint64(); s != 0 {
			return s
		}
	}
}

// janitor enforces ConnectTimeout, IdleTimeout and StallTimeout.
func (m *Manager) janitor() {
	defer m.wg.Done()
	tick := min(m.cfg.ConnectTimeout, m.cfg.IdleTimeout, m.cfg.StallTimeout) / 5
	tick = max(10*time.Millisecond, min(tick, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		var runs []func()
		var cancels []func()
		now := time.Now()
		m.mu.Lock()
		for _, c := range m.conns {
			switch {
			case c.state == stateConnecting && now.Sub(c.created) > m.cfg.ConnectTimeout:
				runs = append(runs, c.failLocked(fmt.Errorf("%w after %v", ErrConnectTimeout, m.cfg.ConnectTimeout), true))
			case c.idleLocked() && now.Sub(c.lastUsed) > m.cfg.IdleTimeout:
				m.n.idle.Add(1)
				runs = append(runs, c.failLocked(ErrIdle, true))
			case c.state == stateOpen:
				for _, t := range c.ins {
					if t != nil && !t.done && !t.writing && now.Sub(t.last) > m.cfg.StallTimeout {
						m.n.stalls.Add(1)
						runs = append(runs, c.closeInLocked(t, fmt.Errorf("%w: no data for %v", ErrStalled, m.cfg.StallTimeout)))
						qid := t.qid
						cancels = append(cancels, func() { _ = c.writeCtl(appendReason(nil, fCancel, qid, reasonStalled)) })
					}
				}
			}
		}
		m.mu.Unlock()
		for _, f := range runs {
			f()
		}
		for _, f := range cancels {
			f()
		}
	}
}

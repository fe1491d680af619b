package rtc

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/flowercdn/flower/shared/ids"
)

type connState uint8

const (
	stateConnecting connState = iota
	stateOpen
	stateClosed
)

const (
	// ctlChannelID is the index of the control channel in conn.rd; the
	// object channels follow it (index 1+i for object channel i).
	ctlChannelID = 0
	// numChannels: the control channel and one object channel per transfer
	// slot, so that a transfer's frames never queue behind another's.
	numChannels       = 1 + MaxTransfers
	maxPendingCands   = 64
	lowWaterFallback  = 50 * time.Millisecond
	readerBufferSlack = 1
)

// conn is one PeerConnection to one peer. Fields under "m.mu" are guarded by
// the manager's mutex.
type conn struct {
	m       *Manager
	peer    ids.PeerID
	sess    uint64
	offerer bool
	created time.Time
	opened  chan struct{} // closed when both channels are open
	slots   chan int      // free object channels: one per outgoing transfer (MaxTransfers)
	done    chan struct{} // closed when the connection is failing or closed
	readers sync.WaitGroup
	wmu     sync.Mutex // orders writes on the control channel
	sigMu   sync.Mutex // held while a signalling payload is relayed

	// m.mu
	state         connState
	err           error // why it closed, set before done is closed
	lastUsed      time.Time
	queue         [][]byte // control frames waiting for the channels to open
	pc            *webrtc.PeerConnection
	ctl           *webrtc.DataChannel
	objs          [MaxTransfers]*webrtc.DataChannel
	rd            [numChannels]msgReader
	nOpen         int
	remoteSetting bool
	remoteSet     bool
	pendingRemote []webrtc.ICECandidateInit
	localSent     bool
	pendingLocal  []webrtc.ICECandidateInit
	outs          map[uint64]*outXfer
	ins           [MaxTransfers]*inXfer // by object channel: one transfer at a time on each

	lowMu  sync.Mutex
	lowGen chan struct{} // closed and replaced on each buffered-amount-low event
}

func (m *Manager) newConnLocked(peer ids.PeerID, sess uint64, offerer bool) *conn {
	now := time.Now()
	c := &conn{
		m: m, peer: peer, sess: sess, offerer: offerer, created: now,
		opened: make(chan struct{}), done: make(chan struct{}),
		slots:    make(chan int, MaxTransfers),
		lastUsed: now,
		outs:     make(map[uint64]*outXfer),
		lowGen:   make(chan struct{}),
	}
	for i := range MaxTransfers {
		c.slots <- i
	}
	m.conns[peer] = c
	return c
}

// idleLocked: open and carrying no transfer.
func (c *conn) idleLocked() bool {
	if c.state != stateOpen || len(c.outs) > 0 {
		return false
	}
	for _, t := range c.ins {
		if t != nil && !t.done {
			return false
		}
	}
	return true
}

// failLocked marks c closed and returns the function that tears it down
// (closes the PeerConnection, waits for the readers, closes open Sinks, then
// reports Down if down is set). Call the function after unlocking.
func (c *conn) failLocked(err error, down bool) func() {
	if c.state == stateClosed {
		return func() {}
	}
	m := c.m
	wasOpen := c.state == stateOpen
	c.state = stateClosed
	c.err = err
	close(c.done)
	if m.conns[c.peer] == c {
		delete(m.conns, c.peer)
	}
	if !wasOpen && down {
		m.n.failed.Add(1)
	}
	pc, rds := c.pc, c.rd
	var sinks []func()
	for _, t := range c.ins {
		if t == nil {
			continue
		}
		// A Sink inside Write is closed by its reader when Write returns.
		sinks = append(sinks, c.closeInLocked(t, err))
	}
	m.wg.Add(1)
	return func() {
		go func() {
			defer m.wg.Done()
			if pc != nil {
				if e := closePC(pc); e != nil {
					m.log.Debug("closing peer connection", "peer", c.peer.Short(), "err", e)
				}
			}
			for _, r := range rds {
				if r != nil {
					_ = r.Close()
				}
			}
			c.readers.Wait()
			for _, f := range sinks {
				f()
			}
			if down {
				m.log.Debug("connection down", "peer", c.peer.Short(), "err", err)
				m.h.Down(c.peer, err)
			}
		}()
	}
}

func (c *conn) fail(err error, down bool) {
	c.m.mu.Lock()
	run := c.failLocked(err, down)
	c.m.mu.Unlock()
	run()
}

// writeCtl sends one control frame, refusing when the channel holds more
// than MaxCtlBuffered.
func (c *conn) writeCtl(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.m.mu.Lock()
	ctl, st := c.ctl, c.state
	if st == stateConnecting {
		// Only the answerer can get here (a frame arrived on a channel that
		// opened first): the frame goes out when the connection is up.
		c.queue = append(c.queue, b)
		c.m.mu.Unlock()
		return nil
	}
	c.m.mu.Unlock()
	if st != stateOpen {
		return fmt.Errorf("%w: connection to %s closed", ErrConnLost, c.peer.Short())
	}
	if ba := ctl.BufferedAmount(); ba > c.m.cfg.MaxCtlBuffered {
		return fmt.Errorf("%w: %d bytes buffered on the control channel", ErrQueueFull, ba)
	}
	if err := ctl.Send(b); err != nil {
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	c.m.n.bytesSent.Add(uint64(len(b)))
	if b[0] == byte(fMsg) {
		c.m.n.msgsSent.Add(1)
	}
	return nil
}

// newPC creates the PeerConnection and, on the offerer, its data channels.
func (c *conn) newPC() (*webrtc.PeerConnection, error) {
	m := c.m
	pc, err := m.api.NewPeerConnection(webrtc.Configuration{ICEServers: m.cfg.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	m.n.created.Add(1)
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			c.localCandidate(ic.ToJSON())
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			c.fail(fmt.Errorf("%w: peer connection %s", ErrConnLost, s), true)
		}
	})
	m.mu.Lock()
	if c.state == stateClosed {
		m.mu.Unlock()
		_ = pc.Close()
		return nil, c.err
	}
	c.pc = pc
	m.mu.Unlock()
	if !c.offerer {
		// The answerer takes the offerer's channels as they are announced
		// in-band (DCEP), which orders their opening before any data.
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			i := channelIndex(dc.Label())
			if i < 0 {
				c.protocolError(fmt.Errorf("unexpected data channel %q", dc.Label()))
				return
			}
			c.addChannel(i, dc)
		})
		return pc, nil
	}
	for i := range numChannels {
		label := channelLabel(i)
		dc, err := pc.CreateDataChannel(label, nil)
		if err != nil {
			return nil, fmt.Errorf("data channel %s: %w", label, err)
		}
		c.addChannel(i, dc)
	}
	return pc, nil
}

const (
	ctlLabel = "ctl"
	objLabel = "obj"
)

// channelLabel names channel i: "ctl", then "obj" (object channel 0, the
// label of the single object channel of earlier versions), "obj1" … "obj7".
func channelLabel(i int) string {
	switch i {
	case ctlChannelID:
		return ctlLabel
	case 1:
		return objLabel
	}
	return objLabel + strconv.Itoa(i-1)
}

func channelIndex(label string) int {
	for i := range numChannels {
		if channelLabel(i) == label {
			return i
		}
	}
	return -1
}

// addChannel wires data channel i (ctl or an object channel) of c.
func (c *conn) addChannel(i int, dc *webrtc.DataChannel) {
	m := c.m
	rd := newReader(dc, m.readerLimit(i == ctlChannelID))
	m.mu.Lock()
	if c.state == stateClosed || c.rd[i] != nil {
		dup := c.rd[i] != nil
		m.mu.Unlock()
		_ = rd.Close()
		if dup {
			c.protocolError(fmt.Errorf("second data channel %q", dc.Label()))
		}
		return
	}
	c.rd[i] = rd
	if i == ctlChannelID {
		c.ctl = dc
	} else {
		c.objs[i-1] = dc
	}
	m.mu.Unlock()
	if i != ctlChannelID {
		// The high-water mark bounds the sum over the object channels; a
		// channel's share of the low-water mark makes sure one of them
		// crosses its threshold while the sum drains.
		dc.SetBufferedAmountLowThreshold(m.cfg.LowWater / MaxTransfers)
		dc.OnBufferedAmountLow(c.bufferLow)
	}
	dc.OnOpen(func() { c.channelOpen(i) })
}

// bufferLow runs inside pion's SCTP loop: it only wakes waiting senders.
func (c *conn) bufferLow() {
	c.lowMu.Lock()
	close(c.lowGen)
	c.lowGen = make(chan struct{})
	c.lowMu.Unlock()
}

// objBuffered is what the object channels hold in all (the high-water mark
// bounds it per connection).
func (c *conn) objBuffered() uint64 {
	var n uint64
	for _, dc := range c.objs {
		n += dc.BufferedAmount()
	}
	return n
}

func (c *conn) lowChan() chan struct{} {
	c.lowMu.Lock()
	defer c.lowMu.Unlock()
	return c.lowGen
}

// channelOpen starts channel i's reader; once all are open the connection
// is up and the queued messages go out.
func (c *conn) channelOpen(i int) {
	m := c.m
	m.mu.Lock()
	rd := c.rd[i]
	m.mu.Unlock()
	if rd == nil {
		return
	}
	if err := rd.start(); err != nil {
		c.fail(fmt.Errorf("%w: open channel: %v", ErrConnLost, err), true)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	m.mu.Lock()
	if c.state != stateConnecting {
		m.mu.Unlock()
		return
	}
	c.readers.Add(1)
	m.wg.Add(1)
	go c.readLoop(rd, i)
	c.nOpen++
	if c.nOpen < numChannels {
		m.mu.Unlock()
		return
	}
	c.state = stateOpen
	c.lastUsed = time.Now()
	q := c.queue
	c.queue = nil
	ch := c.ctl
	m.mu.Unlock()
	m.n.opened.Add(1)
	close(c.opened)
	m.log.Debug("connection open", "peer", c.peer.Short(), "offerer", c.offerer, "setup", time.Since(c.created))
	for _, b := range q {
		msg := b[0] == byte(fMsg)
		if err := ch.Send(b); err != nil {
			if msg {
				m.n.msgsDropped.Add(1)
			}
			continue
		}
		m.n.bytesSent.Add(uint64(len(b)))
		if msg {
			m.n.msgsSent.Add(1)
		}
	}
}

// readerLimit bounds what a browser reader may hold unread: on the control
// channel its cap, on an object channel one transfer's window (an honest
// sender runs one transfer at a time on a channel), and two frames of slack.
func (m *Manager) readerLimit(ctl bool) int {
	if ctl {
		return int(m.cfg.MaxCtlBuffered) + 2*maxFrameSize
	}
	return int(m.cfg.ReceiveWindow) + 2*maxFrameSize
}

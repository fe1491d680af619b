package rtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// outXfer is an object this peer is sending.
type outXfer struct {
	cancel    chan struct{} // closed when the receiver cancels
	cancelled bool
	reason    uint8
	allowed   int64         // body bytes the receiver allows (m.mu)
	credit    chan struct{} // closed and replaced when allowed grows (m.mu)
}

// inXfer is an object this peer is receiving. After it ends early (cancel,
// stall, sink error) it stays as a tombstone until the sender's fEnd or
// fAbort, so chunks already in flight are dropped rather than treated as a
// violation. All fields are guarded by the manager's mutex.
type inXfer struct {
	qid      uint64
	sink     Sink
	size     int64
	got      int64
	taken    int64     // bytes the Sink took
	allowed  int64     // credit granted to the sender
	last     time.Time // last progress
	writing  bool      // the reader is inside sink.Write
	closeErr error     // close requested while writing
	done     bool      // sink closed (or being closed)
}

// closeInLocked marks t done and returns the call that closes its Sink with
// err. If the reader is inside Write, the reader closes it afterwards.
func (c *conn) closeInLocked(t *inXfer, err error) func() {
	if t.done {
		return func() {}
	}
	if t.writing {
		if t.closeErr == nil {
			t.closeErr = err
		}
		return func() {}
	}
	t.done = true
	if err != nil {
		c.m.n.xferFailed.Add(1)
	} else {
		c.m.n.xferRecv.Add(1)
	}
	sink := t.sink
	return func() { sink.Close(err) }
}

// SendObject sends an object for query qid to `to`: meta first, then size
// bytes of body in chunks of Config.ChunkSize. It blocks until every byte is
// handed to the data channel (waiting on the channel's buffered amount), or
// until ctx ends, the receiver cancels or the connection fails.
func (m *Manager) SendObject(ctx context.Context, to ids.PeerID, qid uint64, meta []byte, size int64, body io.Reader) error {
	if len(meta) > MaxMetaSize || size < 0 || size > maxObjectSize {
		return fmt.Errorf("rtc: send object %d to %s: meta of %d bytes, size %d", qid, to.Short(), len(meta), size)
	}
	c, err := m.openConn(ctx, to)
	if err != nil {
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), err)
	}
	var slot int
	select { // a transfer slot: the receiver allows MaxTransfers at once
	case slot = <-c.slots:
		defer func() { c.slots <- slot }()
	case <-ctx.Done():
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), ctx.Err())
	case <-c.done:
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), c.err)
	}
	m.mu.Lock()
	if c.state != stateOpen {
		m.mu.Unlock()
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), c.err)
	}
	if c.outs[qid] != nil {
		m.mu.Unlock()
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), ErrBusy)
	}
	t := &outXfer{cancel: make(chan struct{}), allowed: initialCredit, credit: make(chan struct{})}
	c.outs[qid] = t
	c.lastUsed = time.Now()
	obj := c.objs[slot]
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(c.outs, qid)
		c.lastUsed = time.Now()
		m.mu.Unlock()
	}()

	s := sender{c: c, t: t, ctx: ctx, send: obj.Send, buffered: c.objBuffered}
	err = s.run(qid, meta, size, body, m.cfg.ChunkSize)
	if err != nil {
		m.n.xferFailed.Add(1)
		return fmt.Errorf("rtc: send object %d to %s: %w", qid, to.Short(), err)
	}
	m.n.xferSent.Add(1)
	return nil
}

// sender pushes one object through the object channel with flow control.
type sender struct {
	c        *conn
	t        *outXfer
	ctx      context.Context
	send     func([]byte) error
	buffered func() uint64
	timer    *time.Timer
	started  bool  // fStart went out: an abort must follow any failure
	allowed  int64 // the receiver's credit as last read (it only grows)
}

func (s *sender) run(qid uint64, meta []byte, size int64, body io.Reader, chunk int) error {
	// The start frame does not wait for the high-water mark: it is small,
	// one per slot, and goes first on the transfer's own channel.
	if err := s.put(appendStart(nil, qid, size, meta)); err != nil {
		return s.abort(qid, err)
	}
	s.started = true
	buf := make([]byte, chunkHeaderSize+chunk)
	for left := size; left > 0; {
		n := int(min(int64(chunk), left))
		if _, err := io.ReadFull(body, buf[chunkHeaderSize:chunkHeaderSize+n]); err != nil {
			return s.abort(qid, fmt.Errorf("%w: %d of %d bytes read: %v", ErrShortBody, size-left, size, err))
		}
		if err := s.waitCredit(size - left + int64(n)); err != nil {
			return s.abort(qid, err)
		}
		putChunkHeader(buf, qid)
		if err := s.write(buf[:chunkHeaderSize+n]); err != nil {
			return s.abort(qid, err)
		}
		left -= int64(n)
	}
	if err := s.write(appendQID(nil, fEnd, qid)); err != nil {
		return s.abort(qid, err)
	}
	return nil
}

// waitCredit waits until the receiver allows `upto` body bytes.
func (s *sender) waitCredit(upto int64) error {
	if upto <= s.allowed {
		return nil // most chunks: no lock
	}
	m := s.c.m
	for {
		m.mu.Lock()
		s.allowed = s.t.allowed
		ch := s.t.credit
		m.mu.Unlock()
		if upto <= s.allowed {
			return nil
		}
		select {
		case <-ch:
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.t.cancel:
			return fmt.Errorf("%w by the receiver (reason %d)", ErrCancelled, s.t.reason)
		case <-s.c.done:
			return s.c.err
		}
	}
}

// write waits until the object channels are below the high-water mark,
// then sends b.
func (s *sender) write(b []byte) error {
	hw := s.c.m.cfg.HighWater
	for {
		low := s.c.lowChan()
		if s.buffered() <= hw {
			break
		}
		if s.timer == nil {
			s.timer = time.NewTimer(lowWaterFallback)
		} else {
			s.timer.Reset(lowWaterFallback)
		}
		select {
		case <-low:
		case <-s.timer.C: // a safety net; the low-water event is what wakes us
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.t.cancel:
			return fmt.Errorf("%w by the receiver (reason %d)", ErrCancelled, s.t.reason)
		case <-s.c.done:
			return s.c.err
		}
	}
	return s.put(b)
}

// put sends b unless the transfer was cancelled or the connection failed.
func (s *sender) put(b []byte) error {
	select {
	case <-s.t.cancel:
		return fmt.Errorf("%w by the receiver (reason %d)", ErrCancelled, s.t.reason)
	case <-s.c.done:
		return s.c.err
	default:
	}
	if err := s.send(b); err != nil {
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	s.c.m.n.bytesSent.Add(uint64(len(b)))
	return nil
}

// abort tells the receiver the transfer is over (unless the connection is
// gone) and returns err.
func (s *sender) abort(qid uint64, err error) error {
	reason := reasonCancelled
	switch {
	case errors.Is(err, ErrShortBody):
		reason = reasonShort
	case errors.Is(err, ErrCancelled):
		reason = reasonAck
	}
	select {
	case <-s.c.done:
	default:
		if !s.started {
			break
		}
		// The abort is not flow-controlled: it is 10 bytes and must follow
		// the chunks already queued.
		b := appendReason(nil, fAbort, qid, reason)
		if e := s.send(b); e == nil {
			s.c.m.n.bytesSent.Add(uint64(len(b)))
		}
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	return err
}

// openConn returns an open connection to `to`, connecting if needed and
// following a replacement (glare) of a connection still being set up.
func (m *Manager) openConn(ctx context.Context, to ids.PeerID) (*conn, error) {
	if to == m.self {
		return nil, errors.New("rtc: connection to self")
	}
	for {
		m.mu.Lock()
		c, evict, err := m.connLocked(to)
		if err == nil {
			c.lastUsed = time.Now()
		}
		m.mu.Unlock()
		evict()
		if err != nil {
			return nil, err
		}
		select {
		case <-c.opened:
			return c, nil
		case <-c.done:
			if errors.Is(c.err, ErrReplaced) {
				continue
			}
			return nil, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readLoop reads one channel until it fails; a bad frame disconnects the peer.
// i is the channel's index (ctlChannelID, or 1+ the object channel).
func (c *conn) readLoop(rd msgReader, i int) {
	ctl := i == ctlChannelID
	m := c.m
	defer m.wg.Done()
	defer c.readers.Done()
	buf := make([]byte, maxFrameSize+readerBufferSlack)
	for {
		n, err := rd.ReadMsg(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) || errors.Is(err, errTextMessage) {
				c.protocolError(err)
			} else {
				c.fail(fmt.Errorf("%w: read: %v", ErrConnLost, err), true)
			}
			return
		}
		m.n.bytesRecv.Add(uint64(n))
		f, err := decodeFrame(buf[:n], ctl)
		if err == nil {
			err = c.handle(f, i-1)
		}
		if err != nil {
			c.protocolError(err)
			return
		}
	}
}

func (c *conn) protocolError(err error) {
	c.m.n.proto.Add(1)
	c.m.log.Warn("disconnecting peer", "peer", c.peer.Short(), "err", err)
	c.fail(fmt.Errorf("%w: %v", ErrProtocol, err), true)
}

// handle acts on one frame from the peer that arrived on object channel ch
// (-1: the control channel). An error is a protocol violation.
func (c *conn) handle(f frame, ch int) error {
	m := c.m
	now := time.Now()
	m.mu.Lock()
	if c.state == stateClosed {
		m.mu.Unlock()
		return nil
	}
	c.lastUsed = now
	switch f.typ {
	case fMsg:
		m.mu.Unlock()
		m.n.msgsRecv.Add(1)
		m.h.Message(c.peer, f.data)
		return nil
	case fCancel:
		if t := c.outs[f.qid]; t != nil && !t.cancelled {
			t.cancelled, t.reason = true, f.reason
			close(t.cancel)
		}
		m.mu.Unlock()
		return nil
	case fCredit:
		if t := c.outs[f.qid]; t != nil && f.size > t.allowed {
			t.allowed = f.size
			close(t.credit)
			t.credit = make(chan struct{})
		}
		m.mu.Unlock()
		return nil
	case fStart:
		if old := c.ins[ch]; old != nil {
			m.mu.Unlock()
			return fmt.Errorf("transfer %d started while %d runs on object channel %d", f.qid, old.qid, ch)
		}
		// The same qid may still be running on another channel: a sender
		// reuses a qid only after its end or abort went out on the old
		// channel, whose reader may not have reached it yet.
		t := &inXfer{qid: f.qid, size: f.size, last: now, writing: true, allowed: initialCredit}
		c.ins[ch] = t
		m.mu.Unlock()
		sink, err := m.h.Object(c.peer, f.qid, f.meta, f.size)
		m.mu.Lock()
		t.writing = false
		if err != nil || sink == nil {
			t.done = true
			m.n.xferFailed.Add(1)
			m.mu.Unlock()
			m.log.Debug("object refused", "peer", c.peer.Short(), "qid", f.qid, "err", err)
			_ = c.writeCtl(appendReason(nil, fCancel, f.qid, reasonRefused))
			return nil
		}
		t.sink = sink
		pending := t.closeErr
		var run func()
		if pending != nil { // the connection failed or Cancel came during Object
			t.closeErr = nil
			run = c.closeInLocked(t, pending)
		}
		m.mu.Unlock()
		if run != nil {
			run()
		}
		return nil
	case fChunk:
		t := c.ins[ch]
		if t == nil || t.qid != f.qid {
			m.mu.Unlock()
			return fmt.Errorf("chunk for unknown transfer %d on object channel %d", f.qid, ch)
		}
		if t.got+int64(len(f.data)) > t.size {
			m.mu.Unlock()
			return fmt.Errorf("transfer %d: more than the %d bytes announced", f.qid, t.size)
		}
		if t.got+int64(len(f.data)) > t.allowed {
			m.mu.Unlock()
			return fmt.Errorf("transfer %d: %d bytes beyond the credit of %d", f.qid, t.got+int64(len(f.data))-t.allowed, t.allowed)
		}
		t.got += int64(len(f.data))
		t.last = now
		if t.done {
			m.mu.Unlock()
			return nil // cancelled here; the sender's fAbort is on its way
		}
		t.writing = true
		m.mu.Unlock()
		werr := t.sink.Write(f.data)
		m.mu.Lock()
		t.writing = false
		var grant int64
		if werr == nil && t.closeErr == nil {
			t.taken += int64(len(f.data))
			// Grant in steps of a quarter window, never past the size.
			w := m.cfg.ReceiveWindow
			if next := min(t.taken+w, t.size); next-t.allowed >= w/4 || (next == t.size && next > t.allowed) {
				t.allowed, grant = next, next
			}
		}
		var run func()
		switch {
		case t.closeErr != nil:
			run = c.closeInLocked(t, t.closeErr)
		case werr != nil:
			run = c.closeInLocked(t, fmt.Errorf("rtc: sink: %w", werr))
		}
		m.mu.Unlock()
		if run != nil {
			run()
		}
		if werr != nil {
			_ = c.writeCtl(appendReason(nil, fCancel, f.qid, reasonSinkError))
		}
		if grant > 0 {
			if err := c.writeCtl(appendCredit(nil, f.qid, grant)); err != nil {
				m.log.Debug("credit", "peer", c.peer.Short(), "err", err)
			}
		}
		return nil
	case fEnd, fAbort:
		t := c.ins[ch]
		if t == nil || t.qid != f.qid {
			m.mu.Unlock()
			return fmt.Errorf("end of unknown transfer %d on object channel %d", f.qid, ch)
		}
		c.ins[ch] = nil
		var err error
		switch {
		case f.typ == fAbort:
			err = fmt.Errorf("%w by the sender (reason %d)", ErrCancelled, f.reason)
		case t.got != t.size:
			m.mu.Unlock()
			return fmt.Errorf("transfer %d ended after %d of %d bytes", f.qid, t.got, t.size)
		}
		run := c.closeInLocked(t, err)
		m.mu.Unlock()
		run()
		return nil
	}
	m.mu.Unlock()
	return fmt.Errorf("unexpected frame type %d", f.typ)
}

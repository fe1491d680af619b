package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// The send queue of a peer holds two kinds of frames. The peer's own frames
// answer its requests (Pong, Entries, errors): if they overflow the queue the
// peer asked for more than it reads, and it is dropped as a slow reader.
// Relayed frames (Deliver) are traffic others send, which must never cost the
// peer its connection: they may fill only three quarters of the queue, one
// sender only a share of it (an eighth of the bytes but at least one largest
// frame, half of the frames), and a relayed frame that does not fit is
// refused and its SENDER is told (target_busy). The room relayed
// frames leave is what the peer's own answers always have. A reader that
// does not read is still bounded: the queue caps bound memory and a write
// stuck past WriteTimeout drops it.

// qItem is one queued frame; from is the sender of a relayed frame (zero for
// the peer's own frames).
type qItem struct {
	b    []byte
	from ids.PeerID
}

// share is what one sender has queued at one peer (queued + being written).
type share struct {
	from          ids.PeerID
	bytes, frames int
}

// queueCaps are the limits of one peer's send queue, from the config.
type queueCaps struct {
	frames, bytes           int // the whole queue
	relayFrames, relayBytes int // relayed frames, all senders
	shareFrames, shareBytes int // relayed frames of one sender
}

func newQueueCaps(cfg Config) queueCaps {
	return queueCaps{
		frames:      cfg.SendQueue,
		bytes:       cfg.SendQueueBytes,
		relayFrames: max(cfg.SendQueue*3/4, 1),
		relayBytes:  cfg.SendQueueBytes * 3 / 4,
		shareFrames: max(cfg.SendQueue/2, 2), // small frames (ICE candidates) come in bursts
		shareBytes:  max(cfg.SendQueueBytes/8, cfg.MaxFrame),
	}
}

// relayResult is the outcome of offering a relayed frame to a peer.
type relayResult uint8

const (
	relayQueued relayResult = iota
	relayBusy               // no room for this sender: refused, the sender is told
	relayGone               // the peer is closed
)

// enqueue queues one of the peer's own frames; if it overflows the queue the
// peer is dropped as a slow reader. It never blocks.
func (p *peer) enqueue(b []byte) bool {
	s := p.s
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.qFrames >= s.caps.frames || p.qBytes+len(b) > s.caps.bytes {
		p.mu.Unlock()
		s.m.slowDrops.Inc()
		s.log.Info("dropping slow reader", "peer", p.id.Short(), "queued_bytes", p.qBytes)
		p.fail(frame.CodeSlowReader, 0, "send queue full: slow reader", true)
		return false
	}
	p.pushLocked(qItem{b: b})
	p.mu.Unlock()
	return true
}

// enqueueRelay queues a frame another peer sent (from), within the relay
// caps; it never drops p.
func (p *peer) enqueueRelay(from ids.PeerID, b []byte) relayResult {
	c := &p.s.caps
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return relayGone
	}
	if p.qFrames >= c.frames || p.qBytes+len(b) > c.bytes ||
		p.relFrames >= c.relayFrames || p.relBytes+len(b) > c.relayBytes {
		return relayBusy
	}
	i := p.shareIndexLocked(from)
	if i >= 0 && (p.shares[i].frames >= c.shareFrames || p.shares[i].bytes+len(b) > c.shareBytes) {
		return relayBusy
	}
	if i < 0 {
		p.shares = append(p.shares, share{from: from})
		i = len(p.shares) - 1
	}
	p.shares[i].frames++
	p.shares[i].bytes += len(b)
	p.relFrames++
	p.relBytes += len(b)
	p.pushLocked(qItem{b: b, from: from})
	return relayQueued
}

func (p *peer) shareIndexLocked(from ids.PeerID) int {
	for i := range p.shares {
		if p.shares[i].from == from {
			return i
		}
	}
	return -1
}

// pushLocked appends it to the queue and starts the writer if needed.
func (p *peer) pushLocked(it qItem) {
	p.q = append(p.q, it)
	p.qFrames++
	p.qBytes += len(it.b)
	p.s.queued.Add(int64(len(it.b)))
	if !p.writing {
		p.writing = true
		go p.writeLoop()
	}
}

// releaseLocked forgets items that were written or dropped: the counts,
// the senders' shares and the server-wide gauge.
func (p *peer) releaseLocked(items []qItem) {
	total := 0
	for _, it := range items {
		total += len(it.b)
		p.qFrames--
		if it.from.IsZero() {
			continue
		}
		p.relFrames--
		p.relBytes -= len(it.b)
		if i := p.shareIndexLocked(it.from); i >= 0 {
			sh := &p.shares[i]
			sh.frames--
			sh.bytes -= len(it.b)
			if sh.frames == 0 {
				last := len(p.shares) - 1
				p.shares[i] = p.shares[last]
				p.shares = p.shares[:last]
			}
		}
	}
	if len(p.shares) == 0 {
		p.shares = nil
	}
	p.qBytes -= total
	p.s.queued.Add(-int64(total))
}

// writeLoop drains the queue and exits when it is empty.
func (p *peer) writeLoop() {
	s := p.s
	for {
		p.mu.Lock()
		batch := p.q
		p.q = nil
		if len(batch) == 0 || p.closed {
			p.writing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// A socket deadline, not a context: see handshake.
		if p.nc != nil {
			_ = p.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		}
		var err error
		for _, it := range batch {
			if err = p.conn.Write(context.Background(), websocket.MessageBinary, it.b); err != nil {
				break
			}
		}
		if p.nc != nil {
			_ = p.nc.SetWriteDeadline(time.Time{})
		}
		p.mu.Lock()
		p.releaseLocked(batch)
		p.mu.Unlock()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.m.slowDrops.Inc()
				s.log.Info("dropping slow reader: write timed out", "peer", p.id.Short(), "timeout", s.cfg.WriteTimeout)
			} else {
				s.log.Debug("peer write", "peer", p.id.Short(), "err", err)
			}
			p.fail(frame.CodeSlowReader, 0, "write failed", true)
			p.mu.Lock()
			p.writing = false
			p.mu.Unlock()
			return
		}
	}
}

// sendError queues an error frame.
func (p *peer) sendError(code frame.Code, ref frame.Type, about ids.PeerID, req uint32, msg string) {
	p.s.m.errorsSent.WithLabelValues(code.String()).Inc()
	p.enqueue((&frame.Frame{Type: frame.TError, Code: code, Ref: ref, Peer: about, ReqID: req, Text: msg}).Append(nil))
}

// closeQueueLocked marks the peer closed and drops its send queue, keeping
// the server-wide queued-bytes gauge in step. p.mu must be held.
func (p *peer) closeQueueLocked() {
	p.closed = true
	p.releaseLocked(p.q)
	p.q = nil
}

// fail closes the peer: with now, at once (its writes may be stuck); else
// after an error frame and a close handshake, in the background.
func (p *peer) fail(code frame.Code, ref frame.Type, msg string, now bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closeQueueLocked()
	p.mu.Unlock()
	p.s.m.errorsSent.WithLabelValues(code.String()).Inc()
	if now {
		p.cleanup()
		return
	}
	status := websocket.StatusPolicyViolation
	switch code {
	case frame.CodeTooLarge:
		status = websocket.StatusMessageTooBig
	case frame.CodeShuttingDown:
		status = websocket.StatusGoingAway
	case frame.CodeReplaced, frame.CodeIdle:
		status = websocket.StatusNormalClosure
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.s.cfg.WriteTimeout)
		defer cancel()
		ef := frame.Frame{Type: frame.TError, Code: code, Ref: ref, Text: msg}
		_ = p.conn.Write(ctx, websocket.MessageBinary, ef.Append(nil))
		p.closeWith(status, msg)
	}()
}

// tooLarge answers an oversized message: an error frame, then the rest of the
// message is read so that the WebSocket library closes with 1009 itself. (A
// new read must never start inside an unfinished message.)
func (p *peer) tooLarge(rd io.Reader) {
	s := p.s
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	s.m.errorsSent.WithLabelValues(frame.CodeTooLarge.String()).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	msg := fmt.Sprintf("frame larger than %d bytes", s.cfg.MaxFrame)
	ef := frame.Frame{Type: frame.TError, Code: frame.CodeTooLarge, Text: msg}
	_ = p.conn.Write(ctx, websocket.MessageBinary, ef.Append(nil))
	if _, err := io.Copy(io.Discard, rd); err == nil {
		_ = p.conn.Close(websocket.StatusMessageTooBig, msg)
	}
	if p.id != (ids.PeerID{}) {
		p.cleanup()
	}
}

// goAway is the graceful-shutdown close: GoAway frame, then a going-away close.
func (p *peer) goAway(ctx context.Context, ga []byte) {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if already {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.conn.Write(wctx, websocket.MessageBinary, ga); err == nil {
		p.closeWith(websocket.StatusGoingAway, "server shutting down: reconnect elsewhere")
	}
	p.cleanup()
}

// closeWith closes with a status and reason when no read is in progress (the
// close handshake reads the peer's answer), else at once; then cleans up.
func (p *peer) closeWith(status websocket.StatusCode, reason string) {
	if p.rmu.TryLock() {
		_ = p.conn.Close(status, reason)
		p.rmu.Unlock()
	}
	p.cleanup()
}

// cleanup runs once, when the connection is done.
func (p *peer) cleanup() {
	s := p.s
	if !p.cleaned.CompareAndSwap(false, true) {
		return
	}
	if s.poll != nil {
		s.poll.remove(p)
	}
	p.mu.Lock()
	p.closeQueueLocked()
	p.mu.Unlock()
	_ = p.conn.CloseNow()
	s.peers.del(p)
	if s.cl != nil {
		s.cl.unsubscribe(p)
	}
	p.setRegs(nil, true)
	s.npeers.Add(-1)
	s.ipl.release(p.ip)
}

package bootstrap

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// enqueue queues a frame for the peer; a full queue drops the peer as a slow
// reader. It never blocks.
func (p *peer) enqueue(b []byte) bool {
	s := p.s
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if len(p.q) >= s.cfg.SendQueue || p.qBytes+len(b) > s.cfg.SendQueueBytes {
		p.mu.Unlock()
		s.m.slowDrops.Inc()
		s.log.Info("dropping slow reader", "peer", p.id.Short(), "queued_bytes", p.qBytes)
		p.fail(frame.CodeSlowReader, 0, "send queue full: slow reader", true)
		return false
	}
	p.q = append(p.q, b)
	p.qBytes += len(b)
	s.queued.Add(int64(len(b)))
	if !p.writing {
		p.writing = true
		go p.writeLoop()
	}
	p.mu.Unlock()
	return true
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
		for _, b := range batch {
			if err = p.conn.Write(context.Background(), websocket.MessageBinary, b); err != nil {
				break
			}
		}
		if p.nc != nil {
			_ = p.nc.SetWriteDeadline(time.Time{})
		}
		total := 0
		for _, b := range batch {
			total += len(b)
		}
		p.mu.Lock()
		p.qBytes -= total
		p.mu.Unlock()
		s.queued.Add(-int64(total))
		if err != nil {
			s.log.Debug("peer write", "peer", p.id.Short(), "err", err)
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
	dropped := 0
	for _, b := range p.q {
		dropped += len(b)
	}
	p.q = nil
	p.qBytes -= dropped
	p.s.queued.Add(-int64(dropped))
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

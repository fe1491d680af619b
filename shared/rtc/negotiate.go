package rtc

import (
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/flowercdn/flower/shared/ids"
)

// sendSignal encodes and relays one payload for c, unless c is closed; a
// relay error fails c. sigMu makes it atomic with respect to the closed
// check: see signalBarrier.
func (c *conn) sendSignal(s signal) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	c.m.mu.Lock()
	closed := c.state == stateClosed
	c.m.mu.Unlock()
	if closed {
		return
	}
	s.session = c.sess
	b, err := s.encode()
	if err == nil && len(b) > MaxSignalSize {
		err = fmt.Errorf("%v of %d bytes exceeds %d", s.kind, len(b), MaxSignalSize)
	}
	if err == nil {
		err = c.m.sig.Signal(c.peer, b)
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: signal %v to %s: %v", ErrUnreachable, s.kind, c.peer.Short(), err), true)
	}
}

// dial runs the offerer's side: create the connection, send the offer.
func (c *conn) dial() {
	defer c.m.wg.Done()
	pc, err := c.newPC()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrConnLost, err), true)
		return
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: offer: %v", ErrConnLost, err), true)
		return
	}
	c.sendSignal(signal{kind: sigOffer, sdp: offer.SDP})
	c.flushLocal()
}

// accept runs the answerer's side for an offer.
func (c *conn) accept(sdp string) {
	defer c.m.wg.Done()
	pc, err := c.newPC()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrConnLost, err), true)
		return
	}
	if err := c.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.fail(fmt.Errorf("%w: remote offer: %v", ErrProtocol, err), true)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		c.fail(fmt.Errorf("%w: answer: %v", ErrConnLost, err), true)
		return
	}
	c.sendSignal(signal{kind: sigAnswer, sdp: answer.SDP})
	c.flushLocal()
}

// setRemote applies the remote description, then the candidates that came
// before it.
func (c *conn) setRemote(d webrtc.SessionDescription) error {
	m := c.m
	m.mu.Lock()
	pc := c.pc
	if pc == nil || c.remoteSetting || c.state == stateClosed {
		m.mu.Unlock()
		return nil
	}
	c.remoteSetting = true
	m.mu.Unlock()
	if err := pc.SetRemoteDescription(d); err != nil {
		return err
	}
	m.mu.Lock()
	c.remoteSet = true
	cands := c.pendingRemote
	c.pendingRemote = nil
	m.mu.Unlock()
	for _, ci := range cands {
		if err := pc.AddICECandidate(ci); err != nil {
			m.log.Debug("remote candidate", "peer", c.peer.Short(), "err", err)
		}
	}
	return nil
}

// localCandidate trickles a gathered candidate, holding it until our
// description has been signalled so the peer never sees a candidate first.
func (c *conn) localCandidate(ci webrtc.ICECandidateInit) {
	m := c.m
	m.mu.Lock()
	if c.state == stateClosed {
		m.mu.Unlock()
		return
	}
	if !c.localSent {
		c.pendingLocal = append(c.pendingLocal, ci)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	c.sendSignal(candidateSignal(ci))
}

func (c *conn) flushLocal() {
	m := c.m
	m.mu.Lock()
	c.localSent = true
	cands := c.pendingLocal
	c.pendingLocal = nil
	closed := c.state == stateClosed
	m.mu.Unlock()
	if closed {
		return
	}
	for _, ci := range cands {
		c.sendSignal(candidateSignal(ci))
	}
}

func candidateSignal(ci webrtc.ICECandidateInit) signal {
	s := signal{kind: sigCandidate, cand: ci.Candidate, mline: noMLineIndex}
	if ci.SDPMid != nil {
		s.mid = *ci.SDPMid
	}
	if ci.SDPMLineIndex != nil {
		s.mline = *ci.SDPMLineIndex
	}
	return s
}

// onOffer applies the glare rule: when both peers offer at once, the offer
// of the peer with the smaller id wins; the other abandons its own attempt
// (keeping its queued messages) and answers.
func (m *Manager) onOffer(from ids.PeerID, s signal) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	old := m.conns[from]
	var runs []func()
	if old != nil {
		if old.sess == s.session {
			m.mu.Unlock()
			return // a duplicate
		}
		if old.state == stateConnecting && old.offerer && m.self.Less(from) {
			m.mu.Unlock()
			return // glare, and our offer wins: the peer will answer it
		}
		// Our attempt loses the glare, or the peer started a new session
		// (it restarted or dropped the old connection): replace ours.
		down := old.state == stateOpen
		if !down && old.offerer {
			m.n.glare.Add(1)
		}
		q := old.queue
		old.queue = nil
		runs = append(runs, old.failLocked(fmt.Errorf("%w (%s)", ErrReplaced, from.Short()), down))
		c := m.newConnLocked(from, s.session, false)
		c.queue = q
	} else {
		evict, err := m.roomLocked()
		if err != nil {
			m.mu.Unlock()
			m.log.Debug("refusing offer", "from", from.Short(), "err", err)
			if b, e := (&signal{kind: sigBye, session: s.session, reason: byeRefused}).encode(); e == nil {
				_ = m.sig.Signal(from, b)
			}
			return
		}
		runs = append(runs, evict)
		m.newConnLocked(from, s.session, false)
	}
	c := m.conns[from]
	m.wg.Add(1)
	m.mu.Unlock()
	for _, f := range runs {
		f()
	}
	if old != nil {
		// A payload of the old attempt being relayed right now goes out
		// before our answer, so the peer sees it while still connecting
		// (and ignores it) rather than after, as a new session.
		old.sigMu.Lock()
		old.sigMu.Unlock() //nolint:staticcheck // a barrier
	}
	go c.accept(s.sdp)
}

func (m *Manager) onAnswer(from ids.PeerID, s signal) {
	m.mu.Lock()
	c := m.conns[from]
	if c == nil || c.sess != s.session || !c.offerer || c.state != stateConnecting {
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	if err := c.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.sdp}); err != nil {
		c.fail(fmt.Errorf("%w: remote answer: %v", ErrProtocol, err), true)
	}
}

func (m *Manager) onCandidate(from ids.PeerID, s signal) {
	ci := webrtc.ICECandidateInit{Candidate: s.cand}
	if s.mid != "" {
		mid := s.mid
		ci.SDPMid = &mid
	}
	if s.mline != noMLineIndex {
		ml := s.mline
		ci.SDPMLineIndex = &ml
	}
	m.mu.Lock()
	c := m.conns[from]
	if c == nil || c.sess != s.session || c.state == stateClosed {
		m.mu.Unlock()
		return
	}
	if !c.remoteSet || c.pc == nil {
		if len(c.pendingRemote) < maxPendingCands {
			c.pendingRemote = append(c.pendingRemote, ci)
		}
		m.mu.Unlock()
		return
	}
	pc := c.pc
	m.mu.Unlock()
	if err := pc.AddICECandidate(ci); err != nil {
		m.log.Debug("remote candidate", "peer", from.Short(), "err", err)
	}
}

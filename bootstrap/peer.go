package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/flowercdn/flower/bootstrap/dirmsg"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
)

// peer is one authenticated connection. Its memory is the service's capacity
// driver, so it holds only what the hot paths need: no goroutine but the
// reader (a writer goroutine exists only while frames are queued), small
// bufio buffers, and no per-peer timers.
type peer struct {
	s    *Server
	conn *websocket.Conn
	nc   net.Conn        // the socket under conn, for deadlines
	br   *bufio.Reader   // the connection's read buffer (see smallHijacker)
	raw  syscall.RawConn // the socket, to wait for data cheaply
	id   ids.PeerID
	ip   netip.Addr
	lim  *rate.Limiter

	lastSeen atomic.Int64 // unix nanoseconds of the last frame
	serving  atomic.Bool  // a serve goroutine owns the reads (poller mode)
	rmu      sync.Mutex   // held while reading; a close handshake reads too
	cleaned  atomic.Bool
	fd       int32 // the socket's descriptor (poller mode), under the poller's mutex

	mu      sync.Mutex
	q       []qItem // frames waiting for the writer
	qFrames int     // queued + being written
	qBytes  int     // queued + being written
	// Relayed frames (queued + being written), all senders and per sender;
	// see sendq.go.
	relFrames, relBytes int
	shares              []share
	writing             bool // a writer goroutine runs (or the handshake still writes)
	closed              bool

	regs []frame.Reg        // under mu
	sub  *nats.Subscription // under mu: set by the handshake, taken by cleanup

	// Owned by the reader goroutine.
	lastRateErr int64
	reportTAT   int64 // the report rate limit's theoretical arrival time (unix ns)
}

// peekBuf receives the byte MSG_PEEK copies; its content is never used.
var peekBuf [1]byte

// waitReadable blocks until the socket has data (or an error, or EOF) with
// the shallowest possible stack, instead of parking deep inside the WebSocket
// library. An idle peer's reader goroutine then needs only the minimum stack,
// which the GC shrinks it back to after a burst of work.
func (p *peer) waitReadable() error {
	p.rmu.Lock()
	buffered := p.br != nil && p.br.Buffered() > 0
	p.rmu.Unlock()
	if buffered || p.raw == nil {
		return nil
	}
	err := p.raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
	if err != nil {
		return fmt.Errorf("wait for data: %w", err)
	}
	return nil
}

// readLoop is the portable reader: one goroutine per peer, parked in
// waitReadable while the peer is idle. (On Linux the poller is used instead:
// no goroutine at all while idle.)
func (p *peer) readLoop() {
	defer p.cleanup()
	for {
		if err := p.waitReadable(); err != nil {
			p.s.log.Debug("peer gone", "peer", p.id.Short(), "err", err)
			return
		}
		p.rmu.Lock()
		ok := p.readOne()
		p.rmu.Unlock()
		if !ok {
			return
		}
	}
}

// serve runs, in a short-lived goroutine, when the poller saw data: it
// handles every frame that is there, then re-arms the poller and exits.
func (p *peer) serve() {
	if !p.serving.CompareAndSwap(false, true) {
		return // another serve runs; it re-arms when done
	}
	p.rmu.Lock()
	for {
		if !p.readOne() {
			p.rmu.Unlock()
			p.cleanup()
			return
		}
		if p.br != nil && p.br.Buffered() > 0 {
			continue
		}
		p.rmu.Unlock()
		p.serving.Store(false)
		if err := p.s.poll.arm(p); err != nil {
			p.s.log.Debug("poller arm", "peer", p.id.Short(), "err", err)
			p.cleanup()
		}
		return
	}
}

// readOne reads and handles one frame; false means the connection is done.
func (p *peer) readOne() bool {
	s := p.s
	typ, rd, err := p.conn.Reader(context.Background())
	if err != nil {
		s.log.Debug("peer gone", "peer", p.id.Short(), "err", err)
		return false
	}
	bp := s.readBufs.Get().(*[]byte)
	defer s.readBufs.Put(bp)
	n, big, err := readMsg(rd, *bp)
	if err != nil {
		s.log.Debug("peer read", "peer", p.id.Short(), "err", err)
		return false
	}
	p.lastSeen.Store(time.Now().UnixNano())
	switch {
	case big:
		s.m.framesBad.Inc()
		p.tooLarge(rd)
		return false
	case typ != websocket.MessageBinary:
		s.m.framesBad.Inc()
		p.sendError(frame.CodeMalformed, 0, ids.PeerID{}, 0, "binary frames only")
	default:
		p.handle((*bp)[:n])
	}
	return true
}

// handle processes one frame from an authenticated peer.
func (p *peer) handle(b []byte) {
	s := p.s
	if !p.lim.Allow() {
		s.m.rateLimited.Inc()
		// One rate-limit error per second at most: the error must not become
		// the flood.
		if now := time.Now().UnixNano(); now-p.lastRateErr > int64(time.Second) {
			p.lastRateErr = now
			typ := frame.Type(0)
			if len(b) > 1 {
				typ = frame.Type(b[1])
			}
			p.sendError(frame.CodeRateLimited, typ, ids.PeerID{}, 0, "rate limited: frame dropped")
		}
		return
	}
	f, err := frame.Decode(b)
	if err != nil && len(b) > 1 && frame.Type(b[1]) == frame.TReport && b[0] == frame.Version {
		s.m.framesBad.Inc()
		p.badReport(err)
		return
	}
	if err != nil {
		s.m.framesBad.Inc()
		code := frame.CodeMalformed
		switch {
		case errors.Is(err, frame.ErrUnknownType):
			code = frame.CodeUnknownType
		case errors.Is(err, frame.ErrVersion):
			code = frame.CodeBadVersion
		}
		typ := frame.Type(0)
		if len(b) > 1 {
			typ = frame.Type(b[1])
		}
		p.sendError(code, typ, ids.PeerID{}, 0, err.Error())
		return
	}
	s.m.framesIn[f.Type].Inc()
	switch f.Type {
	case frame.TSignal:
		s.relay(p, f.Peer, f.Payload)
	case frame.TRegister:
		p.register(f.Regs)
	case frame.TEntryReq:
		s.m.entryWS.Inc()
		if int(f.Loc) >= s.cfg.Localities {
			p.sendError(frame.CodeBadRegister, f.Type, ids.PeerID{}, f.ReqID, "locality out of range")
			return
		}
		a := s.entries(f.Site, int(f.Loc), int(f.N), p.id)
		p.enqueue((&frame.Frame{Type: frame.TEntries, ReqID: f.ReqID, Local: a.Local, Remote: a.Remote, Random: a.Random}).Append(nil))
	case frame.TPing:
		p.enqueue((&frame.Frame{Type: frame.TPong, ReqID: f.ReqID}).Append(nil))
	case frame.TReport:
		p.report(f.Report)
	case frame.THello:
		s.m.framesBad.Inc()
		p.sendError(frame.CodeOutOfOrder, f.Type, ids.PeerID{}, 0, "already authenticated")
	default:
		// A server-to-peer type sent by a peer.
		s.m.framesBad.Inc()
		p.sendError(frame.CodeOutOfOrder, f.Type, ids.PeerID{}, 0, "frame type not accepted from peers")
	}
}

// register replaces the peer's registrations with regs, after validating all.
func (p *peer) register(regs []frame.Reg) {
	s := p.s
	seen := make(map[ids.SiteID]bool, len(regs))
	for _, r := range regs {
		var why string
		switch {
		case !s.siteAllowed(r.Site):
			why = fmt.Sprintf("site %016x not allowed on this bootstrap", uint64(r.Site))
		case int(r.Loc) >= s.cfg.Localities:
			why = fmt.Sprintf("locality %d out of range [0, %d)", r.Loc, s.cfg.Localities)
		case seen[r.Site]:
			why = fmt.Sprintf("site %016x registered twice", uint64(r.Site))
		case r.Role != frame.RoleDirectory && r.Key != 0:
			why = fmt.Sprintf("site %016x: a key is registered with the directory role only", uint64(r.Site))
		case r.Role == frame.RoleDirectory && !s.layout.SameSite(r.Key, r.Site):
			why = fmt.Sprintf("key %016x does not belong to site %016x", uint64(r.Key), uint64(r.Site))
		case r.Role == frame.RoleDirectory && keyLoc(s.layout, r.Key) != int(r.Loc):
			why = fmt.Sprintf("key %016x is in locality %d, registered for %d", uint64(r.Key), keyLoc(s.layout, r.Key), r.Loc)
		}
		if why != "" {
			p.sendError(frame.CodeBadRegister, frame.TRegister, ids.PeerID{}, 0, why)
			return
		}
		seen[r.Site] = true
	}
	p.setRegs(regs, false)
}

// keyLoc is the locality encoded in a D-ring key.
func keyLoc(l keymgr.Layout, k ids.Key) int {
	_, loc, _ := l.Split(k)
	return loc
}

// setRegs applies a new registration set to the registry (and NATS): the
// D-ring members the peer holds are its directory registrations. Only the
// final call (from cleanup) applies to a closed peer.
func (p *peer) setRegs(regs []frame.Reg, final bool) {
	s := p.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed && !final {
		return
	}
	var added, removed []ids.Member
	for _, r := range p.regs {
		if r.Role == frame.RoleDirectory && !slices.Contains(regs, r) {
			m := ids.Member{Key: r.Key, ID: p.id}
			s.reg.Remove(m, 0)
			removed = append(removed, m)
		}
	}
	for _, r := range regs {
		if r.Role == frame.RoleDirectory && !slices.Contains(p.regs, r) {
			m := ids.Member{Key: r.Key, ID: p.id}
			if err := s.reg.Add(m, 0, 0); err != nil {
				s.log.Warn("registry add", "peer", p.id.Short(), "err", err)
				continue
			}
			added = append(added, m)
		}
	}
	if s.cl != nil {
		s.cl.announce(dirmsg.OpRemove, removed)
		s.cl.announce(dirmsg.OpAdd, added)
	}
	if len(regs) == 0 {
		regs = nil
	}
	p.regs = regs
}

// relay delivers a signalling payload from p to the peer to, with the sender
// stamped by the server. The sender, not the target, pays for a target whose
// queue has no room: the signal is refused with target_busy.
func (s *Server) relay(from *peer, to ids.PeerID, payload []byte) {
	if t := s.peers.get(to); t != nil {
		switch t.enqueueRelay(from.id, frame.AppendDeliver(make([]byte, 0, 2+ids.PeerIDLen+len(payload)), from.id, payload)) {
		case relayQueued:
			s.m.relayLocal.Inc()
		case relayBusy:
			s.m.relayBusy.Inc()
			from.sendError(frame.CodeTargetBusy, frame.TSignal, to, 0, targetBusyText)
		case relayGone:
			s.m.relayUnknown.Inc()
			from.sendError(frame.CodeUnknownTarget, frame.TSignal, to, 0, unknownTargetText)
		}
		return
	}
	if s.cl != nil {
		s.m.relayRemote.Inc()
		s.cl.forward(from.id, to, payload)
		return
	}
	s.m.relayUnknown.Inc()
	from.sendError(frame.CodeUnknownTarget, frame.TSignal, to, 0, unknownTargetText)
}

const (
	targetBusyText    = "target busy: no room for more of your signals to it; dropped, retry later"
	unknownTargetText = "unknown target: no such peer connected"
)

// deliverLocal is relay's second half for a message that came over NATS.
func (s *Server) deliverLocal(from, to ids.PeerID, payload []byte) relayResult {
	t := s.peers.get(to)
	if t == nil {
		return relayGone
	}
	return t.enqueueRelay(from, frame.AppendDeliver(make([]byte, 0, 2+ids.PeerIDLen+len(payload)), from, payload))
}

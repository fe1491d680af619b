package bootstrap

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
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
	fd       int32 // the socket's descriptor (poller mode)

	mu      sync.Mutex
	q       [][]byte // frames waiting for the writer
	qBytes  int      // queued + being written
	writing bool     // a writer goroutine runs (or the handshake still writes)
	closed  bool

	regs []frame.Reg // under mu

	// Owned by the reader goroutine.
	sub         *nats.Subscription
	lastRateErr int64
}

// smallHijacker hands coder/websocket small bufio buffers instead of the 4 KiB
// reader and writer net/http allocates per connection, which would otherwise
// live as long as the WebSocket.
type smallHijacker struct {
	http.ResponseWriter
	rsize, wsize int
	got          *hijacked
}

// hijacked is what the handler keeps from the hijack.
type hijacked struct {
	nc  net.Conn
	br  *bufio.Reader
	raw syscall.RawConn
}

func (h smallHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(c, h.rsize)
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("flush handshake: %w", err)
	}
	h.got.nc, h.got.br = c, br
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			h.got.raw = raw
		}
	}
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(c, h.wsize)), nil
}

func (h smallHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// serveWS upgrades, authenticates and hands the connection to its reader
// goroutine; the HTTP goroutine (and its grown stack) then ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		s.m.conns.WithLabelValues("rejected_shutdown").Inc()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if !s.originAllowed(r.Header.Get("Origin")) {
		s.m.conns.WithLabelValues("rejected_origin").Inc()
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	ip := clientIP(r)
	if !s.ipl.allow(ip) {
		s.m.conns.WithLabelValues("rejected_ip_rate").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	if s.npeers.Load() >= int64(s.cfg.MaxPeers) {
		s.m.conns.WithLabelValues("rejected_full").Inc()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "server full", http.StatusServiceUnavailable)
		return
	}
	if !s.ipl.acquire(ip) {
		s.m.conns.WithLabelValues("rejected_ip_peers").Inc()
		http.Error(w, "too many peers from this address", http.StatusTooManyRequests)
		return
	}
	var hj hijacked
	c, err := websocket.Accept(smallHijacker{w, s.cfg.ReadBuffer, s.cfg.WriteBuffer, &hj}, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the origin allow-list was checked above
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.ipl.release(ip)
		s.m.conns.WithLabelValues("upgrade_failed").Inc()
		s.log.Debug("websocket accept", "remote", r.RemoteAddr, "err", err)
		return
	}
	c.SetReadLimit(int64(s.cfg.MaxFrame + 1))
	p, err := s.handshake(c, r.Host, ip, hj)
	if err != nil {
		if p == nil { // else cleanup released it
			s.ipl.release(ip)
		}
		s.log.Debug("handshake", "remote", r.RemoteAddr, "err", err)
		return
	}
	switch {
	case s.poll == nil:
		go p.readLoop()
	case p.br != nil && p.br.Buffered() > 0:
		go p.serve() // frames came with the hello
	default:
		if err := s.poll.add(p); err != nil {
			s.log.Warn("poller add", "peer", p.id.Short(), "err", err)
			p.cleanup()
		}
	}
}

// handshake sends the challenge, checks the Hello and registers the peer.
func (s *Server) handshake(c *websocket.Conn, host string, ip netip.Addr, hj hijacked) (*peer, error) {
	// Deadlines on the socket rather than a context: the WebSocket library
	// keeps the last context it was given, which would pin a timer context
	// per idle peer.
	ctx := context.Background()
	if hj.nc != nil {
		_ = hj.nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	}
	ch := frame.Frame{Type: frame.TChallenge, MaxFrame: uint32(s.cfg.MaxFrame), Localities: uint16(min(s.cfg.Localities, 0xffff))}
	if _, err := rand.Read(ch.Nonce[:]); err != nil {
		_ = c.CloseNow()
		return nil, fmt.Errorf("nonce: %w", err)
	}
	if err := c.Write(ctx, websocket.MessageBinary, ch.Append(nil)); err != nil {
		s.m.conns.WithLabelValues("handshake_error").Inc()
		return nil, fmt.Errorf("write challenge: %w", err)
	}
	reject := func(code frame.Code, ref frame.Type, msg string, status websocket.StatusCode) error {
		s.m.conns.WithLabelValues(code.String()).Inc()
		s.m.errorsSent.WithLabelValues(code.String()).Inc()
		ef := frame.Frame{Type: frame.TError, Code: code, Ref: ref, Text: msg}
		_ = c.Write(ctx, websocket.MessageBinary, ef.Append(nil))
		_ = c.Close(status, msg)
		return fmt.Errorf("%s: %s", code, msg)
	}
	typ, rd, err := c.Reader(ctx)
	if err != nil {
		s.m.conns.WithLabelValues("handshake_error").Inc()
		return nil, fmt.Errorf("read hello: %w", err)
	}
	bp := s.readBufs.Get().(*[]byte)
	defer s.readBufs.Put(bp)
	n, big, err := readMsg(rd, *bp)
	switch {
	case err != nil:
		s.m.conns.WithLabelValues("handshake_error").Inc()
		return nil, fmt.Errorf("read hello: %w", err)
	case big:
		s.m.conns.WithLabelValues(frame.CodeTooLarge.String()).Inc()
		(&peer{s: s, conn: c}).tooLarge(rd)
		return nil, errors.New("hello frame too large")
	case typ != websocket.MessageBinary:
		return nil, reject(frame.CodeMalformed, 0, "binary frames only", websocket.StatusUnsupportedData)
	}
	f, err := frame.Decode((*bp)[:n])
	switch {
	case errors.Is(err, frame.ErrVersion):
		return nil, reject(frame.CodeBadVersion, 0, err.Error(), websocket.StatusPolicyViolation)
	case err != nil:
		return nil, reject(frame.CodeMalformed, 0, err.Error(), websocket.StatusPolicyViolation)
	case f.Type != frame.THello:
		return nil, reject(frame.CodeOutOfOrder, f.Type, "expected hello first", websocket.StatusPolicyViolation)
	}
	pub := ed25519.PublicKey(f.Key[:])
	if !ed25519.Verify(pub, frame.AuthMessage(host, ch.Nonce), f.Sig[:]) {
		return nil, reject(frame.CodeAuthFailed, frame.THello, "authentication failed: bad signature", websocket.StatusPolicyViolation)
	}
	p := &peer{
		s:       s,
		conn:    c,
		nc:      hj.nc,
		br:      hj.br,
		raw:     hj.raw,
		id:      ids.FromPublicKey(pub),
		ip:      ip,
		lim:     rate.NewLimiter(rate.Limit(s.cfg.PeerRate), s.cfg.PeerBurst),
		writing: true, // hold the writer until Welcome is out
	}
	p.lastSeen.Store(time.Now().UnixNano())
	if n := s.npeers.Add(1); n > int64(s.cfg.MaxPeers) {
		s.npeers.Add(-1)
		return nil, reject(frame.CodeServerFull, frame.THello, "server full", websocket.StatusTryAgainLater)
	}
	if old := s.peers.put(p); old != nil {
		// The old connection is closed first (so it accepts no more
		// registrations), then its registrations move to the new one.
		old.fail(frame.CodeReplaced, 0, "replaced by a newer connection of the same peer", false)
		old.mu.Lock()
		p.regs, old.regs = old.regs, nil
		old.mu.Unlock()
	}
	if s.cl != nil {
		s.cl.subscribe(p)
	}
	s.m.conns.WithLabelValues("accepted").Inc()
	wf := frame.Frame{Type: frame.TWelcome, Peer: p.id, PingInterval: uint16(min(s.cfg.PingInterval/time.Second, 0xffff))}
	if err := c.Write(ctx, websocket.MessageBinary, wf.Append(nil)); err != nil {
		p.cleanup()
		return p, fmt.Errorf("write welcome: %w", err)
	}
	if hj.nc != nil {
		_ = hj.nc.SetDeadline(time.Time{})
	}
	p.mu.Lock()
	p.writing = false
	if len(p.q) > 0 && !p.closed {
		p.writing = true
		go p.writeLoop()
	}
	p.mu.Unlock()
	s.log.Debug("peer connected", "peer", p.id.Short(), "remote", ip)
	return p, nil
}

// readMsg reads one message into buf. big reports a message longer than
// len(buf)-1 bytes (buf is one byte longer than the frame limit).
func readMsg(r io.Reader, buf []byte) (n int, big bool, err error) {
	for {
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
		if n == len(buf) {
			return n, true, nil
		}
	}
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
		n := min(int(f.N), s.cfg.EntryMax)
		peers := s.dir.sample(dirKey{f.Site, f.Loc}, n, p.id, time.Now().UnixMilli())
		p.enqueue((&frame.Frame{Type: frame.TEntries, ReqID: f.ReqID, Peers: peers}).Append(nil))
	case frame.TPing:
		p.enqueue((&frame.Frame{Type: frame.TPong, ReqID: f.ReqID}).Append(nil))
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
		}
		if why != "" {
			p.sendError(frame.CodeBadRegister, frame.TRegister, ids.PeerID{}, 0, why)
			return
		}
		seen[r.Site] = true
	}
	p.setRegs(regs, false)
}

// setRegs applies a new registration set to the directory (and NATS). Only
// the final call (from cleanup) applies to a closed peer.
func (p *peer) setRegs(regs []frame.Reg, final bool) {
	s := p.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed && !final {
		return
	}
	isDir := func(rs []frame.Reg, r frame.Reg) bool {
		for _, x := range rs {
			if x == r {
				return true
			}
		}
		return false
	}
	for _, r := range p.regs {
		if r.Role == frame.RoleDirectory && !isDir(regs, r) {
			s.dir.del(dirKey{r.Site, r.Loc}, p.id, 0)
			if s.cl != nil {
				s.cl.announce(dirRemove, dirKey{r.Site, r.Loc}, p.id)
			}
		}
	}
	for _, r := range regs {
		if r.Role == frame.RoleDirectory && !isDir(p.regs, r) {
			s.dir.put(dirKey{r.Site, r.Loc}, p.id, 0, 0)
			if s.cl != nil {
				s.cl.announce(dirAdd, dirKey{r.Site, r.Loc}, p.id)
			}
		}
	}
	if len(regs) == 0 {
		regs = nil
	}
	p.regs = regs
}

// relay delivers a signalling payload from p to the peer to, with the sender
// stamped by the server.
func (s *Server) relay(from *peer, to ids.PeerID, payload []byte) {
	if t := s.peers.get(to); t != nil {
		s.m.relayLocal.Inc()
		t.enqueue(frame.AppendDeliver(make([]byte, 0, 2+ids.PeerIDLen+len(payload)), from.id, payload))
		return
	}
	if s.cl != nil {
		s.m.relayRemote.Inc()
		s.cl.forward(from.id, to, payload)
		return
	}
	s.m.relayUnknown.Inc()
	from.sendError(frame.CodeUnknownTarget, frame.TSignal, to, 0, "unknown target: no such peer connected")
}

// deliverLocal is relay's second half for a message that came over NATS.
func (s *Server) deliverLocal(from, to ids.PeerID, payload []byte) bool {
	t := s.peers.get(to)
	if t == nil {
		return false
	}
	return t.enqueue(frame.AppendDeliver(make([]byte, 0, 2+ids.PeerIDLen+len(payload)), from, payload))
}

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

// fail closes the peer: with now, at once (its writes may be stuck); else
// after an error frame and a close handshake, in the background.
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

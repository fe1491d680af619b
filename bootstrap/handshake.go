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
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

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
	p, err := s.handshake(c, ip, hj)
	if err != nil {
		if p == nil { // else cleanup closed it and released its slot
			// Every failure before Hello ends here (read error, timeout,
			// garbage, oversized or refused Hello): the connection must be
			// closed, not just forgotten, or its descriptor stays open
			// while its per-IP slot is handed back.
			_ = c.CloseNow()
			s.ipl.release(ip)
		}
		s.log.Debug("handshake", "remote", r.RemoteAddr, "host", r.Host, "err", err)
		return
	}
	if s.poll == nil {
		go p.readLoop()
		return
	}
	// Frames that came with the Hello are in the read buffer, where epoll
	// cannot see them: serve handles them, then re-arms the registration
	// made here (without one the re-arm failed and the peer was dropped).
	// The buffer is looked at before the poller may hand the peer to a
	// serve goroutine.
	buffered := p.br != nil && p.br.Buffered() > 0
	if err := s.poll.add(p); err != nil {
		s.log.Warn("poller add", "peer", p.id.Short(), "err", err)
		p.cleanup()
		return
	}
	if buffered {
		go p.serve()
	}
}

// handshake sends the challenge, checks the Hello and registers the peer.
func (s *Server) handshake(c *websocket.Conn, ip netip.Addr, hj hijacked) (*peer, error) {
	// Deadlines on the socket rather than a context: the WebSocket library
	// keeps the last context it was given, which would pin a timer context
	// per idle peer.
	ctx := context.Background()
	if hj.nc != nil {
		_ = hj.nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	}
	ch := frame.Frame{Type: frame.TChallenge, MaxFrame: uint32(s.cfg.MaxFrame), Localities: uint16(min(s.cfg.Localities, 0xffff)),
		InstanceBits: uint8(s.layout.InstBits)}
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
	if !s.verifyHello(pub, ch.Nonce, f.Sig[:]) {
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

// verifyHello reports whether sig signs the challenge nonce for one of this
// service's public names. The Host header the client sent is never used: a
// hostile service that relays this service's nonce to a victim gets a
// signature for its own name, which is worthless here.
func (s *Server) verifyHello(pub ed25519.PublicKey, nonce [frame.NonceLen]byte, sig []byte) bool {
	for _, name := range s.names {
		if ed25519.Verify(pub, frame.AuthMessage(name, nonce), sig) {
			return true
		}
	}
	return false
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

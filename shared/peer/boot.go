package peer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/locality"
)

// bootSession is the peer's connection to the bootstrap service: it
// declares registrations, asks for entry points and relays WebRTC
// signalling. It reconnects with backoff and declares the registrations
// again; entry requests in flight when the connection drops fail.
type bootSession struct {
	p        *Peer
	wsURL    string
	httpBase string
	key      ed25519.PrivateKey

	id           ids.PeerID
	localities   int
	instanceBits int

	out chan []byte // encoded frames for the current connection

	mu      sync.Mutex
	c       *client.Client
	regs    []frame.Reg
	nextReq uint32
	reqs    map[uint32]entryReq
}

type entryReq struct {
	site ids.SiteID
	at   time.Time
}

// outQueue bounds the frames waiting for the connection.
const outQueue = 1024

// bootURLs derives the WebSocket URL and the HTTP base from the bootstrap
// address (http(s)://host[:port] or ws(s)://host[:port]/v1/ws).
func bootURLs(addr string) (wsURL, httpBase string, err error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", "", fmt.Errorf("bootstrap address %q: %w", addr, err)
	}
	switch u.Scheme {
	case "http", "https":
		httpBase = strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
		wsURL = "ws" + strings.TrimPrefix(httpBase, "http") + "/v1/ws"
	case "ws", "wss":
		wsURL = addr
		httpBase = "http" + strings.TrimPrefix(u.Scheme, "ws") + "://" + u.Host
	default:
		return "", "", fmt.Errorf("bootstrap address %q: want http(s):// or ws(s)://", addr)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("bootstrap address %q: no host", addr)
	}
	return wsURL, httpBase, nil
}

func dialBootstrap(ctx context.Context, p *Peer, addr string, key ed25519.PrivateKey) (*bootSession, error) {
	wsURL, base, err := bootURLs(addr)
	if err != nil {
		return nil, err
	}
	b := &bootSession{p: p, wsURL: wsURL, httpBase: base, key: key, out: make(chan []byte, outQueue), reqs: make(map[uint32]entryReq)}
	c, err := client.Dial(ctx, wsURL, client.Options{Key: key})
	if err != nil {
		return nil, fmt.Errorf("peer: bootstrap: %w", err)
	}
	b.c, b.id = c, c.ID
	b.localities, b.instanceBits = int(c.Challenge.Localities), int(c.Challenge.InstanceBits)
	return b, nil
}

// run serves connections until the peer closes.
func (b *bootSession) run() {
	ctx := b.p.ctx
	backoff := time.Second
	for {
		b.mu.Lock()
		c := b.c
		b.mu.Unlock()
		if c != nil {
			start := time.Now()
			err := b.serve(ctx, c)
			b.dropped(c)
			if ctx.Err() != nil {
				return
			}
			b.p.log.Warn("bootstrap connection lost", "err", err)
			if time.Since(start) > time.Minute {
				backoff = time.Second
			}
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, 30*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nc, err := client.Dial(dctx, b.wsURL, client.Options{Key: b.key})
		cancel()
		if err != nil {
			b.p.log.Warn("bootstrap reconnect", "err", err)
			continue
		}
		b.mu.Lock()
		b.c = nc
		if len(b.regs) > 0 {
			b.enqueue((&frame.Frame{Type: frame.TRegister, Regs: b.regs}).Append(nil))
		}
		b.mu.Unlock()
	}
}

// serve reads frames from c while a writer goroutine drains b.out.
func (b *bootSession) serve(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() { werr <- b.write(ctx, c) }()
	for {
		f, err := c.Recv(ctx)
		if err != nil {
			_ = c.CloseNow()
			cancel()
			<-werr
			return err
		}
		if err := b.handle(f); err != nil {
			_ = c.CloseNow()
			cancel()
			<-werr
			return err
		}
	}
}

func (b *bootSession) write(ctx context.Context, c *client.Client) error {
	interval := time.Duration(c.Welcome.PingInterval) * time.Second / 2
	if interval <= 0 {
		interval = 15 * time.Second
	}
	ping := time.NewTicker(interval)
	defer ping.Stop()
	for {
		var msg []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case msg = <-b.out:
		case <-ping.C:
			msg = (&frame.Frame{Type: frame.TPing}).Append(nil)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.SendRaw(wctx, msg)
		cancel()
		if err != nil {
			_ = c.CloseNow()
			return err
		}
	}
}

func (b *bootSession) handle(f frame.Frame) error {
	p := b.p
	switch f.Type {
	case frame.TDeliver:
		p.net.HandleSignal(f.Peer, append([]byte(nil), f.Payload...))
	case frame.TEntries:
		p.log.Debug("entries", "req", f.ReqID, "local", len(f.Local), "remote", len(f.Remote), "random", len(f.Random))
		b.mu.Lock()
		r, ok := b.reqs[f.ReqID]
		delete(b.reqs, f.ReqID)
		b.mu.Unlock()
		if ok {
			e := core.Entries{Site: r.site, Local: f.Local, Remote: f.Remote, Random: f.Random}
			p.input(func(now time.Duration) { p.drv.SetEntries(now, e) })
		}
	case frame.TError:
		switch f.Ref {
		case frame.TSignal:
			p.net.SignalFailed(f.Peer, fmt.Errorf("bootstrap: %s: %s", f.Code, f.Text))
		case frame.TEntryReq:
			b.failReq(f.ReqID)
		case frame.TReport:
			if f.Code == frame.CodeUnknownType {
				// A service that predates reports: stop sending them.
				p.rep.off.Store(true)
				p.log.Info("the bootstrap service takes no counter reports", "text", f.Text)
				break
			}
			p.log.Warn("bootstrap refused a counter report", "code", f.Code.String(), "text", f.Text)
		default:
			p.log.Warn("bootstrap error", "code", f.Code.String(), "ref", f.Ref.String(), "text", f.Text)
			switch f.Code {
			case frame.CodeShuttingDown, frame.CodeReplaced, frame.CodeSlowReader, frame.CodeIdle, frame.CodeServerFull:
				return fmt.Errorf("bootstrap: %s", f.Code)
			}
		}
	case frame.TGoAway:
		return fmt.Errorf("bootstrap: going away: %s", f.Text)
	}
	return nil
}

// dropped forgets a lost connection and fails the entry requests it held.
func (b *bootSession) dropped(c *client.Client) {
	b.mu.Lock()
	if b.c == c {
		b.c = nil
	}
	var failed []ids.SiteID
	for id, r := range b.reqs {
		failed = append(failed, r.site)
		delete(b.reqs, id)
	}
	b.mu.Unlock()
	b.drain()
	for _, site := range failed {
		b.p.input(func(now time.Duration) { b.p.drv.EntriesFailed(now, site) })
	}
}

// drain empties the queue of a lost connection.
func (b *bootSession) drain() {
	for {
		select {
		case <-b.out:
		default:
			return
		}
	}
}

func (b *bootSession) failReq(id uint32) {
	b.mu.Lock()
	r, ok := b.reqs[id]
	delete(b.reqs, id)
	b.mu.Unlock()
	if ok {
		b.p.input(func(now time.Duration) { b.p.drv.EntriesFailed(now, r.site) })
	}
}

// enqueue queues a frame; false when the queue is full. Called under b.mu.
func (b *bootSession) enqueue(msg []byte) bool {
	select {
	case b.out <- msg:
		return true
	default:
		return false
	}
}

// Register implements host.Bootstrap.
func (b *bootSession) Register(regs []host.Registration) {
	out := make([]frame.Reg, 0, len(regs))
	for _, r := range regs {
		if len(out) == frame.MaxRegs {
			b.p.log.Warn("more registrations than the service takes", "n", len(regs))
			break
		}
		fr := frame.Reg{Site: r.Site, Loc: uint16(r.Loc), Role: frame.RoleClient}
		switch r.Role {
		case core.RoleContent:
			fr.Role = frame.RoleContent
		case core.RoleDirectory:
			fr.Role, fr.Key = frame.RoleDirectory, r.Key
		}
		out = append(out, fr)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.regs = out
	if b.c != nil && !b.enqueue((&frame.Frame{Type: frame.TRegister, Regs: out}).Append(nil)) {
		b.p.log.Warn("bootstrap queue full: registration deferred to the next connection")
	}
}

// Entries implements host.Bootstrap. It is called inside a Driver input:
// a request that cannot be sent fails from another goroutine.
func (b *bootSession) Entries(req core.EntryRequest) {
	b.p.stats.entryRequests.Add(1)
	b.p.log.Debug("entry request", "site", uint64(req.Site), "loc", req.Loc, "n", req.N)
	b.mu.Lock()
	defer b.mu.Unlock()
	// Forget requests the core has long given up on.
	for id, r := range b.reqs {
		if time.Since(r.at) > time.Minute {
			delete(b.reqs, id)
		}
	}
	b.nextReq++
	id := b.nextReq
	n := min(max(req.N, 0), 0xff)
	msg := (&frame.Frame{Type: frame.TEntryReq, ReqID: id, Site: req.Site, Loc: uint16(req.Loc), N: uint8(n)}).Append(nil)
	if b.c == nil || !b.enqueue(msg) {
		site := req.Site
		b.p.goFunc(func() { b.p.input(func(now time.Duration) { b.p.drv.EntriesFailed(now, site) }) })
		return
	}
	b.reqs[id] = entryReq{site: req.Site, at: time.Now()}
}

// Signal implements Signaller.
func (b *bootSession) Signal(to ids.PeerID, payload []byte) error {
	if len(payload) > frame.MaxSignal {
		return fmt.Errorf("bootstrap: signal of %d bytes, limit %d", len(payload), frame.MaxSignal)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return errors.New("bootstrap: not connected")
	}
	if !b.enqueue(frame.AppendSignal(nil, to, payload)) {
		return errors.New("bootstrap: send queue full")
	}
	return nil
}

// registered reports whether the current registration set names site.
func (b *bootSession) registered(site ids.SiteID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.regs {
		if r.Site == site {
			return true
		}
	}
	return false
}

// queue queues an encoded frame on the current connection; false when
// there is none or its queue is full.
func (b *bootSession) queue(msg []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c != nil && b.enqueue(msg)
}

// sendNow writes an encoded frame on the current connection at once
// (beside the writer goroutine: the connection's writes are safe for
// concurrent use), within ctx.
func (b *bootSession) sendNow(ctx context.Context, msg []byte) error {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c == nil {
		return errors.New("bootstrap: not connected")
	}
	return c.SendRaw(ctx, msg)
}

func (b *bootSession) close() {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// findLocality times the bootstrap's landmarks (three probes each, median)
// and bins the peer (shared/locality). No landmarks: locality 0.
func (p *Peer) findLocality(ctx context.Context, b *bootSession) (int, error) {
	body, status, err := p.httpGet(ctx, b.httpBase+"/v1/landmarks", 64<<10)
	if err != nil {
		return 0, fmt.Errorf("peer: landmarks: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("peer: landmarks: status %d", status)
	}
	var lm struct {
		Localities int      `json:"localities"`
		Landmarks  []string `json:"landmarks"`
	}
	if err := json.Unmarshal(body, &lm); err != nil {
		return 0, fmt.Errorf("peer: landmarks: %w", err)
	}
	if len(lm.Landmarks) == 0 {
		return 0, nil
	}
	probes := make([][]time.Duration, len(lm.Landmarks))
	for i, u := range lm.Landmarks {
		for range 3 {
			start := time.Now()
			if _, _, err := p.httpGet(ctx, u, 64<<10); err != nil {
				return 0, fmt.Errorf("peer: landmark %s: %w", u, err)
			}
			probes[i] = append(probes[i], time.Since(start))
		}
	}
	loc, err := locality.FromProbes(probes, lm.Localities, locality.Mapping{})
	if err != nil {
		return 0, fmt.Errorf("peer: locality: %w", err)
	}
	return loc, nil
}

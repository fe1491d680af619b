package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flowercdn/flower/bootstrap/dirmsg"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// The cluster joins instances through NATS; no state is shared any other way.
//
// Signalling: every instance subscribes <prefix>.peer.<peer id hex> for each
// of its peers. A signal for a peer that is not local is published there with
// a reply subject <prefix>.inst.<instance>.nr.<from>.<to>; NATS answers that
// reply with a "no responders" status when no instance holds the target (and
// an instance that lost the target in a race answers it explicitly), which
// becomes an unknown-target error frame for the sender. A target whose queue
// has no room for that sender answers "busy" on the same reply subject, which
// becomes a target_busy error frame, exactly as for a local sender. An
// instance that dies takes its subscriptions with it.
//
// Directory: each instance publishes on <prefix>.dir the D-ring members (key,
// peer id) its own peers registered and withdrew, and every DirSnapshot all
// of them (bootstrap/dirmsg is the format). Remote entries expire three
// snapshot periods after their last refresh, so the entries of an instance
// that died age out; one that stops cleanly says "bye". Messages from an
// instance with another key layout are ignored (and logged once).
type cluster struct {
	s    *Server
	nc   *nats.Conn
	pfx  string
	inst string
	in   chan *nats.Msg

	mu      sync.Mutex
	instIdx map[string]uint32 // remote instance id -> registry owner number
	nextIdx uint32
	badLay  map[string]bool // instances already reported for another key layout
}

const (
	// replyBusy answers a forwarded signal whose target had no room for it.
	replyBusy = "busy"
)

func newCluster(s *Server) (*cluster, error) {
	c := &cluster{
		s:       s,
		pfx:     s.cfg.Subject,
		inst:    s.instance,
		in:      make(chan *nats.Msg, 1<<16),
		instIdx: make(map[string]uint32),
		badLay:  make(map[string]bool),
	}
	log := s.log.With("nats", s.cfg.NATSURL)
	nc, err := nats.Connect(s.cfg.NATSURL,
		nats.Name("flower-bootstrap "+s.instance),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info("nats reconnected")
			c.snapshot()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			s.m.natsErrors.Inc()
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", s.cfg.NATSURL, err)
	}
	c.nc = nc
	for _, subj := range []string{c.pfx + ".inst." + c.inst + ".>", c.pfx + ".dir", c.pfx + ".sitestats"} {
		if _, err := nc.ChanSubscribe(subj, c.in); err != nil {
			nc.Close()
			return nil, fmt.Errorf("nats subscribe %s: %w", subj, err)
		}
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats flush: %w", err)
	}
	log.Info("joined nats", "instance", c.inst)
	return c, nil
}

func (c *cluster) connected() bool { return c.nc.IsConnected() }

// run handles incoming messages and publishes snapshots until ctx ends.
func (c *cluster) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-c.in:
					c.handle(m)
				}
			}
		}()
	}
	c.snapshot()
	c.publishStats(false)
	t := time.NewTicker(c.s.cfg.DirSnapshot)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			c.snapshot()
			c.publishStats(false)
			c.s.reg.Expire(time.Now().UnixMilli())
		}
	}
}

// publishStats publishes this instance's per-site totals and peers gauges
// (every DirSnapshot; bye when it stops), so that every instance's
// /metrics shows the cluster's sums.
func (c *cluster) publishStats(bye bool) {
	var peers map[peerKey]int
	if !bye {
		peers = c.s.localPeers()
	}
	b, err := c.s.stats.encodeStatsMsg(c.inst, bye, peers)
	if err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Error("encode site stats", "err", err)
		return
	}
	if err := c.nc.Publish(c.pfx+".sitestats", b); err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Warn("nats publish site stats", "err", err)
	}
}

func (c *cluster) handleStats(b []byte) {
	m, err := decodeStatsMsg(b, c.s.cfg.ReportSites)
	if err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Debug("bad site stats message", "err", err)
		return
	}
	if m.Instance == c.inst {
		return
	}
	now := time.Now()
	if !c.s.stats.merge(m, now, now.Add(-10*c.s.cfg.DirSnapshot)) {
		c.s.log.Warn("site stats of too many instances: ignoring one", "instance", m.Instance, "max", maxInstances)
	}
}

func (c *cluster) close() {
	c.publishDir(dirmsg.OpBye, nil)
	c.publishStats(true)
	if err := c.nc.FlushTimeout(2 * time.Second); err != nil {
		c.s.log.Warn("nats flush at close", "err", err)
	}
	c.nc.Close()
}

func (c *cluster) peerSubject(id ids.PeerID) string { return c.pfx + ".peer." + id.String() }

func (c *cluster) subscribe(p *peer) {
	sub, err := c.nc.ChanSubscribe(c.peerSubject(p.id), c.in)
	if err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Warn("nats subscribe peer", "peer", p.id.Short(), "err", err)
		return
	}
	p.mu.Lock()
	if p.closed {
		// Cleaned up meanwhile (replaced, shut down): it must not keep
		// a subscription.
		p.mu.Unlock()
		_ = sub.Unsubscribe()
		return
	}
	p.sub = sub
	p.mu.Unlock()
}

func (c *cluster) unsubscribe(p *peer) {
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// forward publishes a signal for a peer that is not local.
func (c *cluster) forward(from, to ids.PeerID, payload []byte) {
	data := make([]byte, 0, ids.PeerIDLen+len(payload))
	data = append(append(data, from[:]...), payload...)
	m := &nats.Msg{
		Subject: c.peerSubject(to),
		Reply:   c.pfx + ".inst." + c.inst + ".nr." + from.String() + "." + to.String(),
		Data:    data,
	}
	if err := c.nc.PublishMsg(m); err != nil {
		c.s.m.natsErrors.Inc()
		if p := c.s.peers.get(from); p != nil {
			p.sendError(frame.CodeInternal, frame.TSignal, to, 0, "relay over nats failed")
		}
	}
}

func (c *cluster) handle(m *nats.Msg) {
	subj := m.Subject
	switch {
	case strings.HasPrefix(subj, c.pfx+".peer."):
		to, err := ids.ParsePeerID(subj[len(c.pfx)+len(".peer."):])
		if err != nil || len(m.Data) < ids.PeerIDLen {
			return
		}
		var from ids.PeerID
		copy(from[:], m.Data)
		c.s.m.relayIn.Inc()
		switch c.s.deliverLocal(from, to, m.Data[ids.PeerIDLen:]) {
		case relayGone: // tell the sender's instance
			if m.Reply != "" {
				_ = c.nc.Publish(m.Reply, nil)
			}
		case relayBusy: // the remote sender pays, as a local one would
			c.s.m.relayBusy.Inc()
			if m.Reply != "" {
				_ = c.nc.Publish(m.Reply, []byte(replyBusy))
			}
		}
	case strings.HasPrefix(subj, c.pfx+".inst."+c.inst+".nr."):
		// A "no responders" status or an explicit "gone" (empty): unknown
		// target; "busy": the target's queue had no room for the sender.
		rest := strings.Split(subj[len(c.pfx+".inst."+c.inst+".nr."):], ".")
		if len(rest) != 2 {
			return
		}
		from, err1 := ids.ParsePeerID(rest[0])
		to, err2 := ids.ParsePeerID(rest[1])
		if err1 != nil || err2 != nil {
			return
		}
		p := c.s.peers.get(from)
		if string(m.Data) == replyBusy {
			if p != nil {
				p.sendError(frame.CodeTargetBusy, frame.TSignal, to, 0, targetBusyText)
			}
			return
		}
		c.s.m.relayUnknown.Inc()
		if p != nil {
			p.sendError(frame.CodeUnknownTarget, frame.TSignal, to, 0, unknownTargetText)
		}
	case subj == c.pfx+".dir":
		c.handleDir(m.Data)
	case subj == c.pfx+".sitestats":
		c.handleStats(m.Data)
	}
}

// announce publishes the adds or removes of this instance's members.
func (c *cluster) announce(op dirmsg.Op, ms []ids.Member) {
	for len(ms) > 0 {
		n := min(len(ms), dirmsg.MaxItems)
		c.publishDir(op, ms[:n])
		ms = ms[n:]
	}
}

// snapshot republishes every member this instance's peers registered.
func (c *cluster) snapshot() {
	var ms []ids.Member
	c.s.reg.Members(func(m ids.Member, owner uint32) {
		if owner == 0 {
			ms = append(ms, m)
		}
	})
	c.announce(dirmsg.OpSnapshot, ms)
}

func (c *cluster) publishDir(op dirmsg.Op, items []ids.Member) {
	l := c.s.layout
	b, err := dirmsg.Append(nil, dirmsg.Msg{Op: op, LocBits: uint8(l.LocBits), InstBits: uint8(l.InstBits), Instance: c.inst, Items: items})
	if err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Error("encode directory message", "op", op, "err", err)
		return
	}
	if err := c.nc.Publish(c.pfx+".dir", b); err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Warn("nats publish directory", "op", op, "err", err)
	}
}

func (c *cluster) handleDir(b []byte) {
	m, err := dirmsg.Decode(b)
	if err != nil {
		c.s.m.natsErrors.Inc()
		c.s.log.Debug("bad directory message", "err", err)
		return
	}
	if m.Instance == c.inst {
		return
	}
	l := c.s.layout
	c.mu.Lock()
	if int(m.LocBits) != l.LocBits || int(m.InstBits) != l.InstBits {
		if !c.badLay[m.Instance] {
			if len(c.badLay) >= 1024 {
				clear(c.badLay) // only decides what is logged
			}
			c.badLay[m.Instance] = true
			c.s.log.Warn("ignoring the directory of an instance with another key layout: check --localities and --instance-bits",
				"instance", m.Instance, "loc_bits", m.LocBits, "instance_bits", m.InstBits, "ours", fmt.Sprintf("%d+%d", l.LocBits, l.InstBits))
		}
		c.mu.Unlock()
		return
	}
	idx, ok := c.instIdx[m.Instance]
	if !ok {
		// Owner numbers are never reused: a number still held by
		// entries that are ageing out must not name another instance.
		c.nextIdx++
		idx = c.nextIdx
		c.instIdx[m.Instance] = idx
	}
	if m.Op == dirmsg.OpBye {
		delete(c.instIdx, m.Instance) // restarted instances come back with a new id
	}
	c.mu.Unlock()
	if m.Op == dirmsg.OpBye {
		c.s.reg.RemoveOwner(idx)
		return
	}
	exp := time.Now().Add(3 * c.s.cfg.DirSnapshot).UnixMilli()
	for _, it := range m.Items {
		switch m.Op {
		case dirmsg.OpAdd, dirmsg.OpSnapshot:
			_ = c.s.reg.Add(it, idx, exp) // Decode refused zero ids
		case dirmsg.OpRemove:
			c.s.reg.Remove(it, idx)
		}
	}
}

package peer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

// Operator metrics (docs/operator-metrics.md): every ReportPeriod, and once
// more as it closes, the peer sends the bootstrap service a Report frame
// over its existing connection with, per site, what its counters source
// counted since the previous report: requests and bytes by source,
// verification failures and time-to-first-byte histograms. No URL, no
// address, nothing about the visitor. A report that cannot be queued (no
// connection) leaves its counts for the next one; one queued on a
// connection that then drops is lost (counts are reported at most once).

// DefaultReportPeriod is the default Config.ReportPeriod.
const DefaultReportPeriod = 30 * time.Second

// siteCounters are the peer's own counters of one site, the default
// counters source.
type siteCounters struct {
	requests, bytes [opmetrics.NSources]atomic.Uint64
	verifyFailures  atomic.Uint64
	peerTTFB        [opmetrics.NBuckets]atomic.Uint64
	originTTFB      [opmetrics.NBuckets]atomic.Uint64
}

// answered counts one answer of size bytes from src, first byte after ttfb
// (for peer and origin answers).
func (c *siteCounters) answered(src opmetrics.Source, size int, ttfb time.Duration) {
	c.requests[src].Add(1)
	c.bytes[src].Add(uint64(max(size, 0)))
	switch src {
	case opmetrics.SourcePeer:
		c.peerTTFB[opmetrics.Bucket(ttfb)].Add(1)
	case opmetrics.SourceOrigin:
		c.originTTFB[opmetrics.Bucket(ttfb)].Add(1)
	}
}

func (c *siteCounters) snapshot() opmetrics.SiteCounters {
	var out opmetrics.SiteCounters
	for i := range opmetrics.NSources {
		out.Requests[i], out.Bytes[i] = c.requests[i].Load(), c.bytes[i].Load()
	}
	out.VerifyFailures = c.verifyFailures.Load()
	for i := range opmetrics.NBuckets {
		out.PeerTTFB[i], out.OriginTTFB[i] = c.peerTTFB[i].Load(), c.originTTFB[i].Load()
	}
	return out
}

// SiteCounters returns the peer's own counters of a site (an origin) since
// it started: the default counters source of its reports.
func (p *Peer) SiteCounters(origin string) (opmetrics.SiteCounters, error) {
	s, err := p.siteOf(origin + "/")
	if err != nil {
		return opmetrics.SiteCounters{}, fmt.Errorf("peer: counters of %q: %w", origin, err)
	}
	return s.ctr.snapshot(), nil
}

// reporter remembers what has been reported.
type reporter struct {
	mu   sync.Mutex // one report at a time
	base map[string]opmetrics.SiteCounters
	off  atomic.Bool // the service does not know Report frames
}

// counters reads the counters source for a site.
func (p *Peer) counters(origin string) opmetrics.SiteCounters {
	if p.cfg.Counters != nil {
		return p.cfg.Counters(origin)
	}
	c, _ := p.SiteCounters(origin)
	return c
}

// reportFrame builds the next report and the bases it advances to; nil
// when nothing happened since the previous one.
func (p *Peer) reportFrame() (*frame.Frame, map[string]opmetrics.SiteCounters) {
	r := &p.rep
	if r.base == nil {
		r.base = make(map[string]opmetrics.SiteCounters)
		for _, s := range p.sites {
			if p.cfg.ReportBase != nil {
				r.base[s.origin] = p.cfg.ReportBase(s.origin)
			}
		}
	}
	origins := make([]string, 0, len(p.sites))
	for _, s := range p.sites {
		origins = append(origins, s.origin)
	}
	sort.Strings(origins)
	f := &frame.Frame{Type: frame.TReport}
	next := make(map[string]opmetrics.SiteCounters)
	for _, o := range origins {
		if len(f.Report) == frame.MaxReportSites {
			break // the rest waits for the next report
		}
		if !p.boot.registered(ids.SiteOf(o)) {
			// The service counts reports for registered sites only: the
			// counts wait until the peer has declared its role.
			continue
		}
		cur := p.counters(o)
		base := r.base[o]
		d := cur.Sub(base)
		if !d.IsZero() && frame.ClampReport(&d) {
			p.log.Info("report: counts past the frame's bounds wait for the next report", "site", o)
		}
		next[o] = advanced(base, cur, d)
		if !d.IsZero() {
			f.Report = append(f.Report, frame.SiteReport{Site: ids.SiteOf(o), Origin: o, Counters: d})
		}
	}
	if len(f.Report) == 0 {
		return nil, next
	}
	return f, next
}

// report sends the counts since the previous report: queued on the
// bootstrap connection, or (final) written at once, within ctx.
func (p *Peer) report(ctx context.Context, final bool) error {
	if p.cfg.NoReport || p.boot == nil || p.rep.off.Load() {
		return nil
	}
	r := &p.rep
	r.mu.Lock()
	defer r.mu.Unlock()
	f, next := p.reportFrame()
	if f == nil {
		p.advance(next)
		return nil
	}
	msg := f.Append(nil)
	var err error
	if final {
		err = p.boot.sendNow(ctx, msg)
	} else if !p.boot.queue(msg) {
		err = errors.New("not connected or queue full")
	}
	if err != nil {
		return fmt.Errorf("peer: report: %w", err)
	}
	p.advance(next)
	p.log.Debug("report sent", "sites", len(f.Report), "final", final)
	return nil
}

// advanced is the base after reporting d: base + d, except where the
// source went below base (it restarted), which re-bases at the source.
func advanced(base, cur, d opmetrics.SiteCounters) opmetrics.SiteCounters {
	values := func(c opmetrics.SiteCounters) []uint64 {
		var out []uint64
		c.Each(func(v *uint64) { out = append(out, *v) })
		return out
	}
	b, c, dv := values(base), values(cur), values(d)
	var out opmetrics.SiteCounters
	i := 0
	out.Each(func(v *uint64) {
		if c[i] < b[i] {
			*v = c[i]
		} else {
			*v = b[i] + dv[i]
		}
		i++
	})
	return out
}

func (p *Peer) advance(next map[string]opmetrics.SiteCounters) {
	for o, c := range next {
		if p.rep.base[o] == c {
			continue
		}
		p.rep.base[o] = c
		if p.cfg.Reported != nil {
			p.cfg.Reported(o, c)
		}
	}
}

// reportLoop reports every ReportPeriod until the peer closes.
func (p *Peer) reportLoop() {
	t := time.NewTicker(p.cfg.ReportPeriod)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if err := p.report(p.ctx, false); err != nil {
				p.log.Debug("report", "err", err)
			}
		}
	}
}

// finalReport is the last report, as the peer closes.
func (p *Peer) finalReport() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.report(ctx, true); err != nil {
		p.log.Info("last report", "err", err)
	}
}

package bootstrap

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

// reportBurst is how many reports one connection may send back to back
// (then one per ReportInterval): a peer's periodic report and its last one
// as it leaves.
const reportBurst = 2

// report counts a peer's Report frame, or refuses all of it with an error
// frame: too soon after the previous ones, a site the peer has not
// registered, an origin that is not canonical, or a site beyond the cap.
// Runs on the peer's reader, like every handler.
func (p *peer) report(rs []frame.SiteReport) {
	s := p.s
	now := time.Now().UnixNano()
	iv := int64(s.cfg.ReportInterval)
	if p.reportTAT-now > iv*(reportBurst-1) {
		s.m.reports.WithLabelValues("rate_limited").Inc()
		p.sendError(frame.CodeRateLimited, frame.TReport, ids.PeerID{}, 0,
			fmt.Sprintf("report refused, nothing counted: at most one report per %s", s.cfg.ReportInterval))
		return
	}
	p.mu.Lock()
	regs := p.regs
	p.mu.Unlock()
	for _, r := range rs {
		if !slices.ContainsFunc(regs, func(g frame.Reg) bool { return g.Site == r.Site }) {
			s.m.reports.WithLabelValues("unregistered").Inc()
			p.sendError(frame.CodeBadReport, frame.TReport, ids.PeerID{}, 0,
				fmt.Sprintf("report refused, nothing counted: site %016x is not registered by this peer", uint64(r.Site)))
			return
		}
		if r.Origin != "" {
			if c, err := CanonicalOrigin(r.Origin); err != nil || c != r.Origin {
				s.m.reports.WithLabelValues("bad_origin").Inc()
				p.sendError(frame.CodeBadReport, frame.TReport, ids.PeerID{}, 0,
					fmt.Sprintf("report refused, nothing counted: origin %q is not canonical", r.Origin))
				return
			}
		}
	}
	if err := s.stats.add(rs); err != nil {
		s.m.reports.WithLabelValues("site_cap").Inc()
		p.sendError(frame.CodeBadReport, frame.TReport, ids.PeerID{}, 0, "report refused, nothing counted: "+err.Error())
		return
	}
	p.reportTAT = max(p.reportTAT, now) + iv
	s.m.reports.WithLabelValues("accepted").Inc()
}

// localPeers counts this instance's peers per (site, locality, role), from
// their registrations.
func (s *Server) localPeers() map[peerKey]int {
	out := make(map[peerKey]int)
	for _, p := range s.peers.all() {
		p.mu.Lock()
		for _, r := range p.regs {
			out[peerKey{site: r.Site, loc: r.Loc, role: r.Role}]++
		}
		p.mu.Unlock()
	}
	return out
}

// clusterPeers adds the other instances' fresh gauges to the local ones.
func (s *Server) clusterPeers() map[peerKey]int {
	out := s.localPeers()
	if s.cl != nil {
		s.stats.remotePeers(time.Now().Add(-3*s.cfg.DirSnapshot), out)
	}
	return out
}

// siteCollector exposes the per-site metrics on /metrics (the cluster's
// sums).
type siteCollector struct {
	s                                      *Server
	requests, bytes, verify, ttfb, offload *prometheus.Desc
	peers                                  *prometheus.Desc
}

func newSiteCollector(s *Server) *siteCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("flower_site_"+name, help, labels, nil)
	}
	return &siteCollector{
		s:        s,
		requests: d("requests_total", "Requests visitors' peers answered, by source (cache: the visitor's own; peer; origin), as reported by the peers; the cluster's sum.", "site", "source"),
		bytes:    d("bytes_total", "Body bytes of the answers by source, as reported by the peers; the cluster's sum.", "site", "source"),
		verify:   d("verify_failures_total", "Objects from peers that failed verification, as reported; the cluster's sum.", "site"),
		ttfb:     d("ttfb_seconds", "Time to the first byte of answers from peers and from the origin, as reported (the _sum is estimated from the buckets' midpoints: reports carry bucket counts only).", "site", "source"),
		offload:  d("offload_ratio", "Peer bytes / (peer + origin bytes) since the service started.", "site"),
		peers:    d("peers", "Connected peers by registered locality and role, over the cluster.", "site", "locality", "role"),
	}
}

func (c *siteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.bytes, c.verify, c.ttfb, c.offload, c.peers} {
		ch <- d
	}
}

func (c *siteCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.stats
	tot := st.totals()
	st.mu.Lock()
	names := make(map[ids.SiteID]string, len(tot))
	for site := range tot {
		names[site] = st.name(site)
	}
	st.mu.Unlock()
	for site, t := range tot {
		n := names[site]
		for i, src := range opmetrics.SourceNames {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(t.Requests[i]), n, src)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.Bytes[i]), n, src)
		}
		ch <- prometheus.MustNewConstMetric(c.verify, prometheus.CounterValue, float64(t.VerifyFailures), n)
		for src, h := range map[string]*opmetrics.Histogram{"peer": &t.PeerTTFB, "origin": &t.OriginTTFB} {
			count, sum, buckets := histogram(h)
			ch <- prometheus.MustNewConstHistogram(c.ttfb, count, sum, buckets, n, src)
		}
		if r, ok := t.OffloadRatio(); ok {
			ch <- prometheus.MustNewConstMetric(c.offload, prometheus.GaugeValue, r, n)
		}
	}
	peers := c.s.clusterPeers()
	st.mu.Lock()
	for k, v := range peers {
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(v), st.name(k.site), fmt.Sprint(k.loc), k.role.String())
	}
	st.mu.Unlock()
}

// histogram converts bucket counts to Prometheus's cumulative form.
func histogram(h *opmetrics.Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(opmetrics.TTFBBounds))
	lo := 0.0
	for i, b := range opmetrics.TTFBBounds {
		count += h[i]
		buckets[b] = count
		sum += float64(h[i]) * (lo + b) / 2
		lo = b
	}
	last := h[opmetrics.NBuckets-1]
	count += last
	sum += float64(last) * lo
	return count, sum, buckets
}

// badReport answers a Report frame that does not decode.
func (p *peer) badReport(err error) {
	p.s.m.reports.WithLabelValues("malformed").Inc()
	what := "malformed"
	if errors.Is(err, frame.ErrLimit) {
		what = "oversized"
	}
	p.sendError(frame.CodeBadReport, frame.TReport, ids.PeerID{}, 0, fmt.Sprintf("report refused, nothing counted: %s: %v", what, err))
}

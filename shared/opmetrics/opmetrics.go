// Package opmetrics defines the aggregate counters a peer reports to the
// bootstrap service for the operator's metrics (docs/operator-metrics.md):
// requests and bytes by source, verification failures and time-to-first-byte
// histograms, per site. It is the one place the histogram's bucket bounds
// are defined; peers, the service worker, the wire format and the bootstrap
// service all use it.
//
// Nothing here names a URL or a visitor: only counts.
package opmetrics

import (
	"math"
	"time"
)

// Source is where an answer came from.
type Source int

// Sources, as labels: the visitor's own cache, another peer, the origin.
const (
	SourceCache Source = iota
	SourcePeer
	SourceOrigin
)

// NSources is the number of sources.
const NSources = 3

// SourceNames are the label values of the sources, by Source.
var SourceNames = [NSources]string{"cache", "peer", "origin"}

// TTFBBounds are the upper bounds (inclusive, in seconds) of the
// time-to-first-byte histogram's buckets; a last bucket holds everything
// slower. Part of the wire format: never change them without bumping the
// frame version.
var TTFBBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NBuckets is the number of histogram buckets: one per bound plus +Inf.
const NBuckets = len(TTFBBounds) + 1

// Bucket is the index of the bucket that d falls in.
func Bucket(d time.Duration) int {
	s := d.Seconds()
	for i, b := range TTFBBounds {
		if s <= b {
			return i
		}
	}
	return NBuckets - 1
}

// Histogram counts observations per bucket (not cumulative).
type Histogram [NBuckets]uint64

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, v := range h {
		n += v
	}
	return n
}

// Quantile estimates the q-quantile (0 < q < 1) in seconds the way
// Prometheus's histogram_quantile does: linear interpolation inside the
// bucket that holds it; an answer in the last bucket is the highest bound.
// ok is false without observations.
func (h *Histogram) Quantile(q float64) (v float64, ok bool) {
	n := h.Count()
	if n == 0 || math.IsNaN(q) {
		return 0, false
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i == NBuckets-1 {
				return TTFBBounds[len(TTFBBounds)-1], true
			}
			lo := 0.0
			if i > 0 {
				lo = TTFBBounds[i-1]
			}
			return lo + (TTFBBounds[i]-lo)*(rank-seen)/float64(c), true
		}
		seen += float64(c)
	}
	return TTFBBounds[len(TTFBBounds)-1], true
}

// SiteCounters are the counters of one site: cumulative totals (a peer's
// counters source, the bootstrap's sums) or the delta one report carries.
type SiteCounters struct {
	Requests       [NSources]uint64 // answered requests, by source
	Bytes          [NSources]uint64 // body bytes, by source
	VerifyFailures uint64           // objects from peers that failed verification
	PeerTTFB       Histogram        // time to first byte of answers from peers
	OriginTTFB     Histogram        // time to first byte of answers from the origin
}

// fields lists every counter, for the operations below.
func (c *SiteCounters) fields() []*uint64 {
	out := make([]*uint64, 0, 2*NSources+1+2*NBuckets)
	for i := range c.Requests {
		out = append(out, &c.Requests[i])
	}
	for i := range c.Bytes {
		out = append(out, &c.Bytes[i])
	}
	out = append(out, &c.VerifyFailures)
	for i := range c.PeerTTFB {
		out = append(out, &c.PeerTTFB[i])
	}
	for i := range c.OriginTTFB {
		out = append(out, &c.OriginTTFB[i])
	}
	return out
}

// Add adds o to c.
func (c *SiteCounters) Add(o SiteCounters) {
	f, g := c.fields(), o.fields()
	for i := range f {
		*f[i] += *g[i]
	}
}

// Sub returns c - base, field by field, saturating at zero: a counters
// source that went backwards (it restarted) is never reported as a
// negative or a huge wrapped value.
func (c SiteCounters) Sub(base SiteCounters) SiteCounters {
	f, g := c.fields(), base.fields()
	for i := range f {
		if *f[i] >= *g[i] {
			*f[i] -= *g[i]
		} else {
			*f[i] = 0
		}
	}
	return c
}

// Max returns the field-by-field maximum of c and o.
func (c SiteCounters) Max(o SiteCounters) SiteCounters {
	f, g := c.fields(), o.fields()
	for i := range f {
		*f[i] = max(*f[i], *g[i])
	}
	return c
}

// IsZero reports whether every counter is zero.
func (c SiteCounters) IsZero() bool {
	return c == SiteCounters{}
}

// OffloadRatio is the share of the bytes that came from peers among the
// bytes that came from peers or the origin (the visitor's own cache is
// neither); ok is false when there were none.
func (c SiteCounters) OffloadRatio() (float64, bool) {
	p, o := c.Bytes[SourcePeer], c.Bytes[SourceOrigin]
	if p+o == 0 {
		return 0, false
	}
	return float64(p) / float64(p+o), true
}

// Each calls fn with every counter in a fixed order (the wire order).
func (c *SiteCounters) Each(fn func(v *uint64)) {
	for _, f := range c.fields() {
		fn(f)
	}
}

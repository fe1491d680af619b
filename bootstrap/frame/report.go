package frame

import (
	"encoding/binary"
	"fmt"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

// A Report frame's body: a one-byte count of sites (1..MaxReportSites),
// then per site:
//
//	site       u64   the site id (not 0, each site once)
//	origin     text  u8 length + bytes; empty, or an origin whose SiteOf is site
//	requests   3 x u32  cache, peer, origin          (each <= MaxReportCount)
//	bytes      3 x u64  cache, peer, origin          (each <= MaxReportBytes)
//	verify     u32      verification failures        (<= MaxReportCount)
//	peer ttfb  NBuckets x u32  histogram bucket counts (each <= MaxReportCount)
//	orig ttfb  NBuckets x u32
//
// The buckets are opmetrics.TTFBBounds plus +Inf.

// reportFixed is the encoded size of one site's counters.
const reportFixed = 3*4 + 3*8 + 4 + 2*opmetrics.NBuckets*4

// report reads a Report frame's body.
func (r *reader) report() ([]SiteReport, error) {
	n := int(r.u8())
	if r.err != nil {
		return nil, r.err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: a report of no site", ErrInvalid)
	}
	if n > MaxReportSites {
		return nil, fmt.Errorf("%w: %d sites > %d", ErrLimit, n, MaxReportSites)
	}
	if len(r.b) < n*(8+1+reportFixed) {
		return nil, ErrShort
	}
	out := make([]SiteReport, n)
	for i := range out {
		s := &out[i]
		s.Site = ids.SiteID(r.u64())
		s.Origin = r.text()
		c := &s.Counters
		for j := range c.Requests {
			c.Requests[j] = uint64(r.u32())
		}
		for j := range c.Bytes {
			c.Bytes[j] = r.u64()
		}
		c.VerifyFailures = uint64(r.u32())
		for j := range c.PeerTTFB {
			c.PeerTTFB[j] = uint64(r.u32())
		}
		for j := range c.OriginTTFB {
			c.OriginTTFB[j] = uint64(r.u32())
		}
		if r.err != nil {
			return nil, r.err
		}
		if err := checkSiteReport(s); err != nil {
			return nil, err
		}
		for _, o := range out[:i] {
			if o.Site == s.Site {
				return nil, fmt.Errorf("%w: site %016x reported twice", ErrInvalid, uint64(s.Site))
			}
		}
	}
	return out, nil
}

// checkSiteReport applies the bounds of the format to one site's report.
func checkSiteReport(s *SiteReport) error {
	if s.Site == 0 {
		return fmt.Errorf("%w: site 0", ErrInvalid)
	}
	if s.Origin != "" && ids.SiteOf(s.Origin) != s.Site {
		return fmt.Errorf("%w: origin %q is not site %016x", ErrInvalid, s.Origin, uint64(s.Site))
	}
	c := &s.Counters
	for j, v := range c.Bytes {
		if v > MaxReportBytes {
			return fmt.Errorf("%w: %d %s bytes > %d", ErrLimit, v, opmetrics.SourceNames[j], uint64(MaxReportBytes))
		}
	}
	counts := append(append(append(c.Requests[:0:0], c.Requests[:]...), c.VerifyFailures), c.PeerTTFB[:]...)
	counts = append(counts, c.OriginTTFB[:]...)
	for _, v := range counts {
		if v > MaxReportCount {
			return fmt.Errorf("%w: count %d > %d", ErrLimit, v, MaxReportCount)
		}
	}
	return nil
}

// ClampReport bounds a site's counters to what one Report frame may carry
// and reports whether anything was cut.
func ClampReport(c *opmetrics.SiteCounters) bool {
	cut := false
	clamp := func(v *uint64, max uint64) {
		if *v > max {
			*v, cut = max, true
		}
	}
	for j := range c.Requests {
		clamp(&c.Requests[j], MaxReportCount)
		clamp(&c.Bytes[j], MaxReportBytes)
	}
	clamp(&c.VerifyFailures, MaxReportCount)
	for j := range c.PeerTTFB {
		clamp(&c.PeerTTFB[j], MaxReportCount)
		clamp(&c.OriginTTFB[j], MaxReportCount)
	}
	return cut
}

// appendReport encodes a Report frame's body. Sites beyond MaxReportSites,
// and sites that would not decode (site 0, an origin of another site, a
// counter past a bound) are the caller's error: they are clamped or
// dropped, so that the result always decodes; an empty report still does
// not (a report of no site is invalid).
func appendReport(b []byte, rs []SiteReport) []byte {
	var ok []SiteReport
	for _, s := range rs {
		if len(ok) == MaxReportSites {
			break
		}
		ClampReport(&s.Counters)
		if len(s.Origin) > MaxText || checkSiteReport(&s) != nil {
			continue
		}
		dup := false
		for _, o := range ok {
			dup = dup || o.Site == s.Site
		}
		if !dup {
			ok = append(ok, s)
		}
	}
	b = append(b, byte(len(ok)))
	for _, s := range ok {
		c := &s.Counters
		b = binary.BigEndian.AppendUint64(b, uint64(s.Site))
		b = appendText(b, s.Origin)
		for _, v := range c.Requests {
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		}
		for _, v := range c.Bytes {
			b = binary.BigEndian.AppendUint64(b, v)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(c.VerifyFailures))
		for _, v := range c.PeerTTFB {
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		}
		for _, v := range c.OriginTTFB {
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		}
	}
	return b
}

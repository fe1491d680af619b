package frame

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

const testOrigin = "https://example.org"

func sampleReport() Frame {
	var c opmetrics.SiteCounters
	c.Requests = [3]uint64{5, 7, 2}
	c.Bytes = [3]uint64{5000, 70000, 20000}
	c.VerifyFailures = 1
	c.PeerTTFB[3], c.PeerTTFB[4] = 4, 3
	c.OriginTTFB[opmetrics.NBuckets-1] = 2
	return Frame{Type: TReport, Report: []SiteReport{
		{Site: ids.SiteOf(testOrigin), Origin: testOrigin, Counters: c},
		{Site: 99, Counters: opmetrics.SiteCounters{VerifyFailures: MaxReportCount}},
	}}
}

func TestReportRoundTrip(t *testing.T) {
	f := sampleReport()
	b := f.Append(nil)
	g, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("round trip\n got %+v\nwant %+v", g, f)
	}
	for i := range b {
		if _, err := Decode(b[:i]); err == nil {
			t.Fatalf("prefix %d/%d decoded", i, len(b))
		}
	}
}

// reportBytes encodes a report without Append's clamping, to build frames
// a hostile peer could send.
func reportBytes(n int, site ids.SiteID, origin string, tweak func(c *opmetrics.SiteCounters)) []byte {
	b := []byte{Version, byte(TReport), byte(n)}
	for i := range n {
		var c opmetrics.SiteCounters
		if tweak != nil {
			tweak(&c)
		}
		s := SiteReport{Site: site + ids.SiteID(i), Origin: origin, Counters: c}
		one := appendReportUnchecked(nil, s)
		b = append(b, one...)
	}
	return b
}

func appendReportUnchecked(b []byte, s SiteReport) []byte {
	b = append(b, byte(s.Site>>56), byte(s.Site>>48), byte(s.Site>>40), byte(s.Site>>32), byte(s.Site>>24), byte(s.Site>>16), byte(s.Site>>8), byte(s.Site))
	b = append(b, byte(len(s.Origin)))
	b = append(b, s.Origin...)
	c := s.Counters
	u32 := func(v uint64) { b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	for _, v := range c.Requests {
		u32(v)
	}
	for _, v := range c.Bytes {
		b = append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	u32(c.VerifyFailures)
	for _, v := range c.PeerTTFB {
		u32(v)
	}
	for _, v := range c.OriginTTFB {
		u32(v)
	}
	return b
}

func TestReportRejects(t *testing.T) {
	site := ids.SiteOf(testOrigin)
	if _, err := Decode(reportBytes(1, site, testOrigin, nil)); err != nil {
		t.Fatalf("valid hand-built report: %v", err)
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"no site", reportBytes(0, site, "", nil), ErrInvalid},
		{"too many sites", reportBytes(MaxReportSites+1, 1, "", nil), ErrLimit},
		{"site 0", reportBytes(1, 0, "", nil), ErrInvalid},
		{"origin of another site", reportBytes(1, site+1, testOrigin, nil), ErrInvalid},
		{"requests over the bound", reportBytes(1, site, "", func(c *opmetrics.SiteCounters) { c.Requests[1] = MaxReportCount + 1 }), ErrLimit},
		{"bytes over the bound", reportBytes(1, site, "", func(c *opmetrics.SiteCounters) { c.Bytes[2] = MaxReportBytes + 1 }), ErrLimit},
		{"bucket over the bound", reportBytes(1, site, "", func(c *opmetrics.SiteCounters) { c.OriginTTFB[0] = MaxReportCount + 1 }), ErrLimit},
		{"verify over the bound", reportBytes(1, site, "", func(c *opmetrics.SiteCounters) { c.VerifyFailures = 0xffffffff }), ErrLimit},
		{"truncated", reportBytes(1, site, "", nil)[:40], ErrShort},
		{"trailing", append(reportBytes(1, site, "", nil), 0), ErrTrailing},
	}
	dup := reportBytes(1, site, "", nil)
	dup[2] = 2
	dup = append(dup, dup[3:]...)
	cases = append(cases, struct {
		name string
		b    []byte
		want error
	}{"same site twice", dup, ErrInvalid})
	for _, c := range cases {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReportAppendClamps(t *testing.T) {
	var c opmetrics.SiteCounters
	c.Requests[0] = 1 << 40
	c.Bytes[1] = 1 << 62
	f := Frame{Type: TReport, Report: []SiteReport{{Site: 5, Counters: c}, {Site: 5}, {Site: 0}}}
	g, err := Decode(f.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Report) != 1 || g.Report[0].Counters.Requests[0] != MaxReportCount || g.Report[0].Counters.Bytes[1] != MaxReportBytes {
		t.Fatalf("clamped report %+v", g.Report)
	}
}

// FuzzDecodeReport aims the fuzzer at the Report decoder: it never panics,
// and what it accepts is within every bound and re-encodes to the same
// bytes.
func FuzzDecodeReport(f *testing.F) {
	r := sampleReport()
	f.Add(r.Append(nil))
	f.Add(reportBytes(3, 7, "", func(c *opmetrics.SiteCounters) { c.Bytes[1] = MaxReportBytes }))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		b = append([]byte{Version, byte(TReport)}, b[2:]...)
		fr, err := Decode(b)
		if err != nil {
			return
		}
		if len(fr.Report) == 0 || len(fr.Report) > MaxReportSites {
			t.Fatalf("accepted %d sites", len(fr.Report))
		}
		for _, s := range fr.Report {
			if err := checkSiteReport(&s); err != nil {
				t.Fatalf("accepted out of bounds: %v", err)
			}
		}
		if out := fr.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
		}
	})
}

package bootstrap_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

const repSite = "https://a.example"

func counters(cache, peer, origin uint64) opmetrics.SiteCounters {
	var c opmetrics.SiteCounters
	c.Requests = [3]uint64{1, 2, 3}
	c.Bytes = [3]uint64{cache, peer, origin}
	c.VerifyFailures = 1
	c.PeerTTFB[opmetrics.Bucket(20*time.Millisecond)] = 2
	c.OriginTTFB[opmetrics.Bucket(300*time.Millisecond)] = 3
	return c
}

func reportOf(origin string, c opmetrics.SiteCounters) *frame.Frame {
	return &frame.Frame{Type: frame.TReport, Report: []frame.SiteReport{{Site: ids.SiteOf(origin), Origin: origin, Counters: c}}}
}

// registered dials a peer and registers it as a content peer of site.
func registered(t *testing.T, in *instance, origin string) *client.Client {
	t.Helper()
	c := dial(t, in.ws(), client.Options{})
	if err := c.Register(ctxT(t), frame.Reg{Site: ids.SiteOf(origin), Loc: 1, Role: frame.RoleContent}); err != nil {
		t.Fatal(err)
	}
	ping(t, c, 1) // frames are handled in order: the registration is in
	return c
}

func send(t *testing.T, c *client.Client, f *frame.Frame) {
	t.Helper()
	if err := c.Send(ctxT(t), f); err != nil {
		t.Fatal(err)
	}
}

func sel(origin, source string) string {
	if source == "" {
		return fmt.Sprintf(`site=%q`, origin)
	}
	return fmt.Sprintf(`site=%q,source=%q`, origin, source)
}

// A valid report counts and shows on /metrics, with its offload ratio and
// histogram; a third report within the interval (two may come back to
// back) is refused with an error frame and counts nothing.
func TestReportCounts(t *testing.T) {
	in := start(t, nil, "--allow-origins", repSite, "--report-interval", "1h")
	c := registered(t, in, repSite)
	send(t, c, reportOf(repSite, counters(100, 3000, 1000)))
	ping(t, c, 2) // no error frame came first: accepted
	if v := in.metric("flower_site_bytes_total", sel(repSite, "peer")); v != 3000 {
		t.Fatalf("peer bytes %v, want 3000", v)
	}
	if v := in.metric("flower_site_requests_total", sel(repSite, "origin")); v != 3 {
		t.Fatalf("origin requests %v, want 3", v)
	}
	if v := in.metric("flower_site_offload_ratio", sel(repSite, "")); v != 0.75 {
		t.Fatalf("offload ratio %v, want 0.75", v)
	}
	if v := in.metric("flower_site_ttfb_seconds_bucket", sel(repSite, "peer")+`,le="0.025"`); v != 2 {
		t.Fatalf("peer ttfb bucket le=0.025: %v, want 2", v)
	}
	if v := in.metric("flower_site_ttfb_seconds_count", sel(repSite, "origin")); v != 3 {
		t.Fatalf("origin ttfb count %v, want 3", v)
	}
	if v := in.metric("flower_site_peers", `locality="1",role="content"`); v != 1 {
		t.Fatalf("peers gauge %v, want 1", v)
	}

	send(t, c, reportOf(repSite, counters(0, 1000, 0))) // the burst's second
	ping(t, c, 3)
	send(t, c, reportOf(repSite, counters(0, 5000, 0)))
	if f := expectError(t, c, frame.CodeRateLimited); f.Ref != frame.TReport {
		t.Fatalf("rate limit error about %s", f.Ref)
	}
	ping(t, c, 4)
	if v := in.metric("flower_site_bytes_total", sel(repSite, "peer")); v != 4000 {
		t.Fatalf("peer bytes %v after the refused report, want 4000", v)
	}
	if v := in.metric("flower_bootstrap_reports_total", `result="rate_limited"`); v != 1 {
		t.Fatalf("rate-limited reports %v, want 1", v)
	}
}

// rawReport encodes a one-site report and patches it, to send what the
// encoder would never produce.
func rawReport(origin string, patch func(b []byte, counters int)) []byte {
	b := reportOf(origin, counters(1, 2, 3)).Append(nil)
	patch(b, 3+8+1+len(origin))
	return b
}

// A malformed report, an oversized one (a count past the bound, too many
// sites), a report for a site the peer did not register and one with a
// non-canonical origin are each refused with a bad_report error frame and
// count nothing; the connection stays up.
func TestReportRefused(t *testing.T) {
	const other = "https://b.example"
	in := start(t, nil, "--allow-origins", repSite+","+other, "--report-interval", "1ms")
	c := registered(t, in, repSite)
	tooMany := []byte{frame.Version, byte(frame.TReport), frame.MaxReportSites + 1}
	one := reportOf(repSite, counters(1, 2, 3)).Append(nil)[3:]
	for i := range frame.MaxReportSites + 1 {
		s := append([]byte(nil), one...)
		binary.BigEndian.PutUint64(s, uint64(i+1))
		s[8] = 0 // no origin
		s = append(s[:9], s[9+len(repSite):]...)
		tooMany = append(tooMany, s...)
	}
	cases := []struct {
		name string
		b    []byte
		text string
	}{
		{"truncated", rawReport(repSite, func([]byte, int) {})[:30], "malformed"},
		{"count over the bound", rawReport(repSite, func(b []byte, at int) { binary.BigEndian.PutUint32(b[at+4:], math.MaxUint32) }), "oversized"},
		{"bytes over the bound", rawReport(repSite, func(b []byte, at int) { binary.BigEndian.PutUint64(b[at+12+8:], frame.MaxReportBytes+1) }), "oversized"},
		{"too many sites", tooMany, "oversized"},
		{"origin of another site", rawReport(repSite, func(b []byte, _ int) { binary.BigEndian.PutUint64(b[3:], uint64(ids.SiteOf(other))) }), "malformed"},
		{"unregistered site", reportOf(other, counters(1, 2, 3)).Append(nil), "not registered"},
		{"not canonical", (&frame.Frame{Type: frame.TReport, Report: []frame.SiteReport{{Site: ids.SiteOf("HTTPS://A.example"), Origin: "HTTPS://A.example"}}}).Append(nil), "not registered"},
	}
	for i, tc := range cases {
		if err := c.SendRaw(ctxT(t), tc.b); err != nil {
			t.Fatal(err)
		}
		f := expectError(t, c, frame.CodeBadReport)
		if f.Ref != frame.TReport || !strings.Contains(f.Text, tc.text) || !strings.Contains(f.Text, "nothing counted") {
			t.Errorf("%s: error about %s: %q", tc.name, f.Ref, f.Text)
		}
		ping(t, c, uint32(10+i))
	}
	for _, src := range opmetrics.SourceNames {
		if v := in.metric("flower_site_requests_total", sel(repSite, src)) + in.metric("flower_site_bytes_total", sel(repSite, src)); v != 0 {
			t.Errorf("%s counted %v after refused reports", src, v)
		}
	}
	if v := in.metric("flower_site_verify_failures_total", ""); v != 0 {
		t.Errorf("verify failures %v after refused reports", v)
	}
	if v := in.metric("flower_bootstrap_reports_total", `result="malformed"`); v != 5 {
		t.Errorf("malformed reports %v, want 5", v)
	}
	// The same peer's valid report still counts.
	send(t, c, reportOf(repSite, counters(1, 2, 3)))
	ping(t, c, 99)
	if v := in.metric("flower_site_bytes_total", sel(repSite, "origin")); v != 3 {
		t.Fatalf("origin bytes %v, want 3", v)
	}
}

// Two instances over NATS: each instance's /metrics shows the sums of the
// reports made to both, and the peers of both.
func TestReportClusterSums(t *testing.T) {
	url := startNATS(t)
	args := []string{"--nats", url, "--dir-snapshot", "200ms", "--allow-origins", repSite}
	i1, i2 := start(t, nil, args...), start(t, nil, args...)
	a, b := registered(t, i1, repSite), registered(t, i2, repSite)
	send(t, a, reportOf(repSite, counters(10, 3000, 1000)))
	send(t, b, reportOf(repSite, counters(20, 1000, 3000)))
	ping(t, a, 2)
	ping(t, b, 2)
	for _, in := range []*instance{i1, i2} {
		eventually(t, 10*time.Second, "summed counters on "+in.addr, func() bool {
			return in.metric("flower_site_bytes_total", sel(repSite, "peer")) == 4000 &&
				in.metric("flower_site_bytes_total", sel(repSite, "cache")) == 30 &&
				in.metric("flower_site_requests_total", sel(repSite, "peer")) == 4 &&
				in.metric("flower_site_ttfb_seconds_count", sel(repSite, "origin")) == 6 &&
				in.metric("flower_site_offload_ratio", sel(repSite, "")) == 0.5 &&
				in.metric("flower_site_peers", sel(repSite, "")) == 2
		})
	}
	// An instance that stops cleanly leaves its totals counted.
	if err := i2.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the stopped instance's peer gone from the gauge", func() bool {
		return i1.metric("flower_site_peers", sel(repSite, "")) == 1
	})
	if v := i1.metric("flower_site_bytes_total", sel(repSite, "peer")); v != 4000 {
		t.Fatalf("peer bytes %v after i2 left, want 4000", v)
	}
}

func httpDo(t *testing.T, in *instance, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The operator page: absent without --operator-token; 401 without a
// token, 403 with a wrong one, 200 with it (header, or ?token= which sets
// a cookie); its data carry the offload ratio of the reports.
func TestDashboard(t *testing.T) {
	off := start(t, nil, "--allow-origins", repSite)
	if r := httpDo(t, off, "/dashboard", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("without the flag: %d", r.StatusCode)
	}
	const tok = "0123456789abcdef-operator"
	in := start(t, []string{"FLOWER_OPERATOR_TOKEN=" + tok}, "--allow-origins", repSite, "--sample-interval", "50ms")
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	for _, p := range []string{"/dashboard", "/dashboard/data", "/dashboard/uPlot.min.js"} {
		if r := httpDo(t, in, p, nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without a token: %d", p, r.StatusCode)
		}
		if r := httpDo(t, in, p, map[string]string{"Authorization": "Bearer wrong"}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s with a wrong token: %d", p, r.StatusCode)
		}
		if r := httpDo(t, in, p, bearer); r.StatusCode != http.StatusOK {
			t.Fatalf("%s with the token: %d", p, r.StatusCode)
		}
	}
	r := httpDo(t, in, "/dashboard?token="+tok, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/dashboard" || len(r.Cookies()) != 1 || !r.Cookies()[0].HttpOnly {
		t.Fatalf("?token=: %d location %q cookies %v", r.StatusCode, r.Header.Get("Location"), r.Cookies())
	}
	ck := r.Cookies()[0]
	if r := httpDo(t, in, "/dashboard", map[string]string{"Cookie": ck.Name + "=" + ck.Value}); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("with the cookie: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := httpDo(t, in, "/dashboard?token=nope", nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("?token= wrong: %d", r.StatusCode)
	}

	c := registered(t, in, repSite)
	send(t, c, reportOf(repSite, counters(0, 600, 400)))
	ping(t, c, 2)
	r = httpDo(t, in, "/dashboard/data", bearer)
	var d struct {
		Total struct {
			OffloadRatio *float64 `json:"offloadRatio"`
			TTFBPeerMs   *float64 `json:"ttfbPeerMedianMs"`
		} `json:"total"`
		Sites []struct {
			Site         string   `json:"site"`
			OffloadRatio *float64 `json:"offloadRatio"`
		} `json:"sites"`
		Peers []struct {
			Site string `json:"site"`
			Role string `json:"role"`
			N    int    `json:"n"`
		} `json:"peers"`
	}
	if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Total.OffloadRatio == nil || *d.Total.OffloadRatio != 0.6 || len(d.Sites) != 1 || d.Sites[0].Site != repSite || *d.Sites[0].OffloadRatio != 0.6 {
		t.Fatalf("dashboard data: total %v sites %+v", d.Total.OffloadRatio, d.Sites)
	}
	// Two peer answers in (0.01, 0.025]: the median is that bucket's middle.
	if d.Total.TTFBPeerMs == nil || math.Abs(*d.Total.TTFBPeerMs-17.5) > 1e-6 {
		t.Fatalf("peer ttfb median %v ms, want 17.5", d.Total.TTFBPeerMs)
	}
	if len(d.Peers) != 1 || d.Peers[0].Role != "content" || d.Peers[0].N != 1 {
		t.Fatalf("dashboard peers %+v", d.Peers)
	}
	// The time series: the reported 600 peer bytes show as a rate between
	// two samples, over all sites and for the site.
	eventually(t, 10*time.Second, "the report in the time series", func() bool {
		var s struct {
			Series struct {
				T     []int64   `json:"t"`
				Peer  []float64 `json:"peer"`
				Sites map[string]struct {
					Peer []float64 `json:"peer"`
				} `json:"sites"`
			} `json:"series"`
		}
		r := httpDo(t, in, "/dashboard/data", bearer)
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		sum := func(v []float64) (n float64) {
			for _, x := range v {
				n += x
			}
			return n
		}
		site := s.Series.Sites[repSite].Peer
		return len(s.Series.T) == len(s.Series.Peer) && len(site) == len(s.Series.T) && sum(s.Series.Peer) > 0 && sum(site) > 0
	})
}

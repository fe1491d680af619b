package bootstrap

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/site/flower/vendor"
)

// The operator page: /dashboard (HTML and script), /dashboard/data (JSON),
// uPlot under /dashboard/. Served only with Config.OperatorToken, to whoever
// presents it: "Authorization: Bearer <token>", or "?token=<token>" once,
// which sets an HttpOnly cookie and redirects to the same page without it.

//go:embed dashboard/index.html dashboard/app.js
var dashboardFiles embed.FS

const operatorCookie = "flower_operator"

func (s *Server) serveDashboard() {
	mac := hmac.New(sha256.New, []byte(s.cfg.OperatorToken))
	mac.Write([]byte("flower-cdn operator cookie v1"))
	cookie := hex.EncodeToString(mac.Sum(nil))
	file := func(name, ctype string) http.HandlerFunc {
		b, err := dashboardFiles.ReadFile("dashboard/" + name)
		if err != nil {
			panic("dashboard: " + err.Error()) // embedded at build time
		}
		return serveBytes(b, ctype)
	}
	auth := func(h http.HandlerFunc) http.HandlerFunc { return s.operatorAuth(cookie, h) }
	s.mux.HandleFunc("GET /dashboard", auth(file("index.html", "text/html; charset=utf-8")))
	s.mux.HandleFunc("GET /dashboard/app.js", auth(file("app.js", "text/javascript; charset=utf-8")))
	s.mux.HandleFunc("GET /dashboard/uPlot.min.js", auth(serveBytes(vendor.UPlotJS, "text/javascript; charset=utf-8")))
	s.mux.HandleFunc("GET /dashboard/uPlot.min.css", auth(serveBytes(vendor.UPlotCSS, "text/css; charset=utf-8")))
	s.mux.HandleFunc("GET /dashboard/data", auth(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.dashboardData()) }))
}

func serveBytes(b []byte, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	}
}

// operatorAuth admits the operator: 401 without a token, 403 with a wrong
// one. Every answer forbids framing and inline script.
func (s *Server) operatorAuth(cookie string, h http.HandlerFunc) http.HandlerFunc {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if tok := r.URL.Query().Get("token"); tok != "" {
			if !eq(tok, s.cfg.OperatorToken) {
				http.Error(w, "wrong operator token", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: operatorCookie, Value: cookie, Path: "/dashboard", HttpOnly: true,
				Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		if a := r.Header.Get("Authorization"); a != "" {
			tok, ok := strings.CutPrefix(a, "Bearer ")
			if !ok || !eq(tok, s.cfg.OperatorToken) {
				http.Error(w, "wrong operator token", http.StatusForbidden)
				return
			}
			h(w, r)
			return
		}
		if c, err := r.Cookie(operatorCookie); err == nil {
			if !eq(c.Value, cookie) {
				http.Error(w, "stale operator cookie: open /dashboard?token=...", http.StatusForbidden)
				return
			}
			h(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="flower-bootstrap operator"`)
		http.Error(w, "operator token required: Authorization: Bearer, or /dashboard?token=", http.StatusUnauthorized)
	}
}

// dashData is /dashboard/data.
type dashData struct {
	Time     int64        `json:"time"`
	Instance string       `json:"instance"`
	Total    dashSite     `json:"total"`
	Sites    []dashSite   `json:"sites"`
	Peers    []dashPeers  `json:"peers"`
	Series   seriesJSON   `json:"series"`
	Abuse    dashAbuse    `json:"abuse"`
	Reports  dashReports  `json:"reports"`
	Buckets  []float64    `json:"ttfbBuckets"`
	Sources  []string     `json:"sources"`
	Interval float64      `json:"sampleSeconds"`
	Limits   dashSettings `json:"settings"`
}

type dashSite struct {
	Site           string    `json:"site"`
	OffloadRatio   *float64  `json:"offloadRatio"` // null: no peer or origin bytes yet
	Requests       [3]uint64 `json:"requests"`     // by Sources
	Bytes          [3]uint64 `json:"bytes"`
	VerifyFailures uint64    `json:"verifyFailures"`
	TTFBPeerMs     *float64  `json:"ttfbPeerMedianMs"`
	TTFBOriginMs   *float64  `json:"ttfbOriginMedianMs"`
	PeerTTFB       []uint64  `json:"peerTTFB"`
	OriginTTFB     []uint64  `json:"originTTFB"`
}

type dashPeers struct {
	Site     string `json:"site"`
	Locality int    `json:"locality"`
	Role     string `json:"role"`
	N        int    `json:"n"`
}

// dashAbuse: peers the service limited or turned away (this instance).
type dashAbuse struct {
	RateLimitedFrames  float64 `json:"rateLimitedFrames"`
	RejectedIPRate     float64 `json:"rejectedIPRate"`
	RejectedIPPeers    float64 `json:"rejectedIPPeers"`
	SlowReaderDrops    float64 `json:"slowReaderDrops"`
	BadFrames          float64 `json:"badFrames"`
	ReportsRateLimited float64 `json:"reportsRateLimited"`
}

type dashReports map[string]float64

type dashSettings struct {
	ReportInterval float64 `json:"reportIntervalSeconds"`
	ReportSites    int     `json:"reportSites"`
}

func siteJSON(name string, c opmetrics.SiteCounters) dashSite {
	d := dashSite{Site: name, Requests: c.Requests, Bytes: c.Bytes, VerifyFailures: c.VerifyFailures,
		PeerTTFB: c.PeerTTFB[:], OriginTTFB: c.OriginTTFB[:]}
	if r, ok := c.OffloadRatio(); ok {
		d.OffloadRatio = &r
	}
	if v, ok := c.PeerTTFB.Quantile(0.5); ok {
		ms := v * 1000
		d.TTFBPeerMs = &ms
	}
	if v, ok := c.OriginTTFB.Quantile(0.5); ok {
		ms := v * 1000
		d.TTFBOriginMs = &ms
	}
	return d
}

func (s *Server) dashboardData() dashData {
	tot := s.stats.totals()
	var all opmetrics.SiteCounters
	d := dashData{Time: time.Now().Unix(), Instance: s.instance, Sites: []dashSite{}, Peers: []dashPeers{},
		Buckets: opmetrics.TTFBBounds[:], Sources: opmetrics.SourceNames[:], Interval: s.cfg.SampleInterval.Seconds(),
		Limits: dashSettings{ReportInterval: s.cfg.ReportInterval.Seconds(), ReportSites: s.cfg.ReportSites}}
	peers := s.clusterPeers()
	s.stats.mu.Lock()
	for site, c := range tot {
		all.Add(c)
		d.Sites = append(d.Sites, siteJSON(s.stats.name(site), c))
	}
	for k, n := range peers {
		d.Peers = append(d.Peers, dashPeers{Site: s.stats.name(k.site), Locality: int(k.loc), Role: k.role.String(), N: n})
	}
	s.stats.mu.Unlock()
	d.Total = siteJSON("all", all)
	sort.Slice(d.Sites, func(i, j int) bool { return d.Sites[i].Site < d.Sites[j].Site })
	sort.Slice(d.Peers, func(i, j int) bool {
		a, b := d.Peers[i], d.Peers[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		if a.Locality != b.Locality {
			return a.Locality < b.Locality
		}
		return a.Role < b.Role
	})
	d.Series = s.stats.seriesRates()
	d.Abuse, d.Reports = s.abuseCounters()
	return d
}

// abuseCounters reads this instance's own counters of limited and refused
// peers from its Prometheus registry.
func (s *Server) abuseCounters() (dashAbuse, dashReports) {
	var a dashAbuse
	rep := dashReports{}
	mfs, err := s.m.reg.Gather()
	if err != nil {
		s.log.Warn("gather metrics for the operator page", "err", err)
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case ns + "_rate_limited_total":
				a.RateLimitedFrames += v
			case ns + "_slow_reader_drops_total":
				a.SlowReaderDrops += v
			case ns + "_frames_bad_total":
				a.BadFrames += v
			case ns + "_connections_total":
				switch label(m, "result") {
				case "rejected_ip_rate":
					a.RejectedIPRate += v
				case "rejected_ip_peers":
					a.RejectedIPPeers += v
				}
			case ns + "_reports_total":
				rep[label(m, "result")] += v
				if label(m, "result") == "rate_limited" {
					a.ReportsRateLimited += v
				}
			}
		}
	}
	return a, rep
}

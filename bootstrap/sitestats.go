package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

// siteStats keeps the counters peers report, per site (see
// docs/operator-metrics.md): this instance's own totals, and over NATS the
// totals every other instance publishes, so that each instance shows the
// cluster's sums. Memory is bounded: at most maxSites distinct sites, at
// most maxInstances other instances, and a time series of SeriesLen
// samples.
type siteStats struct {
	maxSites int

	mu      sync.Mutex
	names   map[ids.SiteID]string // every site known (capped): its origin, or ""
	local   map[ids.SiteID]*opmetrics.SiteCounters
	retired map[ids.SiteID]*opmetrics.SiteCounters // instances that left cleanly
	remote  map[string]*remoteStats
	series  series
}

// remoteStats is what another instance last published.
type remoteStats struct {
	sites map[ids.SiteID]opmetrics.SiteCounters
	peers map[peerKey]int
	at    time.Time
}

// peerKey names one peers gauge: the peers of a site in a locality with a
// role.
type peerKey struct {
	site ids.SiteID
	loc  uint16
	role frame.Role
}

// maxInstances bounds the other instances whose totals are kept.
const maxInstances = 64

var errSiteCap = errors.New("too many distinct sites: the service keeps no more (--report-sites)")

func newSiteStats(maxSites int) *siteStats {
	return &siteStats{
		maxSites: maxSites,
		names:    make(map[ids.SiteID]string),
		local:    make(map[ids.SiteID]*opmetrics.SiteCounters),
		retired:  make(map[ids.SiteID]*opmetrics.SiteCounters),
		remote:   make(map[string]*remoteStats),
		series:   newSeries(),
	}
}

// know records a site (and its origin when given); false when the cap is
// reached. Called under st.mu.
func (st *siteStats) know(site ids.SiteID, origin string) bool {
	o, ok := st.names[site]
	if !ok && len(st.names) >= st.maxSites {
		return false
	}
	if o == "" {
		st.names[site] = origin
	}
	return true
}

// name is a site's label: its origin if known, else its id in hex.
func (st *siteStats) name(site ids.SiteID) string {
	if o := st.names[site]; o != "" {
		return o
	}
	return fmt.Sprintf("%016x", uint64(site))
}

// add counts one accepted report; all or nothing.
func (st *siteStats) add(rs []frame.SiteReport) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	fresh := 0
	for _, r := range rs {
		if _, ok := st.names[r.Site]; !ok {
			fresh++
		}
	}
	if len(st.names)+fresh > st.maxSites {
		return errSiteCap
	}
	for _, r := range rs {
		st.know(r.Site, r.Origin)
		c := st.local[r.Site]
		if c == nil {
			c = new(opmetrics.SiteCounters)
			st.local[r.Site] = c
		}
		c.Add(r.Counters)
	}
	return nil
}

// totals are the cluster's sums per site: this instance's, every other
// instance's last published ones, and those of instances that left.
func (st *siteStats) totals() map[ids.SiteID]opmetrics.SiteCounters {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.totalsLocked()
}

func (st *siteStats) totalsLocked() map[ids.SiteID]opmetrics.SiteCounters {
	out := make(map[ids.SiteID]opmetrics.SiteCounters, len(st.names))
	addTo := func(site ids.SiteID, c opmetrics.SiteCounters) {
		t := out[site]
		t.Add(c)
		out[site] = t
	}
	for s, c := range st.local {
		addTo(s, *c)
	}
	for s, c := range st.retired {
		addTo(s, *c)
	}
	for _, r := range st.remote {
		for s, c := range r.sites {
			addTo(s, c)
		}
	}
	return out
}

// remotePeers sums the peers gauges of the other instances heard from
// since fresh.
func (st *siteStats) remotePeers(fresh time.Time, into map[peerKey]int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range st.remote {
		if r.at.Before(fresh) {
			continue
		}
		for k, n := range r.peers {
			into[k] += n
		}
	}
}

// statsMsg is what an instance publishes on <prefix>.sitestats: its own
// totals per site (cumulative, so a lost message costs nothing) and its
// peers gauges; Bye when it stops, after which its totals stay counted
// (counters never go down) but it is no longer tracked.
type statsMsg struct {
	V        int         `json:"v"`
	Instance string      `json:"instance"`
	Bye      bool        `json:"bye,omitempty"`
	Sites    []statsSite `json:"sites,omitempty"`
	Peers    []statsPeer `json:"peers,omitempty"`
}

type statsSite struct {
	Site   uint64   `json:"site"`
	Origin string   `json:"origin,omitempty"`
	C      []uint64 `json:"c"` // opmetrics.SiteCounters.Each order
}

type statsPeer struct {
	Site uint64 `json:"site"`
	Loc  uint16 `json:"loc"`
	Role uint8  `json:"role"`
	N    int    `json:"n"`
}

// Bounds of a statsMsg.
const (
	statsMsgVersion = 1
	maxStatsMsg     = 8 << 20
	maxPeerGauges   = 1 << 16
	maxGaugePeers   = 10_000_000
)

// nCounters is the number of counters of a SiteCounters.
var nCounters = func() int {
	var c opmetrics.SiteCounters
	n := 0
	c.Each(func(*uint64) { n++ })
	return n
}()

// encodeStatsMsg builds this instance's message.
func (st *siteStats) encodeStatsMsg(inst string, bye bool, peers map[peerKey]int) ([]byte, error) {
	m := statsMsg{V: statsMsgVersion, Instance: inst, Bye: bye}
	st.mu.Lock()
	for s, c := range st.local {
		ss := statsSite{Site: uint64(s), Origin: st.names[s], C: make([]uint64, 0, nCounters)}
		c.Each(func(v *uint64) { ss.C = append(ss.C, *v) })
		m.Sites = append(m.Sites, ss)
	}
	st.mu.Unlock()
	for k, n := range peers {
		if len(m.Peers) == maxPeerGauges {
			break
		}
		m.Peers = append(m.Peers, statsPeer{Site: uint64(k.site), Loc: k.loc, Role: uint8(k.role), N: n})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode site stats: %w", err)
	}
	return b, nil
}

// decodeStatsMsg parses and checks a message from another instance.
func decodeStatsMsg(b []byte, maxSites int) (statsMsg, error) {
	var m statsMsg
	if len(b) > maxStatsMsg {
		return m, fmt.Errorf("site stats message of %d bytes > %d", len(b), maxStatsMsg)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("site stats message: %w", err)
	}
	switch {
	case m.V != statsMsgVersion:
		return m, fmt.Errorf("site stats message version %d, want %d", m.V, statsMsgVersion)
	case m.Instance == "" || len(m.Instance) > 64:
		return m, errors.New("site stats message: bad instance id")
	case len(m.Sites) > maxSites:
		return m, fmt.Errorf("site stats message: %d sites > %d", len(m.Sites), maxSites)
	case len(m.Peers) > maxPeerGauges:
		return m, fmt.Errorf("site stats message: %d peer gauges > %d", len(m.Peers), maxPeerGauges)
	}
	seen := make(map[uint64]bool, len(m.Sites))
	for _, s := range m.Sites {
		switch {
		case s.Site == 0 || seen[s.Site]:
			return m, fmt.Errorf("site stats message: site %016x zero or twice", s.Site)
		case len(s.C) != nCounters:
			return m, fmt.Errorf("site stats message: %d counters, want %d", len(s.C), nCounters)
		case s.Origin != "" && (len(s.Origin) > frame.MaxText || ids.SiteOf(s.Origin) != ids.SiteID(s.Site)):
			return m, fmt.Errorf("site stats message: origin %q is not site %016x", s.Origin, s.Site)
		}
		seen[s.Site] = true
	}
	for _, p := range m.Peers {
		if p.Site == 0 || p.Role < uint8(frame.RoleClient) || p.Role > uint8(frame.RoleDirectory) || p.N < 0 || p.N > maxGaugePeers {
			return m, fmt.Errorf("site stats message: bad peers gauge %+v", p)
		}
	}
	return m, nil
}

// merge applies another instance's message. Sites beyond the cap are
// ignored. With maxInstances tracked already, the one heard from least
// recently, if not since stale (it died without a bye), is retired to make
// room; false when the message was dropped (every tracked instance is
// alive).
func (st *siteStats) merge(m statsMsg, now, stale time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := st.remote[m.Instance]
	if r == nil {
		if len(st.remote) >= maxInstances {
			oldest := ""
			for id, o := range st.remote {
				if oldest == "" || o.at.Before(st.remote[oldest].at) {
					oldest = id
				}
			}
			if !st.remote[oldest].at.Before(stale) {
				return false
			}
			st.retire(oldest)
		}
		r = &remoteStats{}
		st.remote[m.Instance] = r
	}
	r.at = now
	r.sites = make(map[ids.SiteID]opmetrics.SiteCounters, len(m.Sites))
	for _, s := range m.Sites {
		site := ids.SiteID(s.Site)
		if !st.know(site, s.Origin) {
			continue
		}
		var c opmetrics.SiteCounters
		i := 0
		c.Each(func(v *uint64) { *v = s.C[i]; i++ })
		r.sites[site] = c
	}
	r.peers = make(map[peerKey]int, len(m.Peers))
	for _, p := range m.Peers {
		if _, ok := st.names[ids.SiteID(p.Site)]; ok || st.know(ids.SiteID(p.Site), "") {
			r.peers[peerKey{site: ids.SiteID(p.Site), loc: p.Loc, role: frame.Role(p.Role)}] += p.N
		}
	}
	if m.Bye {
		st.retire(m.Instance)
	}
	return true
}

// retire keeps an instance's last totals counted (counters never go down)
// and stops tracking it. Called under st.mu.
func (st *siteStats) retire(inst string) {
	for s, c := range st.remote[inst].sites {
		t := st.retired[s]
		if t == nil {
			t = new(opmetrics.SiteCounters)
			st.retired[s] = t
		}
		t.Add(c)
	}
	delete(st.remote, inst)
}

// SeriesLen is the number of samples the operator page's series keeps
// (an hour at the default --sample-interval of 10 s).
const SeriesLen = 360

// series is a ring of samples of the cumulative peer and origin bytes,
// over all sites and per site.
type series struct {
	n, next int
	t       [SeriesLen]int64 // unix milliseconds
	all     [SeriesLen][2]uint64
	site    map[ids.SiteID]*siteSeries
}

// siteSeries is one site's samples; before the site's first report its
// samples are zero, which they were.
type siteSeries struct {
	v [SeriesLen][2]uint64
}

func newSeries() series { return series{site: make(map[ids.SiteID]*siteSeries)} }

// sample takes one sample of the totals.
func (st *siteStats) sample(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	tot := st.totalsLocked()
	s := &st.series
	at := now.UnixMilli()
	i := s.next
	s.t[i] = at
	s.all[i] = [2]uint64{}
	for site, c := range tot {
		v := [2]uint64{c.Bytes[opmetrics.SourcePeer], c.Bytes[opmetrics.SourceOrigin]}
		s.all[i][0] += v[0]
		s.all[i][1] += v[1]
		ss := s.site[site]
		if ss == nil {
			ss = &siteSeries{}
			s.site[site] = ss
		}
		ss.v[i] = v
	}
	s.next = (i + 1) % SeriesLen
	s.n = min(s.n+1, SeriesLen)
}

// seriesJSON is the series as rates: bytes per second between
// consecutive samples, oldest first.
type seriesJSON struct {
	T      []int64                 `json:"t"` // unix seconds of the later sample
	Peer   []float64               `json:"peer"`
	Origin []float64               `json:"origin"`
	Sites  map[string]seriesRatesJ `json:"sites"`
}

type seriesRatesJ struct {
	Peer   []float64 `json:"peer"`
	Origin []float64 `json:"origin"`
}

func (st *siteStats) seriesRates() seriesJSON {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := &st.series
	out := seriesJSON{T: []int64{}, Peer: []float64{}, Origin: []float64{}, Sites: map[string]seriesRatesJ{}}
	idx := func(k int) int { return (s.next - s.n + k + SeriesLen) % SeriesLen }
	rate := func(a, b uint64, dt float64) float64 {
		if b < a || dt <= 0 {
			return 0
		}
		return float64(b-a) / dt
	}
	for k := 1; k < s.n; k++ {
		i, j := idx(k-1), idx(k)
		dt := float64(s.t[j]-s.t[i]) / 1000
		out.T = append(out.T, s.t[j]/1000)
		out.Peer = append(out.Peer, rate(s.all[i][0], s.all[j][0], dt))
		out.Origin = append(out.Origin, rate(s.all[i][1], s.all[j][1], dt))
	}
	for site, ss := range s.site {
		r := seriesRatesJ{Peer: []float64{}, Origin: []float64{}}
		for k := 1; k < s.n; k++ {
			i, j := idx(k-1), idx(k)
			dt := float64(s.t[j]-s.t[i]) / 1000
			r.Peer = append(r.Peer, rate(ss.v[i][0], ss.v[j][0], dt))
			r.Origin = append(r.Origin, rate(ss.v[i][1], ss.v[j][1], dt))
		}
		out.Sites[st.name(site)] = r
	}
	return out
}

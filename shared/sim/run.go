package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
)

// Result is the outcome of a run: the JSON object `flower sim --json` prints.
type Result struct {
	Config  ConfigJSON `json:"config"`
	Systems Systems    `json:"systems"`
	// Wall-clock figures, filled by the caller (they vary between runs).
	ElapsedS     float64 `json:"elapsed_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// Systems maps a system name to its metrics; it marshals in AllSystems order.
type Systems map[string]*Metrics

// MarshalJSON writes the systems in AllSystems order.
func (s Systems) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, name := range AllSystems {
		m, ok := s[name]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(name)
		v, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ConfigJSON is the configuration as reported in the output, plus two
// figures of the generated trace.
type ConfigJSON struct {
	Peers         int      `json:"peers"`
	Sites         int      `json:"sites"`
	Objects       int      `json:"objects"`
	Localities    int      `json:"localities"`
	Queries       int      `json:"queries"`
	QueryInterval string   `json:"query_interval"`
	Churn         string   `json:"churn"`
	Workload      string   `json:"workload"`
	Seeders       int      `json:"seeders"`
	PeersTotal    int      `json:"peers_total"` // distinct peers in the trace
	MaxInterests  int      `json:"max_interests"`
	SiteZipf      float64  `json:"site_zipf"`
	ObjectZipf    float64  `json:"object_zipf"`
	ObjectKB      float64  `json:"object_kb"`
	ObjectSigma   float64  `json:"object_sigma"`
	Seed          uint64   `json:"seed"`
	Systems       []string `json:"systems"`
	Drain         string   `json:"drain"`
	Warmup        int      `json:"warmup"`
	Buckets       int      `json:"buckets"`
	Wire          bool     `json:"wire"`

	CacheMB       float64 `json:"cache_mb_per_site"`
	View          int     `json:"view"`
	GossipSubset  int     `json:"gossip_subset"`
	Gossip        string  `json:"gossip"`
	PushThreshold int     `json:"push_threshold"`
	Keepalive     string  `json:"keepalive"`
	Stabilize     string  `json:"stabilize"`
	FixFingers    string  `json:"fix_fingers"`
	QueryTries    int     `json:"query_tries"`
	PetalMax      int     `json:"petal_max"`
	InstanceBits  int     `json:"instance_bits"`
	LeaveHandover bool    `json:"leave_handover"`
	CleanLeave    float64 `json:"clean_leave"`

	TraceEndS         float64 `json:"trace_end_s"`
	OnlinePeerMinutes float64 `json:"online_peer_minutes"`
}

func configJSON(c *Config, w *World) ConfigJSON {
	sys := c.Systems
	if len(sys) == 0 {
		sys = AllSystems
	}
	cc := &c.Core
	return ConfigJSON{
		Peers: c.Peers, Sites: c.Sites, Objects: c.Objects, Localities: c.Localities, Queries: c.Queries,
		QueryInterval: fmtDur(c.QueryInterval), Churn: churnString(c), MaxInterests: c.MaxInterests,
		Workload: c.Workload, Seeders: c.Seeders, PeersTotal: len(w.PeerIDs),
		SiteZipf: c.SiteZipf, ObjectZipf: c.ObjectZipf, ObjectKB: c.ObjectKB, ObjectSigma: c.ObjectSigma,
		Seed: c.Seed, Systems: sys, Drain: fmtDur(c.Drain), Warmup: c.Warmup, Buckets: c.Buckets, Wire: c.Wire,
		CacheMB: float64(cc.CacheBytes) / (1 << 20), View: cc.ViewSize, GossipSubset: cc.GossipSubset,
		Gossip: fmtDur(cc.GossipPeriod), PushThreshold: cc.PushThreshold, Keepalive: fmtDur(cc.KeepalivePeriod),
		Stabilize: fmtDur(cc.StabilizePeriod), FixFingers: fmtDur(cc.FixFingersPeriod), QueryTries: cc.QueryTries,
		PetalMax: cc.PetalMaxPeers, InstanceBits: cc.InstanceBits, LeaveHandover: cc.LeaveHandover, CleanLeave: c.CleanLeave,
		TraceEndS: round3(w.End.Seconds()), OnlinePeerMinutes: round3(w.PeerMins),
	}
}

// Run builds the workload of cfg and runs the selected systems over it, in
// parallel (each system has its own state, so the result does not depend on
// scheduling).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := NewWorld(cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Config: configJSON(&cfg, w), Systems: Systems{}}

	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	runOne := func(name string, f func() (*Metrics, error)) {
		defer wg.Done()
		m, err := f()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		res.Systems[name] = m
	}
	if cfg.Runs(SysFlower) {
		// Build the nodes first, on this goroutine, so that a bad core
		// configuration fails before anything else runs.
		f, err := newFlower(w, cfg)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go runOne(SysFlower, func() (*Metrics, error) {
			if err := f.run(ctx); err != nil {
				return nil, err
			}
			return f.metrics(), nil
		})
	}
	dhts := []struct {
		name string
		make func() (handler, *dht)
	}{
		{SysSquirrel, func() (handler, *dht) { s := newSquirrel(w, newChord(w)); return s, &s.dht }},
		{SysSquirrelPNS, func() (handler, *dht) { s := newSquirrel(w, newPastry(w)); return s, &s.dht }},
		{SysSquirrelPNSDir, func() (handler, *dht) { s := newSquirrelDir(w, newPastry(w)); return s, &s.dht }},
	}
	for _, sys := range dhts {
		if !cfg.Runs(sys.name) {
			continue
		}
		wg.Add(1)
		go runOne(sys.name, func() (*Metrics, error) {
			h, s := sys.make()
			if err := s.run(ctx, h); err != nil {
				return nil, err
			}
			s.maintenance()
			return s.metrics(), nil
		})
	}
	if cfg.Runs(SysOrigin) {
		wg.Add(1)
		go runOne(SysOrigin, func() (*Metrics, error) {
			o := newOrigin(w)
			if err := o.run(ctx, o); err != nil {
				return nil, err
			}
			return o.metrics(), nil
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return res, nil
}

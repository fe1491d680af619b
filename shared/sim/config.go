// Package sim is the discrete-event simulator of Flower-CDN. It hosts the
// unchanged protocol core (shared/core) for thousands of peers in one process
// and runs the same query trace through the baselines: Squirrel (a DHT web
// cache over all peers) home-store over Chord, home-store and directory
// scheme over Pastry with proximity neighbour selection, and origin-only, so
// that the systems can be compared on hit ratio, lookup latency, transfer
// distance, origin load and background traffic. docs/simulator.md describes
// the model.
//
// A run is deterministic: the same Config gives the same Result, apart from
// wall-clock fields.
package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/core"
)

// System names, as used by Config.Systems and in the output.
const (
	SysFlower   = "flower"
	SysSquirrel = "squirrel" // home-store over Chord
	// SysSquirrelPNS is home-store over Pastry with proximity neighbour
	// selection, SysSquirrelPNSDir the directory scheme over the same.
	SysSquirrelPNS    = "squirrel_pns"
	SysSquirrelPNSDir = "squirrel_pns_dir"
	SysOrigin         = "origin"
)

// AllSystems lists every system in output order.
var AllSystems = []string{SysFlower, SysSquirrel, SysSquirrelPNS, SysSquirrelPNSDir, SysOrigin}

// Workloads.
const (
	WorkloadExp     = "exp"
	WorkloadBrowser = "browser"
)

// Config is one simulation run.
type Config struct {
	Peers      int // number of peers (browsers)
	Sites      int // number of websites W
	Objects    int // objects per website O
	Localities int // k
	Queries    int // queries to issue before the drain

	// QueryInterval is the mean time between two queries of one online peer
	// (each online peer issues a Poisson stream of queries).
	QueryInterval time.Duration
	// ChurnOn and ChurnOff are the mean online session and offline times
	// (exponential). Both zero: no churn, every peer online all the time.
	ChurnOn, ChurnOff time.Duration

	// Workload is WorkloadExp (Peers peers with exponential churn, above) or
	// WorkloadBrowser: visitors online while a page of the site is open.
	// Peers is then the mean number of visitors online; ChurnOn and ChurnOff
	// are not used.
	Workload string
	// Browser workload: log-normal sessions (median SessionMedian, sigma
	// SessionSigma); a visitor that leaves returns with probability
	// ReturnFrac after an exponential time of mean ReturnMean (with its
	// stored state), or never.
	SessionMedian time.Duration
	SessionSigma  float64
	ReturnFrac    float64
	ReturnMean    time.Duration
	// Seeders always-on peers per locality, on top of the others (browser
	// workload only).
	Seeders int
	// CleanLeave is the fraction of departures in which the page can still
	// send its last messages (Core.LeaveHandover); the others are silent.
	CleanLeave float64

	// MaxInterests: each peer is interested in 1..MaxInterests websites
	// (uniform count), drawn without replacement by website popularity.
	MaxInterests int
	// SiteZipf and ObjectZipf are the Zipf exponents of website and object
	// popularity.
	SiteZipf, ObjectZipf float64
	// ObjectKB is the median object size in KB; sizes are log-normal with
	// sigma ObjectSigma, clamped to [512 B, 4 MB].
	ObjectKB    float64
	ObjectSigma float64

	Seed uint64

	// Systems to run, a subset of AllSystems (nil: all).
	Systems []string

	// Core is the protocol configuration of every Flower-CDN node. Its
	// Localities is forced to Localities. Core.CacheBytes (per website) also
	// sets the baselines' per-peer cache quota: CacheBytes times the number of
	// websites the peer is interested in.
	Core core.Config

	// Drain bounds the simulated time after the last query is issued during
	// which in-flight queries may still finish.
	Drain time.Duration
	// Warmup queries (the first ones issued) run but are left out of the metrics.
	Warmup int
	// Buckets is the number of time buckets of the series (for the plot).
	Buckets int

	// Wire sends every Flower-CDN message through the wire codec (encoded
	// by the sender's host driver, decoded by the receiver's) instead of
	// handing the decoded message over. Results are the same; it costs time.
	Wire bool
}

// DefaultConfig is the configuration of `flower sim` without flags.
func DefaultConfig() Config {
	cc := core.DefaultConfig()
	return Config{
		Peers:         2000,
		Sites:         20,
		Objects:       1000,
		Localities:    6,
		Queries:       200000,
		QueryInterval: 30 * time.Second,
		ChurnOn:       60 * time.Minute,
		ChurnOff:      60 * time.Minute,
		Workload:      WorkloadExp,
		SessionMedian: 4 * time.Minute,
		SessionSigma:  1.2,
		ReturnFrac:    0.3,
		ReturnMean:    2 * time.Hour,
		CleanLeave:    0.5,
		MaxInterests:  3,
		SiteZipf:      0.8,
		ObjectZipf:    0.8,
		ObjectKB:      30,
		ObjectSigma:   1,
		Seed:          1,
		Core:          cc,
		Drain:         10 * time.Minute,
		Buckets:       40,
	}
}

// Static reports whether the run has no churn.
func (c *Config) Static() bool {
	return c.Workload != WorkloadBrowser && c.ChurnOn == 0 && c.ChurnOff == 0
}

// Runs reports whether system s is selected.
func (c *Config) Runs(s string) bool {
	if len(c.Systems) == 0 {
		return true
	}
	for _, x := range c.Systems {
		if x == s {
			return true
		}
	}
	return false
}

// Validate reports the first value out of range.
func (c *Config) Validate() error {
	switch {
	case c.Peers < 1 || c.Peers > 10_000_000:
		return fmt.Errorf("peers %d out of range [1,10000000]", c.Peers)
	case c.Sites < 1 || c.Sites > 65535:
		return fmt.Errorf("sites %d out of range [1,65535]", c.Sites)
	case c.Objects < 1 || c.Objects > 10_000_000:
		return fmt.Errorf("objects %d out of range [1,10000000]", c.Objects)
	case int64(c.Sites)*int64(c.Objects) > 50_000_000:
		return fmt.Errorf("sites*objects %d too large (at most 50000000)", int64(c.Sites)*int64(c.Objects))
	case c.Localities < 1 || c.Localities > 256:
		return fmt.Errorf("localities %d out of range [1,256]", c.Localities)
	case c.Queries < 1 || c.Queries > 1_000_000_000:
		return fmt.Errorf("queries %d out of range [1,1000000000]", c.Queries)
	case c.QueryInterval <= 0:
		return fmt.Errorf("query interval %v must be positive", c.QueryInterval)
	case c.ChurnOn < 0 || c.ChurnOff < 0 || (c.ChurnOn == 0) != (c.ChurnOff == 0):
		return fmt.Errorf("churn %v/%v: both means must be positive (or both zero for a static run)", c.ChurnOn, c.ChurnOff)
	case c.Workload != WorkloadExp && c.Workload != WorkloadBrowser:
		return fmt.Errorf("workload %q: want %s or %s", c.Workload, WorkloadExp, WorkloadBrowser)
	case c.SessionMedian <= 0 || c.SessionSigma < 0 || c.SessionSigma > 4:
		return fmt.Errorf("browser sessions: median %v must be positive, sigma %g in [0,4]", c.SessionMedian, c.SessionSigma)
	case c.ReturnFrac < 0 || c.ReturnFrac > 1 || c.ReturnMean <= 0:
		return fmt.Errorf("browser returns: fraction %g must be in [0,1], mean %v positive", c.ReturnFrac, c.ReturnMean)
	case c.CleanLeave < 0 || c.CleanLeave > 1:
		return fmt.Errorf("clean-leave fraction %g must be in [0,1]", c.CleanLeave)
	case c.Seeders < 0 || c.Seeders > 10000:
		return fmt.Errorf("seeders %d out of range [0,10000]", c.Seeders)
	case c.Seeders > 0 && c.Workload != WorkloadBrowser:
		return fmt.Errorf("seeders need the browser workload")
	case c.MaxInterests < 1:
		return fmt.Errorf("max interests %d must be at least 1", c.MaxInterests)
	case c.SiteZipf < 0 || c.ObjectZipf < 0 || c.SiteZipf > 10 || c.ObjectZipf > 10:
		return fmt.Errorf("zipf exponents must be in [0,10]")
	case c.ObjectKB <= 0 || c.ObjectKB > 4096:
		return fmt.Errorf("object size %g KB out of range (0,4096]", c.ObjectKB)
	case c.ObjectSigma < 0 || c.ObjectSigma > 4:
		return fmt.Errorf("object size sigma %g out of range [0,4]", c.ObjectSigma)
	case c.Drain < 0:
		return fmt.Errorf("drain %v must not be negative", c.Drain)
	case c.Warmup < 0 || c.Warmup >= c.Queries:
		return fmt.Errorf("warmup %d out of range [0,queries=%d)", c.Warmup, c.Queries)
	case c.Buckets < 1 || c.Buckets > 10000:
		return fmt.Errorf("buckets %d out of range [1,10000]", c.Buckets)
	}
	for _, s := range c.Systems {
		ok := false
		for _, a := range AllSystems {
			ok = ok || s == a
		}
		if !ok {
			return fmt.Errorf("unknown system %q (want a subset of %s)", s, strings.Join(AllSystems, ","))
		}
	}
	cc := c.Core
	cc.Localities = c.Localities
	if err := cc.Validate(); err != nil {
		return err
	}
	return nil
}

// ParseChurn parses "ON/OFF" mean durations (for example "60m/60m") or "none".
func ParseChurn(s string) (on, off time.Duration, err error) {
	s = strings.TrimSpace(s)
	if s == "none" || s == "static" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("churn %q: want ON/OFF mean durations such as 60m/60m, or none", s)
	}
	if on, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("churn %q: online mean: %w", s, err)
	}
	if off, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("churn %q: offline mean: %w", s, err)
	}
	if on <= 0 || off <= 0 {
		return 0, 0, fmt.Errorf("churn %q: both means must be positive", s)
	}
	return on, off, nil
}

// ParseSystems parses a comma-separated subset of AllSystems.
func ParseSystems(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, a := range AllSystems {
			ok = ok || f == a
		}
		if !ok {
			return nil, fmt.Errorf("systems: unknown system %q (want a subset of %s)", f, strings.Join(AllSystems, ","))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("systems: empty list")
	}
	// Keep the canonical order.
	var ordered []string
	for _, a := range AllSystems {
		if seen[a] {
			ordered = append(ordered, a)
		}
	}
	return ordered, nil
}

func churnString(c *Config) string {
	if c.Workload == WorkloadBrowser {
		return fmt.Sprintf("browser (sessions log-normal median %s sigma %g, %g%% return after %s, %d seeders/locality)",
			fmtDur(c.SessionMedian), c.SessionSigma, 100*c.ReturnFrac, fmtDur(c.ReturnMean), c.Seeders)
	}
	if c.Static() {
		return "none"
	}
	return fmtDur(c.ChurnOn) + "/" + fmtDur(c.ChurnOff)
}

func fmtDur(d time.Duration) string {
	s := d.String() // "1h0m0s", "30m0s", "1m30s", "30s", "500ms"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

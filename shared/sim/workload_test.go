package sim

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

func browserConfig() Config {
	cfg := smallConfig()
	cfg.Workload = WorkloadBrowser
	cfg.Peers = 200
	cfg.Queries = 20000
	cfg.Seeders = 2
	cfg.ReturnMean = 10 * time.Minute // short, so that returns happen within the trace
	return cfg
}

// TestBrowserWorkload checks the browser trace: the online count stays
// near Peers, sessions have the configured median, a fraction of departures
// return and the others never do, seeders never leave, and queries only
// come from online peers.
func TestBrowserWorkload(t *testing.T) {
	cfg := browserConfig()
	cfg.QueryInterval = 2 * time.Minute // a trace of about 3 hours
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Localities
	seeders := w.PeerIDs[cfg.Peers : cfg.Peers+cfg.Seeders*k]
	perLoc := make([]int, k)
	for i := range seeders {
		perLoc[w.Loc[cfg.Peers+i]]++
	}
	for l, n := range perLoc {
		if n != cfg.Seeders {
			t.Fatalf("locality %d has %d seeders, want %d", l, n, cfg.Seeders)
		}
	}
	online := slices.Clone(w.InitOnline)
	upAt := make([]time.Duration, len(w.PeerIDs))
	downs := make([]int, len(w.PeerIDs))
	var sessions []float64
	returns, departures := 0, 0
	onlineN := 0
	for _, on := range online {
		if on {
			onlineN++
		}
	}
	if onlineN != cfg.Peers+cfg.Seeders*k {
		t.Fatalf("%d online at 0, want %d", onlineN, cfg.Peers+cfg.Seeders*k)
	}
	for i := range upAt {
		upAt[i] = -1
	}
	for _, e := range w.Trace {
		p := e.Peer
		switch e.Obj {
		case traceDown:
			if !online[p] {
				t.Fatalf("peer %d leaves while offline", p)
			}
			if int(p) >= cfg.Peers && int(p) < cfg.Peers+cfg.Seeders*k {
				t.Fatalf("seeder %d left", p)
			}
			online[p] = false
			departures++
			downs[p]++
			if upAt[p] >= 0 && upAt[p] < w.End-90*time.Minute {
				sessions = append(sessions, (e.At - upAt[p]).Minutes())
				upAt[p] = -1
			}
		case traceUp:
			if online[p] {
				t.Fatalf("peer %d arrives while online", p)
			}
			online[p] = true
			upAt[p] = e.At
			if downs[p] > 0 {
				returns++
			}
		default:
			if !online[p] {
				t.Fatalf("query by offline peer %d", p)
			}
		}
	}
	mean := w.PeerMins / w.End.Minutes()
	want := float64(cfg.Peers + cfg.Seeders*k)
	if math.Abs(mean-want) > 0.15*want {
		t.Fatalf("mean online %.1f, want about %.0f", mean, want)
	}
	// Sessions that began at least 90 minutes before the end; the few still
	// open count as longer than any.
	for p, at := range upAt {
		if at >= 0 && at < w.End-90*time.Minute && online[p] {
			sessions = append(sessions, math.Inf(1))
		}
	}
	slices.Sort(sessions)
	if len(sessions) < 500 {
		t.Fatalf("only %d sessions", len(sessions))
	}
	if med := sessions[len(sessions)/2]; med < 3.5 || med > 4.6 {
		t.Fatalf("median session %.2f min, want about 4", med)
	}
	if returns == 0 || float64(returns) > 0.35*float64(departures) {
		t.Fatalf("%d returns of %d departures, want some and at most about 30%%", returns, departures)
	}
	if len(w.PeerIDs) <= cfg.Peers+cfg.Seeders*k {
		t.Fatal("no new visitors arrived")
	}
}

// TestBrowserNoFailedQueries: every system answers every query of the
// browser workload (with seeders), and the run is deterministic.
func TestBrowserNoFailedQueries(t *testing.T) {
	cfg := browserConfig()
	cfg.Queries = 10000
	a := runJSON(t, cfg)
	if b := runJSON(t, cfg); string(a) != string(b) {
		t.Fatalf("same seed, different results:\n%s", firstDiff(a, b))
	}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range AllSystems {
		m := r.Systems[name]
		if m.FailedQueries != 0 || m.Answered+m.AbandonedQueries != m.Queries {
			t.Errorf("%s: %d failed, %d answered + %d abandoned of %d (anomalies %v)", name, m.FailedQueries, m.Answered, m.AbandonedQueries, m.Queries, m.Anomalies)
		}
		if name != SysOrigin && m.PeerHits == 0 {
			t.Errorf("%s: no peer hits", name)
		}
	}
}

// TestLeaveHandoverInSim: with the core's LeaveHandover, the browser
// workload still answers every query, deterministically; goodbyes of
// unclean departures are lost (never delivered), those of clean ones go out,
// and clean goodbyes shorten directory repairs.
func TestLeaveHandoverInSim(t *testing.T) {
	cfg := browserConfig()
	cfg.Systems = []string{SysFlower}
	cfg.Core.LeaveHandover = true
	repair := map[float64]float64{}
	for _, clean := range []float64{0, 0.5, 1} {
		cfg.CleanLeave = clean
		if clean == 0.5 {
			a := runJSON(t, cfg)
			if b := runJSON(t, cfg); string(a) != string(b) {
				t.Fatalf("clean=%g: same seed, different results:\n%s", clean, firstDiff(a, b))
			}
		}
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := r.Systems[SysFlower]
		if m.FailedQueries != 0 || m.Answered+m.AbandonedQueries != m.Queries {
			t.Fatalf("clean=%g: %d failed of %d (anomalies %v)", clean, m.FailedQueries, m.Queries, m.Anomalies)
		}
		lost := m.Anomalies["goodbyes_lost"]
		switch {
		case clean == 1 && lost != 0, clean < 1 && lost == 0:
			t.Fatalf("clean=%g: %d goodbyes lost", clean, lost)
		}
		if m.Anomalies["msgs_sent_offline"] != 0 {
			t.Fatalf("clean=%g: %d messages sent by offline nodes", clean, m.Anomalies["msgs_sent_offline"])
		}
		if m.Directory.Repairs < 10 {
			t.Fatalf("clean=%g: only %d repairs", clean, m.Directory.Repairs)
		}
		repair[clean] = m.Directory.RepairMsMean
	}
	if !(repair[1] < repair[0]/2) {
		t.Fatalf("mean repair %.0f ms with clean goodbyes, %.0f ms without: the handover does not show", repair[1], repair[0])
	}
}

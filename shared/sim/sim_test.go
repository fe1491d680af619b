package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallConfig is a run small enough for `go test -race`.
func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Peers = 150
	cfg.Sites = 5
	cfg.Objects = 200
	cfg.Localities = 3
	cfg.Queries = 3000
	cfg.QueryInterval = 10 * time.Second
	cfg.ChurnOn, cfg.ChurnOff = 5*time.Minute, 5*time.Minute
	cfg.Seed = 42
	cfg.Buckets = 10
	return cfg
}

func runJSON(t *testing.T, cfg Config) []byte {
	t.Helper()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	// Small caches and short sessions make directories drop and re-index
	// content peers often, which is where order-dependent code would show.
	cfg := smallConfig()
	cfg.Peers = 600
	cfg.Sites = 3
	cfg.Objects = 1000
	cfg.Core.CacheBytes = 4 << 20
	cfg.Queries = 30000
	cfg.ChurnOn, cfg.ChurnOff = 3*time.Minute, 3*time.Minute
	a := runJSON(t, cfg)
	b := runJSON(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different results:\n%s\n%s", firstDiff(a, b), firstDiff(b, a))
	}
	// The parallel Flower-CDN host gives the same result on one thread.
	procs := runtime.GOMAXPROCS(1)
	c := runJSON(t, cfg)
	runtime.GOMAXPROCS(procs)
	if !bytes.Equal(a, c) {
		t.Fatalf("one thread and %d threads differ:\n%s\n%s", procs, firstDiff(a, c), firstDiff(c, a))
	}
	cfg.Seed++
	if c := runJSON(t, cfg); bytes.Equal(a, c) {
		t.Fatal("different seeds gave identical results")
	}
}

// firstDiff returns a's text around its first difference from b.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return string(a[max(0, i-150):min(len(a), i+150)])
}

func TestNoFailedQueries(t *testing.T) {
	for _, churn := range []bool{false, true} {
		cfg := smallConfig()
		if !churn {
			cfg.ChurnOn, cfg.ChurnOff = 0, 0
		}
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range AllSystems {
			m := r.Systems[name]
			if m == nil {
				t.Fatalf("churn=%v: system %s missing", churn, name)
			}
			if m.Queries != int64(cfg.Queries) {
				t.Errorf("churn=%v %s: %d queries, want %d", churn, name, m.Queries, cfg.Queries)
			}
			if m.FailedQueries != 0 {
				t.Errorf("churn=%v %s: %d failed queries (anomalies %v)", churn, name, m.FailedQueries, m.Anomalies)
			}
			if m.Answered+m.AbandonedQueries != m.Queries {
				t.Errorf("churn=%v %s: answered %d + abandoned %d != queries %d", churn, name, m.Answered, m.AbandonedQueries, m.Queries)
			}
			if !churn && m.AbandonedQueries != 0 {
				t.Errorf("static %s: %d abandoned queries", name, m.AbandonedQueries)
			}
			if m.LocalHits+m.PeerHits+m.OriginFetches != m.Answered {
				t.Errorf("churn=%v %s: outcomes do not add up: %+v", churn, name, m)
			}
		}
		if r.Systems[SysOrigin].PeerHits != 0 || r.Systems[SysOrigin].OriginFraction != 1 {
			t.Errorf("origin-only served from peers: %+v", r.Systems[SysOrigin])
		}
		for _, name := range []string{SysFlower, SysSquirrel, SysSquirrelPNS, SysSquirrelPNSDir} {
			if r.Systems[name].PeerHits == 0 || r.Systems[name].LookupHopsMean == 0 {
				t.Errorf("churn=%v %s: no P2P hits or no hops: %d hits, %.2f hops", churn, name, r.Systems[name].PeerHits, r.Systems[name].LookupHopsMean)
			}
		}
	}
}

func TestSameTraceForAllSystems(t *testing.T) {
	cfg := smallConfig()
	cfg.Systems = []string{SysOrigin}
	a, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Systems = nil
	b, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := a.Systems[SysOrigin], b.Systems[SysOrigin]
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	if !bytes.Equal(ja, jb) {
		t.Fatal("origin-only results depend on which other systems ran")
	}
}

func TestLatencyModel(t *testing.T) {
	cfg := smallConfig()
	cfg.Peers = 300
	cfg.Localities = 6
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	intra, inter := 0, 0
	for a := int32(0); a < 300; a++ {
		if w.Lat(a, a) != 0 {
			t.Fatalf("Lat(%d,%d) = %v, want 0", a, a, w.Lat(a, a))
		}
		for b := a + 1; b < 300; b++ {
			l := w.Lat(a, b)
			if l != w.Lat(b, a) {
				t.Fatalf("latency not symmetric: %v vs %v", l, w.Lat(b, a))
			}
			if w.Loc[a] == w.Loc[b] {
				intra++
				if l < 5*time.Millisecond || l > 25*time.Millisecond {
					t.Fatalf("intra-locality latency %v out of [5,25] ms", l)
				}
			} else {
				inter++
				if l < 60*time.Millisecond || l > 160*time.Millisecond {
					t.Fatalf("inter-locality latency %v out of [60,160] ms", l)
				}
			}
		}
	}
	if intra == 0 || inter == 0 {
		t.Fatalf("degenerate localities: %d intra, %d inter pairs", intra, inter)
	}
	for s := 0; s < cfg.Sites; s++ {
		for l := 0; l < cfg.Localities; l++ {
			if o := w.OriginLat(s, uint8(l)); o < 80*time.Millisecond || o > 200*time.Millisecond {
				t.Fatalf("origin latency %v out of [80,200] ms", o)
			}
		}
	}
	// Fixed per seed: a second world gives the same latencies.
	w2, _ := NewWorld(cfg)
	if w.Lat(3, 250) != w2.Lat(3, 250) || w.OriginLat(1, 2) != w2.OriginLat(1, 2) {
		t.Fatal("latency model not fixed per seed")
	}
}

func TestWorkload(t *testing.T) {
	cfg := smallConfig()
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.QueryPos) != cfg.Queries {
		t.Fatalf("%d queries, want %d", len(w.QueryPos), cfg.Queries)
	}
	online := slices.Clone(w.InitOnline)
	last := time.Duration(0)
	churn := 0
	for _, e := range w.Trace {
		if e.At < last {
			t.Fatal("trace not in time order")
		}
		last = e.At
		switch e.Obj {
		case traceDown, traceUp:
			churn++
			if online[e.Peer] != (e.Obj == traceDown) {
				t.Fatalf("churn event %+v does not toggle the peer", e)
			}
			online[e.Peer] = e.Obj == traceUp
		default:
			if !online[e.Peer] {
				t.Fatalf("query %+v by an offline peer", e)
			}
			if !slices.Contains(w.Interests(e.Peer), uint16(w.SiteOfObj(e.Obj))) {
				t.Fatalf("query %+v for a website the peer is not interested in", e)
			}
		}
	}
	if churn == 0 {
		t.Fatal("no churn events")
	}
	for i := range w.PeerIDs {
		in := w.Interests(int32(i))
		if len(in) < 1 || len(in) > cfg.MaxInterests {
			t.Fatalf("peer %d has %d interests", i, len(in))
		}
	}
	// Zipf: object rank 0 is asked more than rank 100.
	var c0, c100 int
	for _, qp := range w.QueryPos {
		switch w.Trace[qp].Obj % int32(cfg.Objects) {
		case 0:
			c0++
		case 100:
			c100++
		}
	}
	if c0 <= c100 {
		t.Fatalf("object popularity not skewed: rank 0 asked %d times, rank 100 %d", c0, c100)
	}
}

// TestRingRoute checks Squirrel's greedy Chord routing against a brute-force
// successor over random rings.
func TestRingRoute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 257, 2000} {
		var r ring
		seen := map[uint64]bool{}
		for len(r.pos) < n {
			x := rng.Uint64()
			if n <= 3 {
				x >>= 60 // tiny positions exercise wrap-around and adjacency
			}
			if !seen[x] {
				seen[x] = true
				r.insert(x, int32(len(r.pos)))
			}
		}
		if !slices.IsSorted(r.pos) {
			t.Fatal("ring not sorted")
		}
		var path []int
		totalHops := 0
		const trials = 500
		for i := 0; i < trials; i++ {
			key := rng.Uint64()
			if i%7 == 0 {
				key = r.pos[rng.IntN(n)] // exactly a peer's position
			}
			from := r.pos[rng.IntN(n)]
			// Brute force: the first position clockwise from key (inclusive).
			want, best := -1, uint64(math.MaxUint64)
			for j, p := range r.pos {
				if d := p - key; want < 0 || d < best {
					want, best = j, d
				}
			}
			if got := r.succ(key); got != want {
				t.Fatalf("n=%d succ(%x) = %d, want %d", n, key, got, want)
			}
			path = r.route(from, key, path)
			end := r.search(from)
			if len(path) > 0 {
				end = path[len(path)-1]
			}
			if end != want {
				t.Fatalf("n=%d route from %x to %x ends at %d, want %d", n, from, key, end, want)
			}
			// Every hop gets strictly closer to the key (clockwise).
			prev := key - from
			for _, h := range path[:max(len(path)-1, 0)] {
				if d := key - r.pos[h]; d >= prev {
					t.Fatalf("n=%d hop does not progress", n)
				} else {
					prev = d
				}
			}
			if len(path) > 64+1 {
				t.Fatalf("n=%d: %d hops", n, len(path))
			}
			totalHops += len(path)
		}
		if mean := float64(totalHops) / trials; n >= 257 && mean > math.Log2(float64(n)) {
			t.Fatalf("n=%d: mean hops %.2f above log2(n)", n, mean)
		}
	}
	// Removal keeps the ring consistent.
	var r ring
	for i := uint64(1); i <= 5; i++ {
		r.insert(i*10, int32(i))
	}
	r.remove(30)
	r.remove(31) // absent: no-op
	if !slices.Equal(r.pos, []uint64{10, 20, 40, 50}) || r.node[r.succ(25)] != 4 || r.node[r.succ(51)] != 1 {
		t.Fatalf("after remove: %v %v", r.pos, r.node)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU([]int64{100, 50})
	c.add(0, 1, 40)
	c.add(0, 2, 40)
	if !c.get(0, 1) { // 1 becomes most recent
		t.Fatal("object 1 missing")
	}
	c.add(0, 3, 40) // evicts 2, the least recently used
	if c.has(0, 2) || !c.has(0, 1) || !c.has(0, 3) || c.used[0] != 80 {
		t.Fatalf("eviction order wrong: used %d", c.used[0])
	}
	c.add(1, 4, 60) // larger than the quota: not stored
	if c.has(1, 4) || c.used[1] != 0 {
		t.Fatal("object over quota stored")
	}
	c.add(1, 5, 50)
	c.add(1, 6, 10) // evicts 5
	if c.has(1, 5) || !c.has(1, 6) || c.has(0, 6) {
		t.Fatal("per-peer caches are not separate")
	}
	c.add(0, 7, 100) // evicts everything of peer 0
	if c.has(0, 1) || c.has(0, 3) || !c.has(0, 7) || c.used[0] != 100 {
		t.Fatal("full eviction wrong")
	}
}

// TestSummarize checks the metric arithmetic on a hand-made trace.
func TestSummarize(t *testing.T) {
	w := &World{
		cfg:      Config{Buckets: 2, Warmup: 1, Objects: 10},
		ObjSize:  []int32{1000, 3000},
		End:      10 * time.Second,
		PeerMins: 4,
	}
	// Query 0 is warm-up; peers 0 and 1.
	for i, at := range []int{0, 1, 2, 3, 6, 7, 8, 9} {
		w.QueryPos = append(w.QueryPos, int32(len(w.Trace)))
		w.Trace = append(w.Trace, traceEvent{At: time.Duration(at) * time.Second, Peer: int32(i % 2), Obj: int32(i % 2)})
	}
	r := newResults(len(w.QueryPos))
	ms := time.Millisecond
	r.set(0, outPeer, 999*ms, 9, 9*ms) // warm-up: ignored
	r.set(1, outLocal, 0, 0, 0)
	r.set(2, outPeer, 10*ms, 1, 20*ms)    // obj 0, 1000 B
	r.set(3, outOrigin, 30*ms, 3, 100*ms) // obj 1, 3000 B
	r.set(4, outPeer, 20*ms, 2, 40*ms)    // obj 0, 1000 B
	r.set(5, outOrigin, 0, 0, 60*ms)      // obj 1, 3000 B
	r.out[6] = outPending                 // peer 0, still in its session: failed
	r.out[7] = outPending                 // peer 1, left since: abandoned
	tr := newTraffic([]string{"a", "b"})
	tr.bytes[0], tr.bytes[1] = 400, 40
	m := summarize(w, &r, []uint32{0, 1}, &tr)

	check := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("queries", float64(m.Queries), 7)
	check("answered", float64(m.Answered), 5)
	check("failed", float64(m.FailedQueries), 1)
	check("abandoned", float64(m.AbandonedQueries), 1)
	check("local", float64(m.LocalHits), 1)
	check("peer", float64(m.PeerHits), 2)
	check("origin", float64(m.OriginFetches), 2)
	check("hit_ratio", m.HitRatio, 2.0/4)
	check("hit_ratio_with_local", m.HitRatioWithLocal, 3.0/5)
	check("lookup_ms_mean", m.LookupMsMean, (10+30+20+0)/4.0)
	check("lookup_ms_p95", m.LookupMsP95, 30)
	check("lookup_ms_p50", m.LookupMsP50, 10)
	check("lookup_hops_mean", m.LookupHopsMean, (1+3+2+0)/4.0)
	check("transfer_ms_mean", m.TransferMsMean, (20+100+40+60)/4.0)
	check("origin_fraction", m.OriginFraction, 6000.0/8000)
	check("bytes_delivered", float64(m.BytesDelivered), 8000)
	check("overhead", m.OverheadBytesPerPeerMin, 440.0/4)
	check("overhead a", m.OverheadByType["a"], 100)
	check("overhead b", m.OverheadByType["b"], 10)
	if len(m.Series) != 2 {
		t.Fatalf("%d buckets", len(m.Series))
	}
	// Bucket 0 holds queries issued in [0,5) s: 1 (local), 2 (peer), 3 (origin).
	b0, b1 := m.Series[0], m.Series[1]
	check("bucket0 queries", float64(b0.Queries), 3)
	check("bucket0 hit ratio", b0.HitRatio, 0.5)
	check("bucket0 lookup", b0.LookupMsMean, 20)
	check("bucket1 queries", float64(b1.Queries), 4)
	check("bucket1 hit ratio", b1.HitRatio, 0.5)
	check("bucket1 lookup", b1.LookupMsMean, 10)
}

func TestPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if p := percentile(xs, 0.95); p != 19 {
		t.Fatalf("p95 = %v, want 19", p)
	}
	if p := percentile(xs, 0.5); p != 10 {
		t.Fatalf("p50 = %v, want 10", p)
	}
	if p := percentile(nil, 0.95); p != 0 {
		t.Fatalf("empty p95 = %v", p)
	}
}

func TestQueueOrder(t *testing.T) {
	var q queue
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1000; i++ {
		q.push(event{at: time.Duration(rng.IntN(50)), qid: uint64(i)})
	}
	prev := event{at: -1}
	for q.len() > 0 {
		e := q.pop()
		if e.at < prev.at || (e.at == prev.at && e.seq < prev.seq) {
			t.Fatalf("out of order: %+v after %+v", e, prev)
		}
		if e.at == prev.at && e.qid < prev.qid {
			t.Fatal("same-time events not in scheduling order")
		}
		prev = e
	}
}

func TestConfigErrors(t *testing.T) {
	if _, _, err := ParseChurn("60m"); err == nil {
		t.Error("churn without offline mean accepted")
	}
	if _, _, err := ParseChurn("0s/1m"); err == nil {
		t.Error("zero online mean accepted")
	}
	if on, off, err := ParseChurn("30m/1h"); err != nil || on != 30*time.Minute || off != time.Hour {
		t.Errorf("ParseChurn(30m/1h) = %v %v %v", on, off, err)
	}
	if on, off, err := ParseChurn("none"); err != nil || on != 0 || off != 0 {
		t.Errorf("ParseChurn(none) = %v %v %v", on, off, err)
	}
	if _, err := ParseSystems("flower,chord"); err == nil || !strings.Contains(err.Error(), "chord") {
		t.Errorf("unknown system: %v", err)
	}
	if s, err := ParseSystems("origin, flower"); err != nil || !slices.Equal(s, []string{SysFlower, SysOrigin}) {
		t.Errorf("ParseSystems = %v %v", s, err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Peers = 0 },
		func(c *Config) { c.Sites = 0 },
		func(c *Config) { c.Localities = 300 },
		func(c *Config) { c.Queries = 0 },
		func(c *Config) { c.QueryInterval = 0 },
		func(c *Config) { c.ChurnOff = 0 },
		func(c *Config) { c.Warmup = c.Queries },
		func(c *Config) { c.Core.ViewSize = 0 },
		func(c *Config) { c.Systems = []string{"x"} },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
	if c := DefaultConfig(); c.Validate() != nil {
		t.Error("default config rejected")
	}
}

func TestOutputs(t *testing.T) {
	r, err := Run(context.Background(), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := WriteTable(&tb, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hit ratio (excl. local)", "flower", "squirrel", "squirrel_pns", "squirrel_pns_dir", "origin", "lookup ms p95", "lookup hops mean"} {
		if !strings.Contains(tb.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	js := string(j)
	if !strings.HasPrefix(js, `{"config":{`) {
		t.Errorf("JSON layout: %.200s", js)
	}
	last := -1
	for _, name := range AllSystems {
		i := strings.Index(js, `"`+name+`":{"queries"`)
		if i <= last {
			t.Errorf("JSON: system %s missing or out of order", name)
		}
		last = i
	}

	var svg bytes.Buffer
	if err := WritePlot(&svg, r); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	lines := 0
	var texts []string
	var frames []float64 // bottom y of each panel frame, in order
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range e.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch e.Name.Local {
			case "rect":
				if attr["fill"] == "none" { // a panel's frame
					y, _ := strconv.ParseFloat(attr["y"], 64)
					h, _ := strconv.ParseFloat(attr["height"], 64)
					frames = append(frames, y+h)
				}
			case "polyline":
				lines++
				if attr["stroke"] == plotColors[SysOrigin] {
					// origin-only is 0 in both panels: its line must lie above
					// the bottom of its panel's frame, not on it.
					bottom := frames[len(frames)-1]
					pts := strings.Fields(attr["points"])
					if len(pts) == 0 {
						t.Error("origin-only line has no points")
					}
					for _, pt := range pts {
						_, ys, _ := strings.Cut(pt, ",")
						if y, _ := strconv.ParseFloat(ys, 64); y >= bottom-3 {
							t.Errorf("origin-only point %s on or under the x axis (frame bottom %.1f)", pt, bottom)
						}
					}
				}
			}
		case xml.CharData:
			texts = append(texts, string(e))
		}
	}
	if lines != 2*len(AllSystems) {
		t.Errorf("%d polylines, want %d", lines, 2*len(AllSystems))
	}
	all := strings.Join(texts, "|")
	for _, s := range []string{"Flower-CDN", "Squirrel, Chord", "Squirrel, PNS home", "Squirrel, PNS dir.", "origin-only", "simulated time (minutes)", "hit ratio", "lookup latency (ms)"} {
		if !strings.Contains(all, s) {
			t.Errorf("plot lacks %q", s)
		}
	}
}

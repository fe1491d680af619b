package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/locality"
)

// Streams of the seeded PCG generator. Each consumer of randomness has its own
// stream so that, for example, running one system more or less never changes
// the workload another system sees.
const (
	streamWorkload    = 0x776f726b6c6f6164 // "workload"
	streamLatency     = 0x6c6174656e637921 // "latency!"
	streamFlower      = 0x666c6f7765722121 // "flower!!"
	streamNode        = 0x6e6f646500000000 // "node" + node index
	streamSquirrelDir = 0x7371646972212121 // "sqdir!!!"
)

// Trace event kinds stored in traceEvent.Obj when it is not a query.
const (
	traceDown int32 = -1 // the peer goes offline
	traceUp   int32 = -2 // the peer comes (back) online
)

// traceEvent is one entry of the workload trace, shared by every system:
// a query (Obj >= 0: global object index) or a churn event.
type traceEvent struct {
	At   time.Duration
	Peer int32
	Obj  int32
}

// World is the workload and network model of a run. It is read-only once
// built, and shared by the systems (which may run in parallel).
type World struct {
	cfg Config
	k   int

	// Peers.
	PeerIDs    []ids.PeerID
	Loc        []uint8
	intStart   []int32  // interests of peer i: intSites[intStart[i]:intStart[i+1]]
	intSites   []uint16 // site indices
	InitOnline []bool
	peerIdx    map[uint64]int32 // ring position (first 8 id bytes, unique) -> peer
	// Seeders (browser workload) are the peers [seedFrom, seedTo).
	seedFrom, seedTo int32

	// Websites and objects. Object o (global index) belongs to site o/Objects.
	SiteIDs []ids.SiteID
	siteIdx map[ids.SiteID]uint16
	ObjIDs  []ids.ObjectID
	ObjSize []int32
	objIdx  map[ids.ObjectID]int32

	// Latency model.
	latSeed   uint64
	interBase []int32 // k*k, microseconds, symmetric
	originLat []int32 // sites*k, microseconds
	bootLat   []int32 // k, microseconds: one way between a locality and the bootstrap service

	// Trace.
	Trace    []traceEvent
	QueryPos []int32       // index in Trace of query q
	QueryOf  []int32       // query number of Trace[i], -1 for a churn event
	End      time.Duration // issue time of the last query
	PeerMins float64       // integral of the online peer count over [0, End], in peer-minutes
	quota    []int64       // per-peer cache quota of the baselines
	siteCDF  []float64     // website popularity (Zipf), cumulative
	objCDF   []float64     // object popularity within a site (Zipf), cumulative
}

// Latency bands, in microseconds.
const (
	intraMinUS  = 5_000
	intraMaxUS  = 25_000
	interMinUS  = 60_000
	interMaxUS  = 160_000
	interJitUS  = 10_000 // per-pair jitter, +-, around the locality-pair base
	originMinUS = 80_000
	originMaxUS = 200_000
	bootMinUS   = 30_000
	bootMaxUS   = 80_000
	minSize     = 512
	maxSize     = 4 << 20
)

// NewWorld builds the workload of cfg: peers, websites, objects, latencies
// and the query/churn trace. cfg must be valid.
func NewWorld(cfg Config) (*World, error) {
	w := &World{cfg: cfg, k: cfg.Localities}
	rng := rand.New(rand.NewPCG(cfg.Seed, streamWorkload))
	lr := rand.New(rand.NewPCG(cfg.Seed, streamLatency))
	w.latSeed = lr.Uint64()

	// Locality-pair bases: uniform in [60+10, 160-10] ms so that base+jitter
	// stays in the [60,160] ms band.
	k := w.k
	w.interBase = make([]int32, k*k)
	for a := 0; a < k; a++ {
		for b := a + 1; b < k; b++ {
			v := int32(interMinUS + interJitUS + lr.IntN(interMaxUS-interMinUS-2*interJitUS+1))
			w.interBase[a*k+b], w.interBase[b*k+a] = v, v
		}
	}
	w.originLat = make([]int32, cfg.Sites*k)
	for i := range w.originLat {
		w.originLat[i] = int32(originMinUS + lr.IntN(originMaxUS-originMinUS+1))
	}
	w.bootLat = make([]int32, k)
	for i := range w.bootLat {
		w.bootLat[i] = int32(bootMinUS + lr.IntN(bootMaxUS-bootMinUS+1))
	}

	// Websites and objects.
	w.SiteIDs = make([]ids.SiteID, cfg.Sites)
	w.siteIdx = make(map[ids.SiteID]uint16, cfg.Sites)
	n := cfg.Sites * cfg.Objects
	w.ObjIDs = make([]ids.ObjectID, n)
	w.ObjSize = make([]int32, n)
	w.objIdx = make(map[ids.ObjectID]int32, n)
	mu := math.Log(cfg.ObjectKB * 1024)
	for s := 0; s < cfg.Sites; s++ {
		origin := fmt.Sprintf("https://site-%d.example", s)
		sid := ids.SiteOf(origin)
		if _, dup := w.siteIdx[sid]; dup {
			return nil, fmt.Errorf("site id collision at site %d", s)
		}
		w.SiteIDs[s] = sid
		w.siteIdx[sid] = uint16(s)
		for o := 0; o < cfg.Objects; o++ {
			g := s*cfg.Objects + o
			oid := ids.ObjectOf(fmt.Sprintf("%s/obj/%d", origin, o))
			if _, dup := w.objIdx[oid]; dup {
				return nil, fmt.Errorf("object id collision at site %d object %d", s, o)
			}
			w.ObjIDs[g] = oid
			w.objIdx[oid] = int32(g)
			size := math.Exp(mu + cfg.ObjectSigma*rng.NormFloat64())
			w.ObjSize[g] = int32(min(max(size, minSize), maxSize))
		}
	}
	w.siteCDF = zipfCDF(cfg.Sites, cfg.SiteZipf)
	w.objCDF = zipfCDF(cfg.Objects, cfg.ObjectZipf)

	// Peers.
	w.PeerIDs = make([]ids.PeerID, 0, cfg.Peers)
	w.Loc = make([]uint8, 0, cfg.Peers)
	w.intStart = make([]int32, 1, cfg.Peers+1)
	w.peerIdx = make(map[uint64]int32, cfg.Peers)
	w.quota = make([]int64, 0, cfg.Peers)
	for i := 0; i < cfg.Peers; i++ {
		w.addPeer(rng, -1)
	}

	if cfg.Workload == WorkloadBrowser {
		w.makeBrowserTrace(rng)
	} else {
		w.makeTrace(rng)
	}
	if err := w.detectLocalities(); err != nil {
		return nil, err
	}
	return w, nil
}

// addPeer adds a peer: a unique id, a region (uniform when region < 0), its
// websites of interest and its baselines' cache quota. It returns its index.
func (w *World) addPeer(rng *rand.Rand, region int) int32 {
	cfg := &w.cfg
	i := int32(len(w.PeerIDs))
	var id ids.PeerID
	for {
		for j := 0; j < ids.PeerIDLen; j += 8 {
			v := rng.Uint64()
			for b := 0; b < 8; b++ {
				id[j+b] = byte(v >> (56 - 8*b))
			}
		}
		if _, dup := w.peerIdx[ringPos(id)]; !dup && !id.IsZero() {
			break
		}
	}
	w.PeerIDs = append(w.PeerIDs, id)
	w.peerIdx[ringPos(id)] = i
	loc := rng.IntN(w.k)
	if region >= 0 {
		loc = region
	}
	w.Loc = append(w.Loc, uint8(loc))
	cnt := 1 + rng.IntN(min(cfg.MaxInterests, cfg.Sites))
	var buf [16]uint16
	chosen := buf[:0]
	for len(chosen) < cnt {
		s := uint16(sampleCDF(w.siteCDF, rng.Float64()))
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	slices.Sort(chosen)
	w.intSites = append(w.intSites, chosen...)
	w.intStart = append(w.intStart, int32(len(w.intSites)))
	w.quota = append(w.quota, cfg.Core.CacheBytes*int64(cnt))
	return i
}

// detectLocalities runs the locality manager (getMyLocality: landmark
// binning, shared/locality) for every peer over the latency model, with one
// landmark placed in each region, and uses its answer as the peer's
// locality. A peer's region is where the workload put it; the round trip to
// a landmark is twice the one-way latency between the regions, with the
// model's per-pair jitter.
func (w *World) detectLocalities() error {
	rtts := make([]time.Duration, w.k)
	for i := range w.Loc {
		region := int(w.Loc[i])
		for lm := range rtts {
			h := mix64(w.latSeed ^ uint64(i)<<8 ^ uint64(lm) ^ 0x6c616e646d61726b)
			var oneWay int64
			if lm == region {
				oneWay = intraMinUS + int64(h%(intraMaxUS-intraMinUS+1))
			} else {
				oneWay = int64(w.interBase[region*w.k+lm]) - interJitUS + int64(h%(2*interJitUS+1))
			}
			rtts[lm] = 2 * time.Duration(oneWay) * time.Microsecond
		}
		loc, err := locality.Locality(rtts, w.k, locality.Mapping{})
		if err != nil {
			return fmt.Errorf("sim: locality of peer %d: %w", i, err)
		}
		w.Loc[i] = uint8(loc)
	}
	return nil
}

// Peer returns the index of the peer with id.
func (w *World) Peer(id ids.PeerID) (int32, bool) {
	i, ok := w.peerIdx[ringPos(id)]
	if !ok || w.PeerIDs[i] != id {
		return 0, false
	}
	return i, true
}

// Interests returns the site indices peer i is interested in (sorted).
func (w *World) Interests(i int32) []uint16 { return w.intSites[w.intStart[i]:w.intStart[i+1]] }

// SiteOfObj returns the site index of global object o.
func (w *World) SiteOfObj(o int32) int { return int(o) / w.cfg.Objects }

// Lat is the one-way latency between peers a and b: 5-25 ms within a
// locality, the locality pair's base (70-150 ms) +-10 ms between localities.
// The per-pair part is a hash of the pair and the seed: fixed, symmetric, and
// stored nowhere.
func (w *World) Lat(a, b int32) time.Duration {
	if a == b {
		return 0
	}
	if a > b {
		a, b = b, a
	}
	h := mix64(w.latSeed ^ (uint64(uint32(a))<<32 | uint64(uint32(b))))
	la, lb := int(w.Loc[a]), int(w.Loc[b])
	if la == lb {
		return time.Duration(intraMinUS+int64(h%(intraMaxUS-intraMinUS+1))) * time.Microsecond
	}
	base := int64(w.interBase[la*w.k+lb])
	return time.Duration(base-interJitUS+int64(h%(2*interJitUS+1))) * time.Microsecond
}

// OriginLat is the one-way latency between website site's origin server and
// locality loc: 80-200 ms, fixed per (site, locality).
func (w *World) OriginLat(site int, loc uint8) time.Duration {
	return time.Duration(w.originLat[site*w.k+int(loc)]) * time.Microsecond
}

// BootLat is the one-way latency between locality loc and the bootstrap
// service: 30-80 ms, fixed per locality.
func (w *World) BootLat(loc uint8) time.Duration {
	return time.Duration(w.bootLat[loc]) * time.Microsecond
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// zipfCDF returns the cumulative Zipf(alpha) distribution over n ranks,
// rank 0 the most popular, normalised to end at 1.
func zipfCDF(n int, alpha float64) []float64 {
	cdf := make([]float64, n)
	sum := 0.0
	for i := 0; i < n; i++ {
		sum += 1 / math.Pow(float64(i+1), alpha)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	cdf[n-1] = 1
	return cdf
}

// sampleCDF returns the first index whose cumulative weight exceeds u in [0,1).
func sampleCDF(cdf []float64, u float64) int {
	i := sort.SearchFloat64s(cdf, u)
	if i < len(cdf) && cdf[i] == u {
		i++
	}
	return min(i, len(cdf)-1)
}

// makeTrace generates churn and queries. Queries: each online peer issues a
// Poisson stream with mean interval QueryInterval; their superposition is
// drawn as one Poisson stream of rate online/QueryInterval whose requester is
// a uniformly random online peer. A query picks one of the requester's
// websites with probability proportional to website popularity, then an
// object of that site by Zipf popularity. Churn: exponential session and
// offline times; each peer starts online with probability on/(on+off). The
// trace stops at the last query.
func (w *World) makeTrace(rng *rand.Rand) {
	cfg := &w.cfg
	P := cfg.Peers
	w.InitOnline = make([]bool, P)
	onl := make([]int32, 0, P) // online peers
	pos := make([]int32, P)    // position in onl, -1 offline
	add := func(i int32) { pos[i] = int32(len(onl)); onl = append(onl, i) }
	del := func(i int32) {
		p := pos[i]
		last := onl[len(onl)-1]
		onl[p], pos[last] = last, p
		onl = onl[:len(onl)-1]
		pos[i] = -1
	}
	var churn queue
	pOn := 1.0
	if !cfg.Static() {
		pOn = float64(cfg.ChurnOn) / float64(cfg.ChurnOn+cfg.ChurnOff)
	}
	for i := 0; i < P; i++ {
		on := cfg.Static() || rng.Float64() < pOn
		w.InitOnline[i] = on
		pos[i] = -1
		if on {
			add(int32(i))
		}
		if !cfg.Static() {
			mean := cfg.ChurnOff
			if on {
				mean = cfg.ChurnOn
			}
			churn.push(event{at: expDur(rng, mean), node: int32(i)})
		}
	}
	w.Trace = make([]traceEvent, 0, cfg.Queries+cfg.Queries/8)
	w.QueryOf = make([]int32, 0, cfg.Queries+cfg.Queries/8)
	w.QueryPos = make([]int32, 0, cfg.Queries)
	now := time.Duration(0)
	peerNS := 0.0
	advance := func(t time.Duration) {
		peerNS += float64(len(onl)) * float64(t-now)
		now = t
	}
	for len(w.QueryPos) < cfg.Queries {
		var tq time.Duration = math.MaxInt64
		if len(onl) > 0 {
			tq = now + time.Duration(rng.ExpFloat64()*float64(cfg.QueryInterval)/float64(len(onl)))
		}
		if churn.len() > 0 && churn.top().at <= tq {
			ev := churn.pop()
			advance(ev.at)
			i := ev.node
			mean := cfg.ChurnOn
			if pos[i] >= 0 {
				del(i)
				mean = cfg.ChurnOff
				w.Trace = append(w.Trace, traceEvent{At: now, Peer: i, Obj: traceDown})
				w.QueryOf = append(w.QueryOf, -1)
			} else {
				add(i)
				w.Trace = append(w.Trace, traceEvent{At: now, Peer: i, Obj: traceUp})
				w.QueryOf = append(w.QueryOf, -1)
			}
			churn.push(event{at: now + expDur(rng, mean), node: i})
			continue
		}
		if tq == math.MaxInt64 {
			break // nobody will ever be online (cannot happen with churn)
		}
		advance(tq)
		w.addQuery(now, onl[rng.IntN(len(onl))], rng)
	}
	w.End = now
	w.PeerMins = peerNS / float64(time.Minute)
}

// addQuery appends to the trace a query of online peer p at now: one of
// its websites by popularity, an object of it by the object popularity.
func (w *World) addQuery(now time.Duration, p int32, rng *rand.Rand) {
	site := w.pickSite(p, rng)
	obj := int32(site*w.cfg.Objects + sampleCDF(w.objCDF, rng.Float64()))
	w.QueryOf = append(w.QueryOf, int32(len(w.QueryPos)))
	w.QueryPos = append(w.QueryPos, int32(len(w.Trace)))
	w.Trace = append(w.Trace, traceEvent{At: now, Peer: p, Obj: obj})
}

// pickSite picks one of peer p's websites, weighted by website popularity.
func (w *World) pickSite(p int32, rng *rand.Rand) int {
	in := w.Interests(p)
	if len(in) == 1 {
		return int(in[0])
	}
	var wt [8]float64
	weights := wt[:0]
	sum := 0.0
	for _, s := range in {
		x := w.siteCDF[s]
		if s > 0 {
			x -= w.siteCDF[s-1]
		}
		sum += x
		weights = append(weights, sum)
	}
	u := rng.Float64() * sum
	for j, c := range weights {
		if u < c {
			return int(in[j])
		}
	}
	return int(in[len(in)-1])
}

func expDur(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

package sim

import (
	"math"
	"slices"
	"time"
)

// Outcome of one query.
const (
	outPending   uint8 = iota // not answered (yet)
	outLocal                  // requester's own cache
	outPeer                   // another peer served it
	outOrigin                 // fetched from the origin
	outFailed                 // answered as failed
	outAbandoned              // requester went offline before the answer (set by finish)
)

// results holds the per-query outcome of one system, indexed by query number
// (the position of the query in the trace's query sequence).
type results struct {
	out      []uint8
	hops     []uint8
	lookupUS []int32 // issue -> the query reaches the serving node / origin request issued
	transfer []int32 // microseconds, serving node (or origin) -> requester
	epoch    []uint32
}

func newResults(n int) results {
	return results{
		out:      make([]uint8, n),
		hops:     make([]uint8, n),
		lookupUS: make([]int32, n),
		transfer: make([]int32, n),
		epoch:    make([]uint32, n),
	}
}

func (r *results) set(qi int32, out uint8, lookup time.Duration, hops int, transfer time.Duration) {
	r.out[qi] = out
	r.lookupUS[qi] = int32(lookup / time.Microsecond)
	r.hops[qi] = uint8(min(max(hops, 0), 255))
	r.transfer[qi] = int32(transfer / time.Microsecond)
}

// Metrics are the figures of one system over the measured queries (all
// queries but the warm-up ones). docs/simulator.md defines each of them.
type Metrics struct {
	Queries          int64 `json:"queries"`
	Answered         int64 `json:"answered"`
	LocalHits        int64 `json:"local_hits"`
	PeerHits         int64 `json:"peer_hits"`
	OriginFetches    int64 `json:"origin_fetches"`
	FailedQueries    int64 `json:"failed_queries"`
	AbandonedQueries int64 `json:"abandoned_queries"`

	HitRatio          float64 `json:"hit_ratio"`
	HitRatioWithLocal float64 `json:"hit_ratio_with_local"`
	LookupMsMean      float64 `json:"lookup_ms_mean"`
	LookupMsP50       float64 `json:"lookup_ms_p50"`
	LookupMsP95       float64 `json:"lookup_ms_p95"`
	LookupHopsMean    float64 `json:"lookup_hops_mean"`
	TransferMsMean    float64 `json:"transfer_ms_mean"`
	TransferMsP95     float64 `json:"transfer_ms_p95"`
	OriginFraction    float64 `json:"origin_fraction"`
	BytesDelivered    int64   `json:"bytes_delivered"`
	BytesFromOrigin   int64   `json:"bytes_from_origin"`

	OverheadBytesPerPeerMin float64            `json:"overhead_bytes_per_peer_min"`
	OverheadByType          map[string]float64 `json:"overhead_by_type"`
	Messages                int64              `json:"messages"`
	MessagesDropped         int64              `json:"messages_dropped"`

	Directory *DirMetrics      `json:"directory,omitempty"`
	Anomalies map[string]int64 `json:"anomalies,omitempty"`
	// OriginReasons counts, over the whole run (warm-up included), why
	// Flower-CDN queries went to the origin (core.Stats).
	OriginReasons map[string]int64 `json:"origin_reasons,omitempty"`

	Events     int64    `json:"events"`
	SimulatedS float64  `json:"simulated_s"`
	Series     []Bucket `json:"series"`
}

// DirMetrics are Flower-CDN's directory (D-ring) figures.
type DirMetrics struct {
	// Repairs: a D-ring position whose holder went offline is held again.
	Repairs       int64   `json:"repairs"`
	RepairMsMean  float64 `json:"repair_ms_mean"`
	RepairMsP95   float64 `json:"repair_ms_p95"`
	Failures      int64   `json:"failures"`        // positions left vacant by a holder going offline
	VacantAtEnd   int64   `json:"vacant_at_end"`   // of those, still vacant at the end
	PositionsEnd  int64   `json:"positions_end"`   // distinct positions held by online peers at the end
	PetalsWithDir int64   `json:"petals_with_dir"` // (site, locality) petals with a live directory at the end
	// PetalUp-CDN: petals that had more than one live directory instance at
	// once, and the most instances one petal had at once.
	PetalsSplit          int64 `json:"petals_split"`
	MaxInstancesPerPetal int64 `json:"max_instances_per_petal"`
	DirectoryRoleChanges int64 `json:"directory_role_changes"`
	// A position that a second online peer also claims (split rings that
	// have not merged yet): how often, and the most claimants of one key.
	HolderConflicts  int64 `json:"holder_conflicts"`
	MaxHoldersPerKey int64 `json:"max_holders_per_key"`
	// Roles of online peers at the end, per (peer, website of interest).
	RolesEnd map[string]int64 `json:"roles_end"`
	// SeederPositionsEnd: of PositionsEnd, those held by seeders.
	SeederPositionsEnd int64 `json:"seeder_positions_end"`
}

// Bucket is one time slice of the run, by query issue time.
type Bucket struct {
	StartS       float64 `json:"start_s"`
	Queries      int64   `json:"queries"`
	NonLocal     int64   `json:"non_local"` // answered, not from the requester's cache
	HitRatio     float64 `json:"hit_ratio"`
	LookupMsMean float64 `json:"lookup_ms_mean"`
}

// traffic accounts background (non-object) bytes by message type.
type traffic struct {
	names   []string
	end     time.Duration // bytes count up to this time (World.End)
	bytes   []int64       // sent at or before end
	msgs    int64         // all messages sent
	dropped int64         // not delivered: destination offline or unknown
}

func newTraffic(names []string) traffic {
	return traffic{names: names, bytes: make([]int64, len(names))}
}

// summarize computes the metrics of one system from its per-query results.
// curEpoch is each peer's session number at the end of the run: an
// unanswered query whose requester has since left was abandoned, otherwise
// it failed.
func summarize(w *World, r *results, curEpoch []uint32, tr *traffic) *Metrics {
	m := &Metrics{}
	cfg := &w.cfg
	nb := cfg.Buckets
	type acc struct {
		queries, nonLocal, peer, lookN int64
		lookSum                        float64
	}
	buckets := make([]acc, nb)
	span := float64(w.End) + 1
	var lookups, transfers []float64
	var hopSum int64
	for qi := cfg.Warmup; qi < len(w.QueryPos); qi++ {
		ev := &w.Trace[w.QueryPos[qi]]
		m.Queries++
		b := &buckets[min(int(float64(ev.At)/span*float64(nb)), nb-1)]
		b.queries++
		out := r.out[qi]
		if out == outPending {
			if r.epoch[qi] != curEpoch[ev.Peer] {
				out = outAbandoned
			}
			r.out[qi] = out
		}
		switch out {
		case outPending, outFailed:
			m.FailedQueries++
			continue
		case outAbandoned:
			m.AbandonedQueries++
			continue
		}
		m.Answered++
		if out == outLocal {
			m.LocalHits++
			continue
		}
		size := int64(w.ObjSize[ev.Obj])
		m.BytesDelivered += size
		b.nonLocal++
		if out == outPeer {
			m.PeerHits++
			b.peer++
		} else {
			m.OriginFetches++
			m.BytesFromOrigin += size
		}
		l := float64(r.lookupUS[qi]) / 1000
		lookups = append(lookups, l)
		b.lookSum += l
		b.lookN++
		transfers = append(transfers, float64(r.transfer[qi])/1000)
		hopSum += int64(r.hops[qi])
	}
	nonLocal := m.Answered - m.LocalHits
	m.HitRatio = ratio(float64(m.PeerHits), float64(nonLocal))
	m.HitRatioWithLocal = ratio(float64(m.LocalHits+m.PeerHits), float64(m.Answered))
	m.LookupMsMean = mean(lookups)
	m.TransferMsMean = mean(transfers)
	m.LookupHopsMean = ratio(float64(hopSum), float64(nonLocal))
	slices.Sort(lookups)
	slices.Sort(transfers)
	m.LookupMsP50 = percentile(lookups, 0.50)
	m.LookupMsP95 = percentile(lookups, 0.95)
	m.TransferMsP95 = percentile(transfers, 0.95)
	m.OriginFraction = ratio(float64(m.BytesFromOrigin), float64(m.BytesDelivered))

	m.OverheadByType = map[string]float64{}
	total := int64(0)
	for i, b := range tr.bytes {
		if b != 0 {
			m.OverheadByType[tr.names[i]] = round3(ratio(float64(b), w.PeerMins))
			total += b
		}
	}
	m.OverheadBytesPerPeerMin = ratio(float64(total), w.PeerMins)
	m.Messages = tr.msgs
	m.MessagesDropped = tr.dropped

	m.Series = make([]Bucket, nb)
	for i, b := range buckets {
		m.Series[i] = Bucket{
			StartS:       round3(span * float64(i) / float64(nb) / float64(time.Second)),
			Queries:      b.queries,
			NonLocal:     b.nonLocal,
			HitRatio:     ratio(float64(b.peer), float64(b.nonLocal)),
			LookupMsMean: ratio(b.lookSum, float64(b.lookN)),
		}
	}
	return m
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return ratio(s, float64(len(xs)))
}

// percentile is the nearest-rank percentile of sorted xs (0 when empty).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

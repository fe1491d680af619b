package core

import (
	"fmt"
	"time"
)

// Config holds every protocol parameter. DefaultConfig gives PROTOCOL.md's
// defaults; the simulator is where they are tuned.
type Config struct {
	// Localities is k, the number of localities.
	Localities int
	// InstanceBits is the number of key bits reserved for PetalUp-CDN
	// directory instances of one petal (2^InstanceBits instances at most).
	InstanceBits int

	// ViewSize is V, the number of contacts a content peer keeps.
	ViewSize int
	// GossipSubset is how many view entries one shuffle carries.
	GossipSubset int
	// GossipPeriod is the period of a content peer's shuffle.
	GossipPeriod time.Duration
	// BloomFP is the false-positive target of content summaries.
	BloomFP float64

	// PushThreshold is the number of cache changes that triggers a push.
	PushThreshold int
	// KeepalivePeriod is the keepalive period; pending changes ride on it.
	KeepalivePeriod time.Duration
	// KeepaliveMisses is how many keepalive periods a directory waits before
	// it drops a silent content peer from its index.
	KeepaliveMisses int

	// SuccessorListLen is the length of a D-ring member's successor list.
	SuccessorListLen int
	// StabilizePeriod is the period of Chord stabilization (and predecessor check).
	StabilizePeriod time.Duration
	// FixFingersPeriod is the period at which one finger is refreshed.
	FixFingersPeriod time.Duration
	// RingCheckPeriod is the period at which a directory looks its own key up
	// through a random entry point, which merges rings that formed apart.
	RingCheckPeriod time.Duration

	// SummaryPeriod is the longest time between two directory summaries.
	SummaryPeriod time.Duration
	// SummaryMinInterval is the shortest time between two summary deltas.
	SummaryMinInterval time.Duration
	// SummaryChanges is how many objects must have entered the index for a
	// directory to send a delta (the new object ids) before SummaryPeriod.
	SummaryChanges int

	// QueryTries is how many petal contacts step 2 of query processing asks.
	QueryTries int
	// RequestTimeout bounds one request to a peer whose RTT is unknown.
	RequestTimeout time.Duration
	// MinTimeout is the floor of an RTT-derived request timeout.
	MinTimeout time.Duration
	// RTTFactor multiplies a measured RTT to give a request timeout.
	RTTFactor float64
	// ForwardBudget is the time a directory's forwarding (to a holder, or
	// to another locality's directory and its holder) may add to the RTT
	// before a query to the directory counts as failed.
	ForwardBudget time.Duration
	// ReconnectTries is how many stored contacts a returning peer tries at
	// once before it rejoins as a new client.
	ReconnectTries int
	// JoinJitter spreads the tryJoin of clients that found a position
	// vacant over this long.
	JoinJitter time.Duration
	// LookupTimeout bounds a query routed over D-ring.
	LookupTimeout time.Duration
	// LookupRetries is how many more times a failed tryJoin lookup is tried.
	LookupRetries int
	// MaxHops drops a routed message after this many hops.
	MaxHops int

	// EntryTimeout bounds the wait for an answer of the bootstrap service
	// (Ready.EntryReqs); past it the request counts as failed.
	EntryTimeout time.Duration
	// EntryRetryMin and EntryRetryMax bound the backoff after a failed
	// entry-point request: the wait doubles from min to max. While it lasts,
	// queries that need entry points go to the origin at once.
	EntryRetryMin, EntryRetryMax time.Duration
	// EntryRandom is how many random D-ring members a request asks for.
	EntryRandom int

	// CacheBytes is the cache quota per website, in bytes.
	CacheBytes int64

	// PetalMaxPeers is the PetalUp-CDN threshold: a directory instance with
	// more content peers than this splits its petal.
	PetalMaxPeers int

	// LeaveHandover (beyond the papers; docs/core.md): a node that goes
	// offline through GoOffline (the page is being closed) says so first.
	// As a content peer it tells its directory it holds nothing. As a
	// directory it names a successor, the live content peer of its index up
	// the longest (content peers say their session age in Push.Up), to its
	// content peers, which redirect to it at once, and to the successor,
	// which takes the position at once. Off (the default): a departure is
	// silent, as in the papers, and Push.Up is 0.
	LeaveHandover bool
}

// DefaultConfig returns PROTOCOL.md's default parameters.
func DefaultConfig() Config {
	return Config{
		Localities:         6,
		InstanceBits:       3,
		ViewSize:           20,
		GossipSubset:       8,
		GossipPeriod:       30 * time.Second,
		BloomFP:            0.01,
		PushThreshold:      10,
		KeepalivePeriod:    60 * time.Second,
		KeepaliveMisses:    3,
		SuccessorListLen:   4,
		StabilizePeriod:    5 * time.Second,
		FixFingersPeriod:   5 * time.Second,
		RingCheckPeriod:    60 * time.Second,
		SummaryPeriod:      60 * time.Second,
		SummaryMinInterval: 500 * time.Millisecond,
		SummaryChanges:     1,
		QueryTries:         2,
		RequestTimeout:     time.Second,
		MinTimeout:         50 * time.Millisecond,
		RTTFactor:          3,
		ForwardBudget:      400 * time.Millisecond,
		ReconnectTries:     8,
		JoinJitter:         500 * time.Millisecond,
		LookupTimeout:      1200 * time.Millisecond,
		LookupRetries:      2,
		MaxHops:            64,
		EntryTimeout:       2 * time.Second,
		EntryRetryMin:      time.Second,
		EntryRetryMax:      time.Minute,
		EntryRandom:        4,
		CacheBytes:         32 << 20,
		PetalMaxPeers:      100,
	}
}

// Validate reports the first parameter that is out of range. Every
// duration, period, count and size is checked: a zero period would be a
// timer that never lets Tick return.
func (c Config) Validate() error {
	type check struct {
		ok   bool
		name string
		v    any
		want string
	}
	checks := []check{
		{c.Localities >= 1 && c.Localities <= 256, "Localities", c.Localities, "in [1,256]"},
		{c.InstanceBits >= 0 && c.InstanceBits <= 8, "InstanceBits", c.InstanceBits, "in [0,8]"},
		{c.ViewSize >= 1 && c.ViewSize <= 1000, "ViewSize", c.ViewSize, "in [1,1000]"},
		{c.GossipSubset >= 1 && c.GossipSubset <= c.ViewSize, "GossipSubset", c.GossipSubset, fmt.Sprintf("in [1,ViewSize=%d]", c.ViewSize)},
		{c.GossipPeriod > 0, "GossipPeriod", c.GossipPeriod, "positive"},
		{c.BloomFP >= 0.001 && c.BloomFP < 1, "BloomFP", c.BloomFP, "in [0.001,1)"},
		{c.PushThreshold >= 1, "PushThreshold", c.PushThreshold, "at least 1"},
		{c.KeepalivePeriod > 0, "KeepalivePeriod", c.KeepalivePeriod, "positive"},
		{c.KeepaliveMisses >= 1, "KeepaliveMisses", c.KeepaliveMisses, "at least 1"},
		{c.SuccessorListLen >= 1 && c.SuccessorListLen <= 32, "SuccessorListLen", c.SuccessorListLen, "in [1,32]"},
		{c.StabilizePeriod > 0, "StabilizePeriod", c.StabilizePeriod, "positive"},
		{c.FixFingersPeriod > 0, "FixFingersPeriod", c.FixFingersPeriod, "positive"},
		{c.RingCheckPeriod > 0, "RingCheckPeriod", c.RingCheckPeriod, "positive"},
		{c.SummaryPeriod > 0, "SummaryPeriod", c.SummaryPeriod, "positive"},
		{c.SummaryMinInterval > 0 && c.SummaryMinInterval <= c.SummaryPeriod, "SummaryMinInterval", c.SummaryMinInterval, "positive and at most SummaryPeriod"},
		{c.SummaryChanges >= 1, "SummaryChanges", c.SummaryChanges, "at least 1"},
		{c.QueryTries >= 0 && c.QueryTries <= c.ViewSize, "QueryTries", c.QueryTries, "in [0,ViewSize]"},
		{c.RequestTimeout > 0, "RequestTimeout", c.RequestTimeout, "positive"},
		{c.MinTimeout > 0 && c.MinTimeout <= c.RequestTimeout, "MinTimeout", c.MinTimeout, "positive and at most RequestTimeout"},
		{c.RTTFactor >= 1 && c.RTTFactor <= 100, "RTTFactor", c.RTTFactor, "in [1,100]"},
		{c.ForwardBudget > 0, "ForwardBudget", c.ForwardBudget, "positive"},
		{c.ReconnectTries >= 1, "ReconnectTries", c.ReconnectTries, "at least 1"},
		{c.JoinJitter >= 0, "JoinJitter", c.JoinJitter, "not negative"},
		{c.LookupTimeout > 0, "LookupTimeout", c.LookupTimeout, "positive"},
		{c.LookupRetries >= 0 && c.LookupRetries <= 16, "LookupRetries", c.LookupRetries, "in [0,16]"},
		{c.MaxHops >= 1 && c.MaxHops <= 255, "MaxHops", c.MaxHops, "in [1,255]"},
		{c.EntryTimeout > 0, "EntryTimeout", c.EntryTimeout, "positive"},
		{c.EntryRetryMin > 0, "EntryRetryMin", c.EntryRetryMin, "positive"},
		{c.EntryRetryMax >= c.EntryRetryMin, "EntryRetryMax", c.EntryRetryMax, "at least EntryRetryMin"},
		{c.EntryRandom >= 1 && c.EntryRandom <= 16, "EntryRandom", c.EntryRandom, "in [1,16]"},
		{c.CacheBytes >= 0, "CacheBytes", c.CacheBytes, "not negative (0: unbounded)"},
		{c.PetalMaxPeers >= 2, "PetalMaxPeers", c.PetalMaxPeers, "at least 2"},
	}
	for _, k := range checks {
		if !k.ok {
			return fmt.Errorf("config: %s %v must be %s", k.name, k.v, k.want)
		}
	}
	return nil
}

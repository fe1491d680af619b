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

	// CacheBytes is the cache quota per website, in bytes.
	CacheBytes int64

	// PetalMaxPeers is the PetalUp-CDN threshold: a directory instance with
	// more content peers than this splits its petal.
	PetalMaxPeers int
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
		CacheBytes:         32 << 20,
		PetalMaxPeers:      100,
	}
}

// Validate reports the first parameter that is out of range.
func (c Config) Validate() error {
	switch {
	case c.Localities < 1 || c.Localities > 256:
		return fmt.Errorf("config: Localities %d out of range [1,256]", c.Localities)
	case c.InstanceBits < 0 || c.InstanceBits > 8:
		return fmt.Errorf("config: InstanceBits %d out of range [0,8]", c.InstanceBits)
	case c.ViewSize < 1 || c.ViewSize > 1000:
		return fmt.Errorf("config: ViewSize %d out of range [1,1000]", c.ViewSize)
	case c.GossipSubset < 1 || c.GossipSubset > c.ViewSize:
		return fmt.Errorf("config: GossipSubset %d out of range [1,ViewSize=%d]", c.GossipSubset, c.ViewSize)
	case c.GossipPeriod <= 0 || c.KeepalivePeriod <= 0 || c.StabilizePeriod <= 0 ||
		c.FixFingersPeriod <= 0 || c.RingCheckPeriod <= 0 || c.SummaryPeriod <= 0:
		return fmt.Errorf("config: every period must be positive")
	case c.BloomFP < 0.001 || c.BloomFP >= 1:
		return fmt.Errorf("config: BloomFP %g out of range [0.001,1)", c.BloomFP)
	case c.PushThreshold < 1:
		return fmt.Errorf("config: PushThreshold %d must be at least 1", c.PushThreshold)
	case c.KeepaliveMisses < 1:
		return fmt.Errorf("config: KeepaliveMisses %d must be at least 1", c.KeepaliveMisses)
	case c.SuccessorListLen < 1 || c.SuccessorListLen > 32:
		return fmt.Errorf("config: SuccessorListLen %d out of range [1,32]", c.SuccessorListLen)
	case c.QueryTries < 0:
		return fmt.Errorf("config: QueryTries %d must not be negative", c.QueryTries)
	case c.RequestTimeout <= 0 || c.LookupTimeout <= 0 || c.MinTimeout <= 0 || c.RTTFactor < 1:
		return fmt.Errorf("config: timeouts must be positive and RTTFactor at least 1")
	case c.ForwardBudget < 0 || c.ReconnectTries < 1 || c.JoinJitter < 0:
		return fmt.Errorf("config: ForwardBudget must not be negative and ReconnectTries must be at least 1")
	case c.MaxHops < 1 || c.MaxHops > 255:
		return fmt.Errorf("config: MaxHops %d out of range [1,255]", c.MaxHops)
	case c.CacheBytes < 0:
		return fmt.Errorf("config: CacheBytes %d must not be negative", c.CacheBytes)
	case c.PetalMaxPeers < 2:
		return fmt.Errorf("config: PetalMaxPeers %d must be at least 2", c.PetalMaxPeers)
	}
	return nil
}

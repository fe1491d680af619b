// Package locality is Flower-CDN's locality manager (the seed's
// getMyLocality): it turns round-trip times measured to L landmarks into a
// locality id in [0, k) by landmark binning (Ratnasamy, Handley, Karp,
// Shenker, "Topologically-aware overlay construction and server selection",
// INFOCOM 2002).
//
// A peer measures each landmark a few times (PROTOCOL.md: 3 probes), takes the
// median per landmark (MedianRTT), orders the landmarks by increasing RTT,
// optionally tags each with a coarse RTT level (Levels), and maps that bin to a
// locality (Locality). The landmarks, k and the Mapping come from the
// bootstrap service's configuration, so every peer maps the same bin to the
// same locality.
//
// The package is pure and deterministic: no I/O, no clock, no randomness. The
// browser peer, native peers and the simulator (over its latency model) all
// call the same functions.
package locality

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxLandmarks is the largest number of landmarks accepted. Landmark binning
// uses a handful (the paper used up to 12); the bound keeps bins small.
const MaxLandmarks = 64

// Errors. Every error of this package wraps one of them, with context.
var (
	// ErrNoSamples: MedianRTT was given no probe results.
	ErrNoSamples = errors.New("no RTT samples")
	// ErrNoLandmarks: no landmark RTTs were given.
	ErrNoLandmarks = errors.New("no landmarks")
	// ErrTooManyLandmarks: more than MaxLandmarks landmarks.
	ErrTooManyLandmarks = errors.New("too many landmarks")
	// ErrNegativeRTT: an RTT or probe sample is negative.
	ErrNegativeRTT = errors.New("negative RTT")
	// ErrBadK: the number of localities k is below 1.
	ErrBadK = errors.New("number of localities must be at least 1")
	// ErrBadLevels: level boundaries are not positive and strictly increasing.
	ErrBadLevels = errors.New("bad RTT level boundaries")
	// ErrBadBin: a bin's string form does not parse or is not canonical.
	ErrBadBin = errors.New("bad bin")
	// ErrBadMapping: a mapping table entry is unusable (bad key, locality out
	// of range).
	ErrBadMapping = errors.New("bad locality mapping")
	// ErrUnmapped: a strict mapping table has no entry for the measured bin.
	ErrUnmapped = errors.New("bin not in mapping table")
)

// MedianRTT returns the median of the probe results of one landmark: the
// middle sample, or the mean of the two middle samples for an even count.
// samples is not modified. It fails on no samples (ErrNoSamples) or a negative
// sample (ErrNegativeRTT).
func MedianRTT(samples []time.Duration) (time.Duration, error) {
	if len(samples) == 0 {
		return 0, fmt.Errorf("locality: median RTT: %w", ErrNoSamples)
	}
	for i, s := range samples {
		if s < 0 {
			return 0, fmt.Errorf("locality: median RTT: sample %d is %v: %w", i, s, ErrNegativeRTT)
		}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], nil
	}
	lo, hi := s[n/2-1], s[n/2]
	return lo + (hi-lo)/2, nil
}

// Levels are the boundaries of coarse RTT levels, positive and strictly
// increasing. Boundaries b0 < b1 < ... define level 0 = [0, b0), level 1 =
// [b0, b1), ..., level len(Levels) = [b_last, +inf). Nil or empty Levels means
// bins carry the landmark ordering only.
type Levels []time.Duration

// DefaultLevels returns the boundaries {100ms, 200ms}: levels [0, 100ms),
// [100ms, 200ms) and >= 200ms.
func DefaultLevels() Levels { return Levels{100 * time.Millisecond, 200 * time.Millisecond} }

// Validate checks that the boundaries are positive and strictly increasing
// (ErrBadLevels).
func (l Levels) Validate() error {
	for i, b := range l {
		if b <= 0 {
			return fmt.Errorf("locality: level boundary %d is %v, must be positive: %w", i, b, ErrBadLevels)
		}
		if i > 0 && b <= l[i-1] {
			return fmt.Errorf("locality: level boundary %d (%v) is not above boundary %d (%v): %w", i, b, i-1, l[i-1], ErrBadLevels)
		}
	}
	return nil
}

// Level returns the level of rtt: the number of boundaries at or below it.
// l must be valid (see Validate).
func (l Levels) Level(rtt time.Duration) int {
	return sort.Search(len(l), func(i int) bool { return l[i] > rtt })
}

// Bin is a peer's landmark bin. Order lists the landmark indexes by
// increasing RTT, ties broken by the lower index, so the bin of a measurement
// is unique. Levels, when the mapping uses RTT levels, holds the level of
// landmark Order[i] at position i (so it never decreases); it is nil otherwise.
type Bin struct {
	Order  []int
	Levels []int
}

// NewBin computes the bin of one RTT per landmark (rtts[i] is landmark i's
// median RTT) with the level boundaries levels (nil for ordering only).
// It fails on no landmarks, more than MaxLandmarks, a negative RTT, or invalid
// levels.
func NewBin(rtts []time.Duration, levels Levels) (Bin, error) {
	if len(rtts) == 0 {
		return Bin{}, fmt.Errorf("locality: bin: %w", ErrNoLandmarks)
	}
	if len(rtts) > MaxLandmarks {
		return Bin{}, fmt.Errorf("locality: bin: %d landmarks, limit %d: %w", len(rtts), MaxLandmarks, ErrTooManyLandmarks)
	}
	for i, r := range rtts {
		if r < 0 {
			return Bin{}, fmt.Errorf("locality: bin: landmark %d RTT is %v: %w", i, r, ErrNegativeRTT)
		}
	}
	if err := levels.Validate(); err != nil {
		return Bin{}, fmt.Errorf("locality: bin: %w", err)
	}
	b := Bin{Order: make([]int, len(rtts))}
	for i := range b.Order {
		b.Order[i] = i
	}
	slices.SortStableFunc(b.Order, func(x, y int) int {
		switch {
		case rtts[x] < rtts[y]:
			return -1
		case rtts[x] > rtts[y]:
			return 1
		}
		return 0
	})
	if len(levels) > 0 {
		b.Levels = make([]int, len(rtts))
		for i, lm := range b.Order {
			b.Levels[i] = levels.Level(rtts[lm])
		}
	}
	return b, nil
}

// Nearest returns the index of the landmark with the lowest RTT, or -1 for an
// empty bin.
func (b Bin) Nearest() int {
	if len(b.Order) == 0 {
		return -1
	}
	return b.Order[0]
}

// String is the bin's canonical text form, the key of Mapping.Table: the
// landmark indexes in order joined by "-", followed, when the bin has levels,
// by ":" and the levels joined by "-". Examples: "2-0-1", "2-0-1:0-0-2".
func (b Bin) String() string {
	var sb strings.Builder
	join := func(v []int) {
		for i, x := range v {
			if i > 0 {
				sb.WriteByte('-')
			}
			sb.WriteString(strconv.Itoa(x))
		}
	}
	join(b.Order)
	if b.Levels != nil {
		sb.WriteByte(':')
		join(b.Levels)
	}
	return sb.String()
}

// ParseBin parses the canonical text form written by Bin.String. The order
// must be a permutation of 0..L-1 (1 <= L <= MaxLandmarks); levels, when
// present, must be L non-negative, non-decreasing numbers. Numbers have no
// sign and no leading zeros, so that ParseBin(s).String() == s. Errors wrap
// ErrBadBin.
func ParseBin(s string) (Bin, error) {
	orderPart, levelPart, hasLevels := strings.Cut(s, ":")
	order, err := parseInts(orderPart)
	if err != nil {
		return Bin{}, fmt.Errorf("locality: parse bin %q: order: %w", s, err)
	}
	if len(order) > MaxLandmarks {
		return Bin{}, fmt.Errorf("locality: parse bin %q: %d landmarks, limit %d: %w", s, len(order), MaxLandmarks, ErrBadBin)
	}
	seen := make([]bool, len(order))
	for _, x := range order {
		if x >= len(order) || seen[x] {
			return Bin{}, fmt.Errorf("locality: parse bin %q: order is not a permutation of 0..%d: %w", s, len(order)-1, ErrBadBin)
		}
		seen[x] = true
	}
	b := Bin{Order: order}
	if hasLevels {
		lv, err := parseInts(levelPart)
		if err != nil {
			return Bin{}, fmt.Errorf("locality: parse bin %q: levels: %w", s, err)
		}
		if len(lv) != len(order) {
			return Bin{}, fmt.Errorf("locality: parse bin %q: %d levels for %d landmarks: %w", s, len(lv), len(order), ErrBadBin)
		}
		if !slices.IsSorted(lv) {
			return Bin{}, fmt.Errorf("locality: parse bin %q: levels decrease along the order: %w", s, ErrBadBin)
		}
		b.Levels = lv
	}
	return b, nil
}

// parseInts parses "a-b-c" of canonical non-negative decimal numbers.
func parseInts(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("empty: %w", ErrBadBin)
	}
	fields := strings.Split(s, "-")
	if len(fields) > MaxLandmarks {
		return nil, fmt.Errorf("%d numbers, limit %d: %w", len(fields), MaxLandmarks, ErrBadBin)
	}
	out := make([]int, len(fields))
	for i, f := range fields {
		ok := f != "" && len(f) <= 4 && (f == "0" || f[0] != '0')
		for j := 0; ok && j < len(f); j++ {
			ok = '0' <= f[j] && f[j] <= '9'
		}
		if !ok {
			return nil, fmt.Errorf("%q is not a canonical number below 10000: %w", f, ErrBadBin)
		}
		out[i], _ = strconv.Atoi(f)
	}
	return out, nil
}

// Mapping says how bins become localities.
//
// With no Table, a bin maps to the index of its nearest landmark modulo k:
// landmarks are meant to be placed one per region, in locality order, so
// landmark i stands for locality i (with more landmarks than localities, i
// and i+k share a locality; with fewer, localities >= L stay empty).
//
// A Table overrides that: it maps a bin's String form (computed with Levels)
// to a locality in [0, k). A bin missing from the Table falls back to the
// default rule, or is an error (ErrUnmapped) when Strict is set.
type Mapping struct {
	// Levels are the RTT level boundaries used to compute bins; nil means
	// bins carry the landmark ordering only.
	Levels Levels
	// Table maps bin strings to localities; nil means the default rule.
	Table map[string]int
	// Strict makes a bin missing from Table an error instead of falling back.
	Strict bool
}

// Validate checks a mapping for k localities and the given number of
// landmarks, once, when the configuration is loaded: valid Levels, and every
// Table key a canonical bin of that many landmarks, with levels exactly when
// Levels is set and no level above len(Levels), mapped to a locality in
// [0, k). Errors wrap ErrBadK, ErrNoLandmarks, ErrTooManyLandmarks,
// ErrBadLevels, ErrBadBin or ErrBadMapping.
func (m Mapping) Validate(k, landmarks int) error {
	if k < 1 {
		return fmt.Errorf("locality: mapping: k = %d: %w", k, ErrBadK)
	}
	if landmarks < 1 {
		return fmt.Errorf("locality: mapping: %d landmarks: %w", landmarks, ErrNoLandmarks)
	}
	if landmarks > MaxLandmarks {
		return fmt.Errorf("locality: mapping: %d landmarks, limit %d: %w", landmarks, MaxLandmarks, ErrTooManyLandmarks)
	}
	if err := m.Levels.Validate(); err != nil {
		return fmt.Errorf("locality: mapping: %w", err)
	}
	for _, key := range slices.Sorted(maps.Keys(m.Table)) { // sorted: the same error every time
		loc := m.Table[key]
		b, err := ParseBin(key)
		if err != nil {
			return fmt.Errorf("locality: mapping: table key: %w", err)
		}
		if len(b.Order) != landmarks {
			return fmt.Errorf("locality: mapping: table key %q has %d landmarks, want %d: %w", key, len(b.Order), landmarks, ErrBadMapping)
		}
		if (b.Levels != nil) != (len(m.Levels) > 0) {
			return fmt.Errorf("locality: mapping: table key %q: levels present in the key must match levels configured (%d boundaries): %w", key, len(m.Levels), ErrBadMapping)
		}
		if n := len(b.Levels); n > 0 && b.Levels[n-1] > len(m.Levels) {
			return fmt.Errorf("locality: mapping: table key %q: level %d above the highest level %d: %w", key, b.Levels[n-1], len(m.Levels), ErrBadMapping)
		}
		if loc < 0 || loc >= k {
			return fmt.Errorf("locality: mapping: table key %q maps to %d, outside [0, %d): %w", key, loc, k, ErrBadMapping)
		}
	}
	return nil
}

// Locality maps one median RTT per landmark (rtts[i] for landmark i; see
// MedianRTT) to a locality in [0, k) with mapping m: this is getMyLocality
// once the measurements are taken. It fails with ErrBadK (k < 1),
// ErrNoLandmarks, ErrTooManyLandmarks, ErrNegativeRTT, ErrBadLevels,
// ErrBadMapping (the table maps the bin outside [0, k)) or ErrUnmapped (strict
// table without the bin). Locality checks only the table entry it uses; check
// the whole mapping once with Mapping.Validate.
func Locality(rtts []time.Duration, k int, m Mapping) (int, error) {
	if k < 1 {
		return 0, fmt.Errorf("locality: k = %d: %w", k, ErrBadK)
	}
	b, err := NewBin(rtts, m.Levels)
	if err != nil {
		return 0, err
	}
	if m.Table != nil {
		key := b.String()
		if loc, ok := m.Table[key]; ok {
			if loc < 0 || loc >= k {
				return 0, fmt.Errorf("locality: table maps bin %q to %d, outside [0, %d): %w", key, loc, k, ErrBadMapping)
			}
			return loc, nil
		}
		if m.Strict {
			return 0, fmt.Errorf("locality: bin %q: %w", key, ErrUnmapped)
		}
	}
	return b.Nearest() % k, nil
}

// FromProbes is Locality over raw probe results: probes[i] holds the RTT
// samples of landmark i, reduced to their median with MedianRTT first.
func FromProbes(probes [][]time.Duration, k int, m Mapping) (int, error) {
	rtts := make([]time.Duration, len(probes))
	for i, p := range probes {
		r, err := MedianRTT(p)
		if err != nil {
			return 0, fmt.Errorf("locality: landmark %d: %w", i, err)
		}
		rtts[i] = r
	}
	return Locality(rtts, k, m)
}

package summary

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// set is a model of the summarised set, in insertion order (so iteration is
// deterministic).
type set struct {
	order []ids.ObjectID
	in    map[ids.ObjectID]int
}

func newSet() *set { return &set{in: make(map[ids.ObjectID]int)} }

func (s *set) add(o ids.ObjectID) bool {
	if _, ok := s.in[o]; ok {
		return false
	}
	s.in[o] = len(s.order)
	s.order = append(s.order, o)
	return true
}

func (s *set) remove(o ids.ObjectID) bool {
	i, ok := s.in[o]
	if !ok {
		return false
	}
	last := s.order[len(s.order)-1]
	s.order[i] = last
	s.in[last] = i
	s.order = s.order[:len(s.order)-1]
	delete(s.in, o)
	return true
}

func (s *set) all(yield func(ids.ObjectID) bool) {
	for _, o := range s.order {
		if !yield(o) {
			return
		}
	}
}

func (s *set) len() int { return len(s.order) }

func TestTestNil(t *testing.T) {
	for _, o := range []ids.ObjectID{0, 1, 1 << 63} {
		if Test(nil, o) {
			t.Errorf("Test(nil, %d) = true", o)
		}
	}
}

// Test uses the big-endian 8-byte encoding of the object id.
func TestTestEncoding(t *testing.T) {
	f := bloom.NewWithEstimates(100, 0.001)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], 0x0102030405060708)
	f.Add(b[:])
	if !Test(f, 0x0102030405060708) {
		t.Errorf("Test misses an object added with the big-endian encoding")
	}
}

func TestCapacityFor(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want uint
	}{
		{0, 64}, {1, 64}, {32, 64}, {33, 128}, {64, 128}, {65, 256}, {128, 256}, {129, 512}, {1000, 2048}, {1024, 2048}, {1025, 4096},
	} {
		if got := capacityFor(tc.n); got != tc.want {
			t.Errorf("capacityFor(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	for n := range 5000 {
		c := capacityFor(n)
		if c < MinCapacity || c < uint(2*n) || (c > MinCapacity && c/2 >= uint(2*n)) {
			t.Fatalf("capacityFor(%d) = %d: not the smallest power-of-two multiple of 64 >= 2n", n, c)
		}
	}
}

func TestNewBuilderEmpty(t *testing.T) {
	b := NewBuilder(0.01)
	if b.Snapshot() != nil {
		t.Errorf("Snapshot of a never-filled builder is not nil")
	}
	if b.Version() == 0 {
		t.Errorf("initial version is 0")
	}
	// Resetting to the empty set gives an empty, non-nil filter.
	b.Reset(0, newSet().all)
	f := b.Snapshot()
	if f == nil {
		t.Fatalf("Snapshot after Reset(0) is nil")
	}
	if f.ApproximatedSize() != 0 {
		t.Errorf("empty filter not empty")
	}
}

func checkNoFalseNegatives(t *testing.T, b *Builder, s *set, where string) {
	t.Helper()
	f := b.Snapshot()
	for _, o := range s.order {
		if !Test(f, o) {
			t.Fatalf("%s: summary misses %x (set of %d, cap %d)", where, o, s.len(), b.cap)
		}
	}
}

func TestBuilderNoFalseNegatives(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, fp := range []float64{0.1, 0.01, 0.0001} {
		b := NewBuilder(fp)
		s := newSet()
		pool := uint64(5000)
		for step := range 30000 {
			switch r := rnd.IntN(100); {
			case r < 60: // add
				o := ids.ObjectID(rnd.Uint64N(pool))
				if s.add(o) {
					b.Add(o, s.len(), s.all)
				}
			case r < 95: // remove
				if s.len() == 0 {
					continue
				}
				o := s.order[rnd.IntN(s.len())]
				s.remove(o)
				b.Remove(s.len(), s.all)
			case r < 99: // a burst of growth forces rebuilds
				for range rnd.IntN(500) {
					o := ids.ObjectID(rnd.Uint64N(pool))
					if s.add(o) {
						b.Add(o, s.len(), s.all)
					}
				}
			default: // replace wholesale
				s = newSet()
				for range rnd.IntN(800) {
					s.add(ids.ObjectID(rnd.Uint64N(pool)))
				}
				b.Reset(s.len(), s.all)
			}
			if step%50 == 0 {
				checkNoFalseNegatives(t, b, s, "random ops")
			}
			if uint(s.len()) > b.cap && b.live != nil {
				t.Fatalf("set of %d outgrew the capacity %d without a rebuild", s.len(), b.cap)
			}
		}
		checkNoFalseNegatives(t, b, s, "end")
	}
}

func TestVersionGrowsWithEveryChange(t *testing.T) {
	b := NewBuilder(0.01)
	s := newSet()
	v := b.Version()
	bump := func(what string) {
		t.Helper()
		if nv := b.Version(); nv <= v {
			t.Fatalf("%s: version %d -> %d", what, v, nv)
		} else {
			v = nv
		}
	}
	for i := range 300 {
		s.add(ids.ObjectID(i))
		b.Add(ids.ObjectID(i), s.len(), s.all)
		bump("Add")
	}
	for i := range 200 {
		s.remove(ids.ObjectID(i))
		b.Remove(s.len(), s.all)
		bump("Remove")
	}
	b.Reset(s.len(), s.all)
	bump("Reset")
	_ = b.Snapshot()
	if b.Version() != v {
		t.Errorf("Snapshot changed the version")
	}
}

func TestSnapshotPointerAndImmutability(t *testing.T) {
	b := NewBuilder(0.01)
	s := newSet()
	add := func(o ids.ObjectID) {
		s.add(o)
		b.Add(o, s.len(), s.all)
	}
	add(1)
	s1 := b.Snapshot()
	if s1 == nil || b.Snapshot() != s1 {
		t.Fatalf("Snapshot not stable without changes")
	}
	c1 := s1.Copy()
	add(2)
	s2 := b.Snapshot()
	if s2 == s1 {
		t.Fatalf("Snapshot pointer unchanged after Add")
	}
	if !s1.Equal(c1) {
		t.Errorf("a later Add changed an earlier snapshot")
	}
	if !Test(s2, 2) {
		t.Errorf("new snapshot misses the new object")
	}
	// Through removal-triggered and growth-triggered rebuilds, which reuse
	// the live filter, old snapshots stay as they were.
	c2 := s2.Copy()
	for i := ids.ObjectID(100); i < 2000; i++ {
		add(i)
	}
	for i := ids.ObjectID(100); i < 1900; i++ {
		s.remove(i)
		b.Remove(s.len(), s.all)
	}
	b.Reset(s.len(), s.all)
	if !s1.Equal(c1) || !s2.Equal(c2) {
		t.Errorf("rebuilds changed earlier snapshots")
	}
	s3 := b.Snapshot()
	c3 := s3.Copy()
	s.remove(1)
	b.Remove(s.len(), s.all) // may or may not rebuild
	s4 := b.Snapshot()
	if s4 == s3 {
		t.Errorf("Snapshot pointer unchanged after Remove")
	}
	if !s3.Equal(c3) {
		t.Errorf("Remove changed an earlier snapshot")
	}
	// Mutating the live builder through many more Adds never touches s4's bits.
	c4 := s4.Copy()
	for i := ids.ObjectID(5000); i < 5040; i++ {
		add(i)
	}
	if !s4.Equal(c4) {
		t.Errorf("Adds without a rebuild changed an earlier snapshot")
	}
}

// A rebuild after removals drops the removed elements: they are no more
// likely to test positive than never-seen ones.
func TestRemovalsEventuallyForgotten(t *testing.T) {
	b := NewBuilder(0.01)
	s := newSet()
	for i := range 1000 {
		s.add(ids.ObjectID(i))
		b.Add(ids.ObjectID(i), s.len(), s.all)
	}
	for i := range 900 {
		s.remove(ids.ObjectID(i))
		b.Remove(s.len(), s.all)
	}
	if b.stale > s.len()/4+8 {
		t.Fatalf("stale %d over the rebuild threshold", b.stale)
	}
	f := b.Snapshot()
	still := 0
	for i := range 900 - 40 { // the last ~n/4+8 removals may linger
		if Test(f, ids.ObjectID(i)) {
			still++
		}
	}
	// 860 probes at <= 1% (the filter is sized for >= 2x the set).
	if still > 30 {
		t.Errorf("%d of 860 removed objects still test positive", still)
	}
	checkNoFalseNegatives(t, b, s, "after removals")
}

func fpRate(f *bloom.BloomFilter, s *set, rnd *rand.Rand, probes int) float64 {
	fp, n := 0, 0
	for n < probes {
		o := ids.ObjectID(rnd.Uint64())
		if _, ok := s.in[o]; ok {
			continue
		}
		n++
		if Test(f, o) {
			fp++
		}
	}
	return float64(fp) / float64(n)
}

func TestFalsePositiveRate(t *testing.T) {
	const probes = 100000
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, target := range []float64{0.05, 0.01, 0.001} {
		for _, n := range []int{1, 10, 64, 100, 256, 1000, 1024, 4096, 10000} {
			b := NewBuilder(target)
			s := newSet()
			for s.len() < n {
				o := ids.ObjectID(rnd.Uint64())
				if s.add(o) {
					b.Add(o, s.len(), s.all)
				}
			}
			rate := fpRate(b.Snapshot(), s, rnd, probes)
			// At most 3x the target; a filter that holds its capacity exactly
			// (n = 64, 256, 1024, 4096) is at the target.
			if rate > 3*target {
				t.Errorf("target %g, n=%d (cap %d): false-positive rate %.5f", target, n, b.cap, rate)
			}
			if testing.Verbose() {
				t.Logf("target %g, n=%5d cap %5d: fp %.5f", target, n, b.cap, rate)
			}
		}
	}
}

// With removals lingering below the rebuild threshold the rate stays near
// the target too.
func TestFalsePositiveRateWithRemovals(t *testing.T) {
	const target = 0.01
	rnd := rand.New(rand.NewPCG(5, 6))
	b := NewBuilder(target)
	s := newSet()
	for s.len() < 1000 {
		o := ids.ObjectID(rnd.Uint64())
		if s.add(o) {
			b.Add(o, s.len(), s.all)
		}
	}
	for range 200 {
		s.remove(s.order[rnd.IntN(s.len())])
		b.Remove(s.len(), s.all)
	}
	checkNoFalseNegatives(t, b, s, "removals")
	if rate := fpRate(b.Snapshot(), s, rnd, 100000); rate > 3*target {
		t.Errorf("false-positive rate %.5f with %d stale entries", rate, b.stale)
	}
}

// Rebuilds of the same size reuse the filter parameters; the result equals
// a filter built from scratch.
func TestRebuildEqualsFresh(t *testing.T) {
	s := newSet()
	for i := range 500 {
		s.add(ids.ObjectID(i * 7919))
	}
	b := NewBuilder(0.01)
	for i := range 700 { // grow, then shrink back to the same set
		o := ids.ObjectID(1_000_000 + i)
		s.add(o)
		b.Add(o, s.len(), s.all)
	}
	for i := range 700 {
		s.remove(ids.ObjectID(1_000_000 + i))
		b.Remove(s.len(), s.all)
	}
	b.Reset(s.len(), s.all)
	fresh := NewBuilder(0.01)
	fresh.Reset(s.len(), s.all)
	if !b.Snapshot().Equal(fresh.Snapshot()) {
		t.Errorf("Reset does not give the same filter as a fresh build")
	}
}

// Worst case between rebuilds: the set at full capacity plus as many stale
// removed elements as the rebuild threshold allows. Still within 3x.
func TestFalsePositiveRateWorstCase(t *testing.T) {
	const target = 0.01
	rnd := rand.New(rand.NewPCG(7, 8))
	b := NewBuilder(target)
	s := newSet()
	add := func() {
		for {
			o := ids.ObjectID(rnd.Uint64())
			if s.add(o) {
				b.Add(o, s.len(), s.all)
				return
			}
		}
	}
	for s.len() < 1000 {
		add()
	}
	c := b.cap
	// Churn: remove one, add one, keeping the set at capacity, as long as
	// no rebuild happens.
	for s.len() < int(c) {
		add()
	}
	for {
		before := b.stale
		s.remove(s.order[rnd.IntN(s.len())])
		b.Remove(s.len(), s.all)
		if b.stale <= before { // that removal rebuilt the filter
			t.Fatalf("rebuilt at stale %d", before)
		}
		add()
		if b.stale == (s.len()-1)/4+8 { // the next removal would rebuild
			break
		}
	}
	if b.cap != c || uint(s.len()) != c {
		t.Fatalf("capacity moved: %d -> %d, set %d", c, b.cap, s.len())
	}
	checkNoFalseNegatives(t, b, s, "worst case")
	rate := fpRate(b.Snapshot(), s, rnd, 100000)
	t.Logf("cap %d, set %d, stale %d: fp %.5f", c, s.len(), b.stale, rate)
	if rate > 3*target {
		t.Errorf("worst-case false-positive rate %.5f over 3x the target %g", rate, target)
	}
}

func TestWith(t *testing.T) {
	s := newSet()
	for i := range 100 {
		s.add(ids.ObjectID(i))
	}
	b := NewBuilder(0.01)
	b.Reset(s.len(), s.all)
	f := b.Snapshot()
	snap := f.Copy()
	g := With(f, []ids.ObjectID{1000, 2000})
	if g == f {
		t.Fatalf("With returned its argument")
	}
	if !f.Equal(snap) {
		t.Errorf("With modified its argument")
	}
	for _, o := range append(slices.Clone(s.order), 1000, 2000) {
		if !Test(g, o) {
			t.Fatalf("With result misses %d", o)
		}
	}
	if g.Cap() != f.Cap() || g.K() != f.K() {
		t.Errorf("With changed the filter's parameters")
	}
	if h := With(f, nil); h == f || !h.Equal(f) {
		t.Errorf("With(f, nil) is not an equal copy")
	}
}

func TestCapacityClamped(t *testing.T) {
	for _, n := range []int{MaxCapacity / 2, MaxCapacity, MaxCapacity + 1, 10 * MaxCapacity} {
		if got := capacityFor(n); got != MaxCapacity {
			t.Errorf("capacityFor(%d) = %d, want MaxCapacity %d", n, got, MaxCapacity)
		}
	}
	// At a 1% target the largest filter fits the wire.
	m, _ := bloom.EstimateParameters(MaxCapacity, 0.01)
	if m > wire.MaxBloomBits {
		t.Errorf("a filter of MaxCapacity at 1%% has %d bits, over MaxBloomBits %d", m, wire.MaxBloomBits)
	}
}

// Past MaxCapacity the filter stops growing (and stops rebuilding on every
// Add) but still has no false negatives.
func TestBuilderBeyondMaxCapacity(t *testing.T) {
	b := NewBuilder(0.01)
	s := newSet()
	n := MaxCapacity + MaxCapacity/2
	for i := range n {
		o := ids.ObjectID(uint64(i) * 0x9e3779b97f4a7c15)
		s.add(o)
		b.Add(o, s.len(), s.all)
	}
	if b.cap != MaxCapacity {
		t.Errorf("cap = %d, want %d", b.cap, MaxCapacity)
	}
	f := b.Snapshot()
	if f.Cap() > wire.MaxBloomBits {
		t.Errorf("filter of %d bits over the wire limit", f.Cap())
	}
	checkNoFalseNegatives(t, b, s, "beyond MaxCapacity")
	// Removals still rebuild at the clamped size.
	for i := range n / 2 {
		o := ids.ObjectID(uint64(i) * 0x9e3779b97f4a7c15)
		s.remove(o)
		b.Remove(s.len(), s.all)
	}
	checkNoFalseNegatives(t, b, s, "after removals beyond MaxCapacity")
}

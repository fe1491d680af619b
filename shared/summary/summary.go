// Package summary builds the Bloom-filter summaries Flower-CDN gossips:
// content summaries of a content peer's cache and directory summaries of a
// directory's index. Summaries handed out are immutable snapshots, so a
// receiver may keep the pointer without copying.
package summary

import (
	"encoding/binary"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
)

// MinCapacity is the smallest number of elements a summary is sized for.
const MinCapacity = 64

// MaxCapacity is the largest: at a 1 % target it keeps a filter under the
// wire's MaxBloomBits. Larger sets get a higher false-positive rate.
const MaxCapacity = 1 << 17

// Test reports whether f may contain obj. A nil filter contains nothing.
func Test(f *bloom.BloomFilter, obj ids.ObjectID) bool {
	if f == nil {
		return false
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(obj))
	return f.Test(b[:])
}

// With returns a copy of f with objs added (f itself is never modified:
// summaries are shared immutable snapshots).
func With(f *bloom.BloomFilter, objs []ids.ObjectID) *bloom.BloomFilter {
	g := f.Copy()
	AddTo(g, objs)
	return g
}

// AddTo adds objs to f in place (f must not be shared).
func AddTo(f *bloom.BloomFilter, objs []ids.ObjectID) {
	var b [8]byte
	for _, obj := range objs {
		binary.BigEndian.PutUint64(b[:], uint64(obj))
		f.Add(b[:])
	}
}

// Builder keeps a Bloom filter of a changing set incrementally: additions go
// straight in; removals only count, and the filter is rebuilt from the set
// when too many removed elements linger in it or the set outgrew its size.
type Builder struct {
	fp      float64
	live    *bloom.BloomFilter
	cap     uint // elements the live filter was sized for
	stale   int  // removed elements still set in live
	version uint64
	snap    *bloom.BloomFilter
	snapVer uint64
}

// NewBuilder returns a builder with false-positive target fp.
func NewBuilder(fp float64) *Builder { return &Builder{fp: fp, version: 1} }

func capacityFor(n int) uint {
	c := uint(MinCapacity)
	for c < uint(2*n) && c < MaxCapacity {
		c *= 2
	}
	return c
}

// Add records that obj joined the set, whose size is now n.
func (b *Builder) Add(obj ids.ObjectID, n int, all func(yield func(ids.ObjectID) bool)) {
	b.version++
	if b.live == nil || (uint(n) > b.cap && b.cap < MaxCapacity) {
		b.rebuild(n, all)
		return
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(obj))
	b.live.Add(k[:])
}

// Remove records that an element left the set, whose size is now n.
func (b *Builder) Remove(n int, all func(yield func(ids.ObjectID) bool)) {
	b.version++
	b.stale++
	if b.stale > n/4+8 {
		b.rebuild(n, all)
	}
}

// Reset records that the set was replaced wholesale.
func (b *Builder) Reset(n int, all func(yield func(ids.ObjectID) bool)) {
	b.version++
	b.rebuild(n, all)
}

func (b *Builder) rebuild(n int, all func(yield func(ids.ObjectID) bool)) {
	b.cap = capacityFor(n)
	m, k := bloom.EstimateParameters(b.cap, b.fp)
	if b.live != nil && b.live.Cap() == m && b.live.K() == k {
		b.live.ClearAll()
	} else {
		b.live = bloom.New(m, k)
	}
	var key [8]byte
	for obj := range all {
		binary.BigEndian.PutUint64(key[:], uint64(obj))
		b.live.Add(key[:])
	}
	b.stale = 0
}

// Version grows with every change; equal versions mean equal summaries.
func (b *Builder) Version() uint64 { return b.version }

// Snapshot returns an immutable filter of the current set (nil for a set
// that was never filled). It copies only when the set changed since the last
// snapshot.
func (b *Builder) Snapshot() *bloom.BloomFilter {
	if b.live == nil {
		return nil
	}
	if b.snap == nil || b.snapVer != b.version {
		b.snap = b.live.Copy()
		b.snapVer = b.version
	}
	return b.snap
}

package directory

import (
	"slices"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

func member(key uint64, n int) ids.Member { return ids.Member{Key: ids.Key(key), ID: pid(n)} }

func filterOf(os ...ids.ObjectID) *bloom.BloomFilter {
	b := summary.NewBuilder(0.001)
	b.Reset(len(os), func(yield func(ids.ObjectID) bool) {
		for _, o := range os {
			if !yield(o) {
				return
			}
		}
	})
	return b.Snapshot()
}

func TestSummariesKnow(t *testing.T) {
	s := NewSummaries()
	m := member(10, 1)
	s.Know(m, time.Second)
	r := s.Get(10)
	if r == nil || r.Member != m || r.Summary != nil || r.LastSeen != time.Second {
		t.Fatalf("Know: %+v", r)
	}
	f := filterOf(1)
	s.Receive(m, f, 2*time.Second)
	// Same holder: summary kept, LastSeen only moves forward.
	s.Know(m, 5*time.Second)
	if r := s.Get(10); r.Summary != f || r.LastSeen != 5*time.Second {
		t.Errorf("Know same holder: %+v", r)
	}
	s.Know(m, 3*time.Second)
	if r := s.Get(10); r.LastSeen != 5*time.Second {
		t.Errorf("Know with an older time moved LastSeen back to %v", r.LastSeen)
	}
	// New holder of the key: the old summary is not theirs.
	m2 := member(10, 2)
	s.Know(m2, 4*time.Second)
	if r := s.Get(10); r.Member != m2 || r.Summary != nil || r.LastSeen != 4*time.Second {
		t.Errorf("Know new holder: %+v", r)
	}
	if len(s.Members()) != 1 {
		t.Errorf("Members = %v", s.Members())
	}
}

func TestSummariesReceive(t *testing.T) {
	s := NewSummaries()
	f1, f2 := filterOf(1), filterOf(2)
	s.Receive(member(10, 1), f1, 5*time.Second)
	if r := s.Get(10); r == nil || r.Summary != f1 || r.LastSeen != 5*time.Second {
		t.Fatalf("Receive: %+v", r)
	}
	s.Receive(member(10, 1), f2, 6*time.Second)
	if r := s.Get(10); r.Summary != f2 || r.LastSeen != 6*time.Second {
		t.Errorf("second Receive: %+v", r)
	}
	s.Receive(member(10, 3), f1, 7*time.Second)
	if r := s.Get(10); r.Member.ID != pid(3) || r.Summary != f1 {
		t.Errorf("Receive from new holder: %+v", r)
	}
}

func TestSummariesForget(t *testing.T) {
	s := NewSummaries()
	s.Know(member(10, 1), 0)
	s.Know(member(20, 2), 0)
	s.Forget(10, pid(2)) // other holder: kept
	if s.Get(10) == nil {
		t.Errorf("Forget removed an entry held by someone else")
	}
	s.Forget(30, pid(1)) // unknown key: no-op
	s.Forget(10, pid(1))
	if s.Get(10) != nil {
		t.Errorf("Forget did not remove")
	}
	if got := s.Members(); !slices.Equal(got, []ids.Member{member(20, 2)}) {
		t.Errorf("Members = %v", got)
	}
}

func TestSummariesExpire(t *testing.T) {
	s := NewSummaries()
	for i := 1; i <= 5; i++ {
		s.Know(member(uint64(i*10), i), time.Duration(i)*time.Second)
	}
	s.Expire(3 * time.Second) // LastSeen == cutoff stays
	want := []ids.Member{member(30, 3), member(40, 4), member(50, 5)}
	if got := s.Members(); !slices.Equal(got, want) {
		t.Errorf("after Expire(3s): %v, want %v", got, want)
	}
	s.Know(member(30, 3), 10*time.Second)
	s.Expire(6 * time.Second)
	if got := s.Members(); !slices.Equal(got, []ids.Member{member(30, 3)}) {
		t.Errorf("after Expire(6s): %v", got)
	}
	s.Expire(time.Hour)
	if len(s.Members()) != 0 {
		t.Errorf("after Expire(1h): %v", s.Members())
	}
}

func TestSummariesMembersAndCandidatesOrder(t *testing.T) {
	s := NewSummaries()
	keys := []uint64{0xffffffffffffffff, 5, 1 << 63, 0, 77, 1<<63 - 1}
	for i, k := range keys {
		s.Know(member(k, i+1), 0)
	}
	got := s.Members()
	if len(got) != len(keys) || !slices.IsSortedFunc(got, func(a, b ids.Member) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	}) {
		t.Errorf("Members not in key order: %v", got)
	}
	// Nobody has a summary yet: no candidates.
	if c := s.Candidates(1); len(c) != 0 {
		t.Errorf("Candidates without summaries = %v", c)
	}
	s.Receive(member(0xffffffffffffffff, 1), filterOf(1, 2), 0)
	s.Receive(member(5, 2), filterOf(2), 0)
	s.Receive(member(1<<63, 3), filterOf(1), 0)
	s.Receive(member(0, 4), filterOf(1, 3), 0)
	for _, tc := range []struct {
		obj  ids.ObjectID
		want []ids.Member
	}{
		{1, []ids.Member{member(0, 4), member(1<<63, 3), member(0xffffffffffffffff, 1)}},
		{2, []ids.Member{member(5, 2), member(0xffffffffffffffff, 1)}},
		{3, []ids.Member{member(0, 4)}},
	} {
		if got := s.Candidates(tc.obj); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%d) = %v, want %v", tc.obj, got, tc.want)
		}
	}
	// A new holder (Know) drops the old summary from the candidates.
	s.Know(member(0, 9), 0)
	if got := s.Candidates(3); len(got) != 0 {
		t.Errorf("Candidates(3) after holder change = %v", got)
	}
}

// A directory summary built from an index never misses an object when
// checked through Candidates.
func TestCandidatesFromIndexSummaries(t *testing.T) {
	s := NewSummaries()
	idx := make([]*Index, 4)
	for i := range idx {
		idx[i] = NewIndex(0.01)
		for o := range 500 {
			if o%4 == i || o%7 == i {
				idx[i].AddHolder(ids.ObjectID(o), pid(100+i), 0)
			}
		}
		s.Receive(member(uint64(i)*1000, i+1), idx[i].Summary(), 0)
	}
	for o := range 500 {
		cands := s.Candidates(ids.ObjectID(o))
		for i := range idx {
			if o%4 == i || o%7 == i {
				if !slices.Contains(cands, member(uint64(i)*1000, i+1)) {
					t.Fatalf("Candidates(%d) misses directory %d", o, i)
				}
			}
		}
	}
}

func TestSummariesReceiveDelta(t *testing.T) {
	s := NewSummaries()
	m := member(10, 1)
	if s.ReceiveDelta(m, objs(1), time.Second) {
		t.Errorf("delta for an unknown directory accepted")
	}
	if s.Get(10) != nil {
		t.Errorf("delta created an entry")
	}
	s.Know(m, time.Second)
	if s.ReceiveDelta(m, objs(1), 2*time.Second) {
		t.Errorf("delta accepted without a full summary to apply it to")
	}
	f := filterOf(1, 2)
	snap := f.Copy()
	s.Receive(m, f, 3*time.Second)
	if s.ReceiveDelta(member(10, 2), objs(3), 4*time.Second) {
		t.Errorf("delta from another holder of the key accepted")
	}
	if s.ReceiveDelta(member(11, 1), objs(3), 4*time.Second) {
		t.Errorf("delta for another key accepted")
	}
	if !s.ReceiveDelta(m, objs(3, 4), 5*time.Second) {
		t.Fatalf("delta refused")
	}
	r := s.Get(10)
	if r.LastSeen != 5*time.Second {
		t.Errorf("LastSeen = %v, want 5s", r.LastSeen)
	}
	for _, o := range objs(1, 2, 3, 4) {
		if !summary.Test(r.Summary, o) {
			t.Errorf("summary after delta misses %d", o)
		}
	}
	if got := s.Candidates(3); !slices.Equal(got, []ids.Member{m}) {
		t.Errorf("Candidates(3) = %v", got)
	}
	// The received filter is shared and immutable: the delta copies.
	if r.Summary == f || !f.Equal(snap) {
		t.Errorf("delta modified the filter it was applied to")
	}
	// An empty delta is a keepalive.
	prev := r.Summary
	if !s.ReceiveDelta(m, nil, 6*time.Second) {
		t.Fatalf("empty delta refused")
	}
	if r := s.Get(10); r.Summary != prev || r.LastSeen != 6*time.Second {
		t.Errorf("empty delta: summary replaced or LastSeen %v", r.LastSeen)
	}
}

package gossip

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
	"github.com/flowercdn/flower/shared/wire"
)

// pid returns a distinct non-zero peer id for n >= 1 (pid(0) is the zero id).
func pid(n int) ids.PeerID {
	var p ids.PeerID
	binary.BigEndian.PutUint64(p[8:], uint64(n))
	return p
}

func c(n int, age uint16) wire.Contact { return wire.Contact{ID: pid(n), Age: age} }

func viewOf(max int, cs ...wire.Contact) *View {
	v := NewView(max)
	for _, x := range cs {
		if !v.AddContact(x) {
			panic("viewOf: view too small")
		}
	}
	return v
}

func filterOf(objs ...ids.ObjectID) *bloom.BloomFilter {
	b := summary.NewBuilder(0.01)
	b.Reset(len(objs), func(yield func(ids.ObjectID) bool) {
		for _, o := range objs {
			if !yield(o) {
				return
			}
		}
	})
	return b.Snapshot()
}

// checkInvariants: at most max entries, no duplicates, no zero id, no self.
func checkInvariants(t *testing.T, v *View, max int, self ids.PeerID) {
	t.Helper()
	if v.Len() > max {
		t.Fatalf("view holds %d entries, max %d", v.Len(), max)
	}
	if v.Len() != len(v.Entries()) {
		t.Fatalf("Len %d != len(Entries) %d", v.Len(), len(v.Entries()))
	}
	seen := make(map[ids.PeerID]bool)
	for _, e := range v.Entries() {
		if seen[e.ID] {
			t.Fatalf("duplicate entry %s", e.ID.Short())
		}
		seen[e.ID] = true
		if e.ID.IsZero() {
			t.Fatalf("zero id in view")
		}
		if !self.IsZero() && e.ID == self {
			t.Fatalf("self in view")
		}
	}
}

func TestAddContact(t *testing.T) {
	v := NewView(3)
	if !v.AddContact(c(1, 5)) || !v.AddContact(c(2, 0)) || !v.AddContact(c(3, 7)) {
		t.Fatal("adding to a view with room failed")
	}
	if v.AddContact(c(4, 0)) {
		t.Errorf("AddContact to a full view reported true")
	}
	if v.Get(pid(4)) != nil || v.Len() != 3 {
		t.Errorf("full view accepted a new contact")
	}
	// Known contact: lower age kept, in either direction, even when full.
	if !v.AddContact(c(1, 2)) {
		t.Errorf("AddContact of a known contact reported false")
	}
	if got := v.Get(pid(1)).Age; got != 2 {
		t.Errorf("age after lower re-add = %d, want 2", got)
	}
	if !v.AddContact(c(1, 9)) {
		t.Errorf("AddContact of a known contact reported false")
	}
	if got := v.Get(pid(1)).Age; got != 2 {
		t.Errorf("age after higher re-add = %d, want 2", got)
	}
	if v.Len() != 3 {
		t.Errorf("re-adding changed Len to %d", v.Len())
	}
	want := []wire.Contact{c(1, 2), c(2, 0), c(3, 7)}
	if got := v.Contacts(); !slices.Equal(got, want) {
		t.Errorf("Contacts = %v, want %v", got, want)
	}
}

func TestZeroMaxView(t *testing.T) {
	v := NewView(0)
	if v.AddContact(c(1, 0)) || v.Len() != 0 {
		t.Errorf("a view of max 0 took a contact")
	}
	v.Merge(pid(9), []wire.Contact{c(1, 0), c(2, 0)}, nil)
	if v.Len() != 0 {
		t.Errorf("a view of max 0 took %d contacts by Merge", v.Len())
	}
	if _, ok := v.Oldest(); ok {
		t.Errorf("Oldest of an empty view reported ok")
	}
}

func TestRemoveContact(t *testing.T) {
	v := viewOf(5, c(1, 0), c(2, 1), c(3, 2), c(4, 3))
	if v.RemoveContact(pid(9)) {
		t.Errorf("removing an unknown contact reported true")
	}
	if !v.RemoveContact(pid(2)) {
		t.Errorf("removing a known contact reported false")
	}
	if v.RemoveContact(pid(2)) {
		t.Errorf("removing twice reported true")
	}
	want := []wire.Contact{c(1, 0), c(3, 2), c(4, 3)}
	if got := v.Contacts(); !slices.Equal(got, want) {
		t.Errorf("after removal Contacts = %v, want %v", got, want)
	}
	// Room freed: a new contact fits again.
	v.AddContact(c(5, 0))
	v.AddContact(c(6, 0))
	if v.AddContact(c(7, 0)) {
		t.Errorf("view grew past max after removal")
	}
}

func TestIncreaseAgesSaturates(t *testing.T) {
	v := viewOf(3, c(1, 0), c(2, 65534), c(3, 65535))
	v.IncreaseAges()
	want := []wire.Contact{c(1, 1), c(2, 65535), c(3, 65535)}
	if got := v.Contacts(); !slices.Equal(got, want) {
		t.Errorf("after IncreaseAges: %v, want %v", got, want)
	}
	v.IncreaseAges()
	if got := v.Get(pid(2)).Age; got != 65535 {
		t.Errorf("age wrapped: %d", got)
	}
}

func TestOldest(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   []wire.Contact
		want int // 0: none
	}{
		{"empty", nil, 0},
		{"single", []wire.Contact{c(4, 0)}, 4},
		{"highest", []wire.Contact{c(1, 3), c(2, 9), c(3, 4)}, 2},
		{"last", []wire.Contact{c(1, 3), c(2, 4), c(3, 5)}, 3},
		{"tie takes the first in order", []wire.Contact{c(1, 3), c(2, 7), c(3, 7), c(4, 1)}, 2},
		{"all zero", []wire.Contact{c(5, 0), c(6, 0)}, 5},
	} {
		v := viewOf(10, tc.cs...)
		id, ok := v.Oldest()
		if tc.want == 0 {
			if ok {
				t.Errorf("%s: Oldest = %s, true; want none", tc.name, id.Short())
			}
			continue
		}
		if !ok || id != pid(tc.want) {
			t.Errorf("%s: Oldest = %v, %v; want %v", tc.name, id, ok, pid(tc.want))
		}
	}
}

func TestSample(t *testing.T) {
	var cs []wire.Contact
	for i := 1; i <= 10; i++ {
		cs = append(cs, c(i, uint16(i*3)))
	}
	v := viewOf(10, cs...)
	ages := make(map[ids.PeerID]uint16)
	for _, x := range cs {
		ages[x.ID] = x.Age
	}
	rnd := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		n       int
		exclude ids.PeerID
		want    int
	}{
		{0, ids.PeerID{}, 0},
		{1, ids.PeerID{}, 1},
		{5, ids.PeerID{}, 5},
		{10, ids.PeerID{}, 10},
		{50, ids.PeerID{}, 10},
		{5, pid(3), 5},
		{10, pid(3), 9},
		{50, pid(10), 9},
		{50, pid(99), 10}, // excluding an unknown id excludes nothing
	} {
		for trial := range 50 {
			got := v.Sample(rnd, tc.n, tc.exclude)
			if len(got) != tc.want {
				t.Fatalf("Sample(%d, %v) returned %d contacts, want %d", tc.n, tc.exclude.Short(), len(got), tc.want)
			}
			seen := make(map[ids.PeerID]bool)
			for _, x := range got {
				if seen[x.ID] {
					t.Fatalf("trial %d: Sample returned %s twice: %v", trial, x.ID.Short(), got)
				}
				seen[x.ID] = true
				if x.ID == tc.exclude {
					t.Fatalf("Sample returned the excluded contact")
				}
				age, ok := ages[x.ID]
				if !ok || age != x.Age {
					t.Fatalf("Sample returned %v, not a view entry with its age", x)
				}
			}
		}
	}
	// The view itself is unchanged by sampling.
	if got := v.Contacts(); !slices.Equal(got, cs) {
		t.Errorf("Sample modified the view: %v", got)
	}
}

func TestSampleEmptyView(t *testing.T) {
	v := NewView(4)
	if got := v.Sample(rand.New(rand.NewPCG(1, 1)), 3, ids.PeerID{}); len(got) != 0 {
		t.Errorf("Sample of empty view = %v", got)
	}
	v.AddContact(c(1, 0))
	if got := v.Sample(rand.New(rand.NewPCG(1, 1)), 3, pid(1)); len(got) != 0 {
		t.Errorf("Sample excluding the only contact = %v", got)
	}
}

func TestSampleDeterministicAndCovering(t *testing.T) {
	v := NewView(20)
	for i := 1; i <= 20; i++ {
		v.AddContact(c(i, uint16(i)))
	}
	r1 := rand.New(rand.NewPCG(42, 43))
	r2 := rand.New(rand.NewPCG(42, 43))
	hits := make(map[ids.PeerID]int)
	differs := false
	var first []wire.Contact
	for i := range 200 {
		a := v.Sample(r1, 8, pid(5))
		b := v.Sample(r2, 8, pid(5))
		if !slices.Equal(a, b) {
			t.Fatalf("round %d: same seed gave %v and %v", i, a, b)
		}
		if i == 0 {
			first = a
		} else if !slices.Equal(a, first) {
			differs = true
		}
		for _, x := range a {
			hits[x.ID]++
		}
	}
	if !differs {
		t.Errorf("200 samples were all identical: not random")
	}
	for i := 1; i <= 20; i++ {
		if i == 5 {
			if hits[pid(i)] != 0 {
				t.Errorf("excluded contact sampled %d times", hits[pid(i)])
			}
			continue
		}
		// Expected 200*8/19 ≈ 84 each; the seed is fixed, so this is exact.
		if hits[pid(i)] < 30 {
			t.Errorf("contact %d sampled only %d times in 200 rounds", i, hits[pid(i)])
		}
	}
}

type mergeCase struct {
	name     string
	max      int
	view     []wire.Contact
	self     int
	received []wire.Contact
	sent     []wire.Contact
	want     []wire.Contact
}

func TestMerge(t *testing.T) {
	for _, tc := range []mergeCase{
		{
			name:     "fills empty slots, drops the rest",
			max:      3,
			received: []wire.Contact{c(1, 1), c(2, 2), c(3, 3), c(4, 4)},
			want:     []wire.Contact{c(1, 1), c(2, 2), c(3, 3)},
		},
		{
			name:     "full view replaces only sent entries, in order",
			max:      3,
			view:     []wire.Contact{c(1, 5), c(2, 6), c(3, 7)},
			sent:     []wire.Contact{c(1, 5), c(2, 6)},
			received: []wire.Contact{c(10, 0), c(11, 1), c(12, 2)},
			want:     []wire.Contact{c(10, 0), c(11, 1), c(3, 7)},
		},
		{
			name:     "sent entry no longer in view is skipped",
			max:      3,
			view:     []wire.Contact{c(1, 5), c(2, 6), c(3, 7)},
			sent:     []wire.Contact{c(9, 5), c(2, 6)},
			received: []wire.Contact{c(10, 0), c(11, 1)},
			want:     []wire.Contact{c(1, 5), c(10, 0), c(3, 7)},
		},
		{
			name:     "free slots are used before replacing sent entries",
			max:      4,
			view:     []wire.Contact{c(1, 5), c(2, 6), c(3, 7)},
			sent:     []wire.Contact{c(1, 5)},
			received: []wire.Contact{c(10, 0), c(11, 1), c(12, 2)},
			want:     []wire.Contact{c(11, 1), c(2, 6), c(3, 7), c(10, 0)},
		},
		{
			name:     "self and zero ids are ignored",
			max:      4,
			self:     7,
			view:     []wire.Contact{c(1, 5)},
			received: []wire.Contact{c(7, 0), {}, c(10, 3)},
			want:     []wire.Contact{c(1, 5), c(10, 3)},
		},
		{
			name:     "self does not consume a sent slot",
			max:      2,
			self:     7,
			view:     []wire.Contact{c(1, 5), c(2, 5)},
			sent:     []wire.Contact{c(1, 5)},
			received: []wire.Contact{c(7, 0), c(10, 3)},
			want:     []wire.Contact{c(10, 3), c(2, 5)},
		},
		{
			name:     "known contact keeps the lower age and takes no slot",
			max:      3,
			view:     []wire.Contact{c(1, 5), c(2, 1), c(3, 7)},
			sent:     []wire.Contact{c(3, 7)},
			received: []wire.Contact{c(1, 2), c(2, 9), c(10, 4)},
			want:     []wire.Contact{c(1, 2), c(2, 1), c(10, 4)},
		},
		{
			name:     "duplicates within received",
			max:      5,
			received: []wire.Contact{c(1, 5), c(1, 2), c(1, 8)},
			want:     []wire.Contact{c(1, 2)},
		},
		{
			name:     "a received entry we sent is a known contact",
			max:      2,
			view:     []wire.Contact{c(1, 5), c(2, 6)},
			sent:     []wire.Contact{c(1, 5), c(2, 6)},
			received: []wire.Contact{c(2, 1), c(10, 0)},
			want:     []wire.Contact{c(10, 0), c(2, 1)},
		},
		{
			name:     "more received than sent: surplus dropped",
			max:      2,
			view:     []wire.Contact{c(1, 5), c(2, 6)},
			sent:     []wire.Contact{c(2, 6)},
			received: []wire.Contact{c(10, 0), c(11, 0), c(12, 0)},
			want:     []wire.Contact{c(1, 5), c(10, 0)},
		},
		{
			name:     "nothing sent: full view unchanged",
			max:      2,
			view:     []wire.Contact{c(1, 5), c(2, 6)},
			received: []wire.Contact{c(10, 0)},
			want:     []wire.Contact{c(1, 5), c(2, 6)},
		},
		{
			name: "nothing received: unchanged",
			max:  2,
			view: []wire.Contact{c(1, 5), c(2, 6)},
			sent: []wire.Contact{c(1, 5)},
			want: []wire.Contact{c(1, 5), c(2, 6)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := viewOf(tc.max, tc.view...)
			self := ids.PeerID{}
			if tc.self != 0 {
				self = pid(tc.self)
			}
			v.Merge(self, tc.received, tc.sent)
			if got := v.Contacts(); !slices.Equal(got, tc.want) {
				t.Errorf("after Merge: %v\nwant %v", fmtContacts(got), fmtContacts(tc.want))
			}
			checkInvariants(t, v, tc.max, self)
		})
	}
}

func fmtContacts(cs []wire.Contact) string {
	s := "["
	for i, x := range cs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%d", binary.BigEndian.Uint64(x.ID[8:]), x.Age)
	}
	return s + "]"
}

func TestMergeReplacedEntryLosesSummary(t *testing.T) {
	v := viewOf(2, c(1, 5), c(2, 6))
	v.SetSummary(pid(1), filterOf(100))
	v.Get(pid(1)).SentVersion = 4
	v.Merge(pid(9), []wire.Contact{c(10, 0)}, []wire.Contact{c(1, 5)})
	e := v.Get(pid(10))
	if e == nil {
		t.Fatal("received contact not merged")
	}
	if e.Summary != nil || e.SentVersion != 0 {
		t.Errorf("new contact inherited the replaced one's summary state: %+v", e)
	}
	if got := v.MayHold(100, nil); len(got) != 0 {
		t.Errorf("MayHold after replacement = %v", got)
	}
}

// Random shuffles never break the view's invariants, and only sent entries
// are ever displaced.
func TestMergeRandomInvariants(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	for _, max := range []int{1, 2, 5, 20} {
		self := pid(1)
		v := NewView(max)
		for round := range 2000 {
			before := v.Contacts()
			sent := v.Sample(rnd, rnd.IntN(max+1), ids.PeerID{})
			var received []wire.Contact
			for range rnd.IntN(10) {
				received = append(received, wire.Contact{ID: pid(rnd.IntN(40)), Age: uint16(rnd.IntN(20))})
			}
			if rnd.IntN(4) == 0 && len(before) > 0 {
				v.RemoveContact(before[rnd.IntN(len(before))].ID)
				before = v.Contacts()
			}
			v.Merge(self, received, sent)
			checkInvariants(t, v, max, self)
			sentSet := make(map[ids.PeerID]bool)
			for _, s := range sent {
				sentSet[s.ID] = true
			}
			recv := make(map[ids.PeerID]uint16)
			for _, r := range received {
				if a, ok := recv[r.ID]; !ok || r.Age < a {
					recv[r.ID] = r.Age
				}
			}
			for _, b := range before {
				e := v.Get(b.ID)
				if e == nil {
					if !sentSet[b.ID] {
						t.Fatalf("max %d round %d: unsent entry %v displaced", max, round, b)
					}
					continue
				}
				want := b.Age
				if a, ok := recv[b.ID]; ok && a < want {
					want = a
				}
				if e.Age != want {
					t.Fatalf("max %d round %d: entry %v has age %d, want %d", max, round, b, e.Age, want)
				}
			}
			for _, e := range v.Entries() {
				if _, ok := recv[e.ID]; !ok && !slices.ContainsFunc(before, func(b wire.Contact) bool { return b.ID == e.ID }) {
					t.Fatalf("entry %v came from nowhere", e.ID)
				}
			}
			if rnd.IntN(3) == 0 {
				v.IncreaseAges()
			}
		}
	}
}

func TestSetSummaryAndMayHold(t *testing.T) {
	v := viewOf(5, c(1, 0), c(2, 0), c(3, 0), c(4, 0))
	v.SetSummary(pid(1), filterOf(100, 200))
	v.SetSummary(pid(3), filterOf(200, 300))
	v.SetSummary(pid(4), filterOf(100))
	v.SetSummary(pid(9), filterOf(100)) // unknown contact: ignored
	if v.Get(pid(9)) != nil {
		t.Fatalf("SetSummary added an unknown contact")
	}
	old := v.Get(pid(4)).Summary
	v.SetSummary(pid(4), nil) // nil: ignored
	if v.Get(pid(4)).Summary != old {
		t.Errorf("SetSummary(nil) replaced a summary")
	}
	for _, tc := range []struct {
		obj  ids.ObjectID
		skip func(ids.PeerID) bool
		want []ids.PeerID
	}{
		{100, nil, []ids.PeerID{pid(1), pid(4)}},
		{200, nil, []ids.PeerID{pid(1), pid(3)}},
		{300, nil, []ids.PeerID{pid(3)}},
		{100, func(p ids.PeerID) bool { return p == pid(1) }, []ids.PeerID{pid(4)}},
		{200, func(p ids.PeerID) bool { return true }, nil},
	} {
		got := v.MayHold(tc.obj, tc.skip)
		if !slices.Equal(got, tc.want) {
			t.Errorf("MayHold(%d) = %v, want %v", tc.obj, got, tc.want)
		}
	}
	// A contact without a summary (2) is never a candidate.
	for obj := ids.ObjectID(0); obj < 1000; obj++ {
		if slices.Contains(v.MayHold(obj, nil), pid(2)) {
			t.Fatalf("contact without a summary offered for %d", obj)
		}
	}
	// Replacing a summary takes effect.
	v.SetSummary(pid(4), filterOf(400))
	if got := v.MayHold(400, nil); !slices.Equal(got, []ids.PeerID{pid(4)}) {
		t.Errorf("after new summary MayHold(400) = %v", got)
	}
	// Removing a contact removes it from candidates.
	v.RemoveContact(pid(1))
	if got := v.MayHold(200, nil); !slices.Equal(got, []ids.PeerID{pid(3)}) {
		t.Errorf("after removal MayHold(200) = %v", got)
	}
}

// No false negatives: every object in a contact's summary is reported.
func TestMayHoldNoFalseNegatives(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	v := NewView(20)
	held := make(map[ids.PeerID][]ids.ObjectID)
	for i := 1; i <= 20; i++ {
		v.AddContact(c(i, 0))
		var objs []ids.ObjectID
		for range rnd.IntN(300) {
			objs = append(objs, ids.ObjectID(rnd.Uint64()))
		}
		held[pid(i)] = objs
		v.SetSummary(pid(i), filterOf(objs...))
	}
	for id, objs := range held {
		for _, o := range objs {
			if !slices.Contains(v.MayHold(o, nil), id) {
				t.Fatalf("MayHold(%x) misses %s", o, id.Short())
			}
		}
	}
}

// A contact we sent that the partner also sends back is a known contact: it
// must keep its lower age and its summary, and must not cost us a second
// sent entry. (In CYCLON entries already in the cache are discarded before
// any replacement.) Either sent entry may make room for the new contact.
func TestMergeSentEntryAlsoReceived(t *testing.T) {
	v := viewOf(2, c(1, 5), c(2, 6))
	f := filterOf(100)
	v.SetSummary(pid(1), f)
	v.Merge(pid(9), []wire.Contact{c(10, 0), c(1, 9)}, []wire.Contact{c(1, 5), c(2, 6)})
	checkInvariants(t, v, 2, pid(9))
	if v.Get(pid(10)) == nil {
		t.Fatalf("new contact not merged: %v", fmtContacts(v.Contacts()))
	}
	if e := v.Get(pid(1)); e != nil {
		if e.Age != 5 {
			t.Errorf("known contact 1 came back with age %d, want its lower age 5 (view %v)", e.Age, fmtContacts(v.Contacts()))
		}
		if e.Summary != f {
			t.Errorf("known contact 1 lost its content summary")
		}
		if v.Get(pid(2)) != nil {
			t.Errorf("impossible: three contacts in a view of 2")
		}
	} else if v.Get(pid(2)) == nil {
		t.Errorf("one new contact displaced two sent entries: %v", fmtContacts(v.Contacts()))
	}
}

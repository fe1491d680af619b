package dring

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

const maxKey = ids.Key(math.MaxUint64)

func pid(n int) ids.PeerID {
	var p ids.PeerID
	binary.BigEndian.PutUint64(p[8:], uint64(n))
	return p
}

func mem(key uint64, n int) ids.Member { return ids.Member{Key: ids.Key(key), ID: pid(n)} }

// refBetween is the obvious definition of x in (a, b] on the ring.
func refBetween(x, a, b ids.Key) bool {
	switch {
	case a == b:
		return true
	case a < b:
		return a < x && x <= b
	default: // wraps past 0
		return x > a || x <= b
	}
}

func refStrictly(x, a, b ids.Key) bool {
	switch {
	case a == b:
		return x != a
	case a < b:
		return a < x && x < b
	default:
		return x > a || x < b
	}
}

func TestBetweenAndStrictly(t *testing.T) {
	for _, tc := range []struct {
		x, a, b           ids.Key
		between, strictly bool
	}{
		// a == b: whole ring for Between, all but a for Strictly.
		{5, 5, 5, true, false},
		{6, 5, 5, true, true},
		{0, 0, 0, true, false},
		{maxKey, 0, 0, true, true},
		// endpoints
		{10, 10, 20, false, false},
		{20, 10, 20, true, false},
		{15, 10, 20, true, true},
		{11, 10, 20, true, true},
		{19, 10, 20, true, true},
		{9, 10, 20, false, false},
		{21, 10, 20, false, false},
		// wrap around zero
		{0, maxKey - 5, 5, true, true},
		{maxKey, maxKey - 5, 5, true, true},
		{5, maxKey - 5, 5, true, false},
		{maxKey - 5, maxKey - 5, 5, false, false},
		{maxKey - 4, maxKey - 5, 5, true, true},
		{6, maxKey - 5, 5, false, false},
		{maxKey - 6, maxKey - 5, 5, false, false},
		{1 << 63, maxKey - 5, 5, false, false},
		// interval ending at the top or starting at 0
		{maxKey, 0, maxKey, true, false},
		{0, 0, maxKey, false, false},
		{1, 0, maxKey, true, true},
		{0, maxKey, 0, true, false},
		{maxKey, maxKey, 0, false, false},
		{5, maxKey, 0, false, false},
		// the long way round
		{0, 20, 10, true, true},
		{15, 20, 10, false, false},
		{10, 20, 10, true, false},
		{20, 20, 10, false, false},
		{21, 20, 10, true, true},
		// neighbours: (a, a+1] holds only a+1
		{6, 5, 6, true, false},
		{7, 5, 6, false, false},
		{0, maxKey, 0, true, false},
	} {
		if got := Between(tc.x, tc.a, tc.b); got != tc.between {
			t.Errorf("Between(%x, %x, %x) = %v, want %v", tc.x, tc.a, tc.b, got, tc.between)
		}
		if got := Strictly(tc.x, tc.a, tc.b); got != tc.strictly {
			t.Errorf("Strictly(%x, %x, %x) = %v, want %v", tc.x, tc.a, tc.b, got, tc.strictly)
		}
	}
}

func TestBetweenMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	edges := []ids.Key{0, 1, 2, 1<<63 - 1, 1 << 63, maxKey - 1, maxKey}
	pick := func() ids.Key {
		switch rnd.IntN(3) {
		case 0:
			return edges[rnd.IntN(len(edges))]
		case 1:
			return ids.Key(rnd.Uint64N(8)) // small keys collide often
		}
		return ids.Key(rnd.Uint64())
	}
	for range 200000 {
		x, a, b := pick(), pick(), pick()
		if rnd.IntN(5) == 0 {
			x = a
		} else if rnd.IntN(5) == 0 {
			x = b
		}
		if got, want := Between(x, a, b), refBetween(x, a, b); got != want {
			t.Fatalf("Between(%x, %x, %x) = %v, want %v", x, a, b, got, want)
		}
		if got, want := Strictly(x, a, b), refStrictly(x, a, b); got != want {
			t.Fatalf("Strictly(%x, %x, %x) = %v, want %v", x, a, b, got, want)
		}
		// (a, b] and (b, a] partition the ring when a != b.
		if a != b && Between(x, a, b) == Between(x, b, a) {
			t.Fatalf("(%x,%x] and (%x,%x] do not partition at %x", a, b, b, a, x)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b ids.Key
		want uint64
	}{
		{0, 0, 0}, {5, 10, 5}, {10, 5, math.MaxUint64 - 4}, {maxKey, 0, 1}, {0, maxKey, math.MaxUint64},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%x, %x) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNewAlone(t *testing.T) {
	self := mem(100, 1)
	s := New(self, 4)
	if s.Successor() != self || !s.Pred.IsZero() {
		t.Errorf("new state: succ %v pred %v", s.Successor(), s.Pred)
	}
	for _, key := range []ids.Key{0, 99, 100, 101, maxKey} {
		if !s.Responsible(key) {
			t.Errorf("alone, not responsible for %x", key)
		}
		if m, final := s.NextHop(key); m != self || !final {
			t.Errorf("alone, NextHop(%x) = %v, %v", key, m, final)
		}
	}
	if len(s.Members()) != 0 {
		t.Errorf("Members of a lone member = %v", s.Members())
	}
	s.Succs = nil
	if s.Successor() != self {
		t.Errorf("empty successor list: Successor = %v", s.Successor())
	}
}

func TestFingerStart(t *testing.T) {
	s := New(mem(uint64(maxKey)-2, 1), 4)
	for _, tc := range []struct {
		i    int
		want ids.Key
	}{
		{0, maxKey - 1}, {1, maxKey}, {2, 1}, {3, 5}, {63, 1<<63 - 3},
	} {
		if got := s.FingerStart(tc.i); got != tc.want {
			t.Errorf("FingerStart(%d) = %x, want %x", tc.i, got, tc.want)
		}
	}
}

func TestResponsible(t *testing.T) {
	self := mem(100, 1)
	for _, tc := range []struct {
		name string
		pred ids.Member
		succ ids.Member
		key  ids.Key
		want bool
	}{
		{"own key, nothing known", ids.Member{}, mem(200, 2), 100, true},
		{"no pred, not alone", ids.Member{}, mem(200, 2), 50, false},
		{"no pred, not alone, key after", ids.Member{}, mem(200, 2), 150, false},
		{"in (pred, self]", mem(50, 3), mem(200, 2), 70, true},
		{"self key", mem(50, 3), mem(200, 2), 100, true},
		{"pred key", mem(50, 3), mem(200, 2), 50, false},
		{"after self", mem(50, 3), mem(200, 2), 101, false},
		{"wrapping pred, 0", mem(uint64(maxKey)-10, 3), mem(200, 2), 0, true},
		{"wrapping pred, max", mem(uint64(maxKey)-10, 3), mem(200, 2), maxKey, true},
		{"wrapping pred, before", mem(uint64(maxKey)-10, 3), mem(200, 2), maxKey - 10, false},
		{"pred is self: whole ring", self, self, 5, true},
	} {
		s := New(self, 4)
		s.Pred = tc.pred
		s.SetSuccessors(tc.succ, nil)
		if got := s.Responsible(tc.key); got != tc.want {
			t.Errorf("%s: Responsible(%x) = %v, want %v", tc.name, tc.key, got, tc.want)
		}
	}
}

func TestSetSuccessors(t *testing.T) {
	self := mem(100, 1)
	a, b, c, d, e := mem(200, 2), mem(300, 3), mem(400, 4), mem(500, 5), mem(600, 6)
	for _, tc := range []struct {
		name string
		max  int
		succ ids.Member
		rest []ids.Member
		want []ids.Member
	}{
		{"plain", 4, a, []ids.Member{b, c}, []ids.Member{a, b, c}},
		{"bounded", 3, a, []ids.Member{b, c, d, e}, []ids.Member{a, b, c}},
		{"bound 1", 1, a, []ids.Member{b, c}, []ids.Member{a}},
		{"duplicates dropped", 4, a, []ids.Member{a, b, b, a, c}, []ids.Member{a, b, c}},
		{"self and zero skipped in rest", 4, a, []ids.Member{self, {}, b, self}, []ids.Member{a, b}},
		{"dedup before bounding", 3, a, []ids.Member{a, self, b, b, {}, c, d}, []ids.Member{a, b, c}},
		{"succ self kept first", 4, self, []ids.Member{self, a}, []ids.Member{self, a}},
		{"nil rest", 4, a, nil, []ids.Member{a}},
		{"same key other id is distinct", 4, a, []ids.Member{mem(200, 9)}, []ids.Member{a, mem(200, 9)}},
	} {
		s := New(self, tc.max)
		s.SetSuccessors(tc.succ, tc.rest)
		if !slices.Equal(s.Succs, tc.want) {
			t.Errorf("%s: Succs = %v, want %v", tc.name, s.Succs, tc.want)
		}
		if s.Successor() != tc.succ {
			t.Errorf("%s: Successor = %v", tc.name, s.Successor())
		}
	}
}

// SetSuccessors must not alias its argument: later changes to the state
// leave the caller's slice alone and vice versa.
func TestSetSuccessorsCopies(t *testing.T) {
	s := New(mem(100, 1), 4)
	rest := []ids.Member{mem(300, 3), mem(400, 4)}
	s.SetSuccessors(mem(200, 2), rest)
	rest[0] = mem(999, 9)
	if s.Succs[1] != mem(300, 3) {
		t.Errorf("Succs aliases the caller's slice")
	}
	// Feeding the state its own list (as stabilization does) is safe.
	s.SetSuccessors(mem(150, 5), s.Succs)
	if want := []ids.Member{mem(150, 5), mem(200, 2), mem(300, 3), mem(400, 4)}; !slices.Equal(s.Succs, want) {
		t.Errorf("SetSuccessors(own list) = %v, want %v", s.Succs, want)
	}
}

func TestRemove(t *testing.T) {
	self := mem(100, 1)
	a, b, c := mem(200, 2), mem(300, 3), mem(400, 4)
	s := New(self, 4)
	s.SetSuccessors(a, []ids.Member{b, c})
	s.Pred = mem(50, 5)
	s.Finger[0] = a
	s.Finger[1] = a
	s.Finger[10] = b
	s.Finger[63] = mem(50, 5)

	s.Remove(pid(9)) // unknown: nothing changes
	if len(s.Succs) != 3 || s.Pred.IsZero() {
		t.Fatalf("removing an unknown id changed the state")
	}

	s.Remove(a.ID)
	if want := []ids.Member{b, c}; !slices.Equal(s.Succs, want) {
		t.Errorf("Succs after Remove(a) = %v, want %v", s.Succs, want)
	}
	if !s.Finger[0].IsZero() || !s.Finger[1].IsZero() || s.Finger[10] != b {
		t.Errorf("fingers after Remove(a): %v %v %v", s.Finger[0], s.Finger[1], s.Finger[10])
	}
	if s.Successor() != b {
		t.Errorf("Successor = %v, want %v", s.Successor(), b)
	}

	s.Remove(pid(5))
	if !s.Pred.IsZero() || !s.Finger[63].IsZero() {
		t.Errorf("predecessor or finger not cleared: %v %v", s.Pred, s.Finger[63])
	}

	s.Remove(b.ID)
	s.Remove(c.ID)
	if !slices.Equal(s.Succs, []ids.Member{self}) {
		t.Errorf("Succs after removing all = %v, want [self]", s.Succs)
	}
	if s.Successor() != self {
		t.Errorf("Successor after removing all = %v", s.Successor())
	}
	if len(s.Members()) != 0 {
		t.Errorf("Members after removing all = %v", s.Members())
	}
	// Alone again: responsible for everything.
	if !s.Responsible(12345) {
		t.Errorf("not responsible after losing everyone")
	}
}

// Remove matches by peer id: a peer holding several positions loses all.
func TestRemoveByPeerID(t *testing.T) {
	s := New(mem(100, 1), 4)
	s.SetSuccessors(mem(200, 2), []ids.Member{mem(300, 2), mem(400, 3)})
	s.Finger[5] = mem(300, 2)
	s.Remove(pid(2))
	if !slices.Equal(s.Succs, []ids.Member{mem(400, 3)}) || !s.Finger[5].IsZero() {
		t.Errorf("after Remove: succs %v finger %v", s.Succs, s.Finger[5])
	}
}

func TestMembers(t *testing.T) {
	self := mem(100, 1)
	s := New(self, 4)
	s.Pred = mem(50, 5)
	s.SetSuccessors(mem(200, 2), []ids.Member{mem(300, 3)})
	s.Finger[0] = mem(200, 2)
	s.Finger[1] = self
	s.Finger[7] = mem(900, 9)
	s.Finger[8] = mem(50, 5)
	want := []ids.Member{mem(50, 5), mem(200, 2), mem(300, 3), mem(900, 9)}
	if got := s.Members(); !slices.Equal(got, want) {
		t.Errorf("Members = %v, want %v", got, want)
	}
}

// ring is a set of members with perfect Chord state.
type ring struct {
	sorted []ids.Member
	states map[ids.PeerID]*State
}

// successorOf is the brute-force successor of key among the members.
func (r *ring) successorOf(key ids.Key) ids.Member {
	i, _ := slices.BinarySearchFunc(r.sorted, key, func(m ids.Member, k ids.Key) int {
		switch {
		case m.Key < k:
			return -1
		case m.Key > k:
			return 1
		}
		return 0
	})
	if i == len(r.sorted) {
		return r.sorted[0]
	}
	return r.sorted[i]
}

func buildRing(rnd *rand.Rand, n, succs int, fingers bool) *ring {
	keys := make(map[ids.Key]bool)
	r := &ring{states: make(map[ids.PeerID]*State)}
	for len(r.sorted) < n {
		k := ids.Key(rnd.Uint64())
		if keys[k] {
			continue
		}
		keys[k] = true
		r.sorted = append(r.sorted, ids.Member{Key: k, ID: pid(len(r.sorted) + 1)})
	}
	slices.SortFunc(r.sorted, func(a, b ids.Member) int {
		if a.Key < b.Key {
			return -1
		}
		return 1
	})
	for i, m := range r.sorted {
		s := New(m, succs)
		s.Pred = r.sorted[(i+n-1)%n]
		var list []ids.Member
		for j := 1; j <= succs && j < n; j++ {
			list = append(list, r.sorted[(i+j)%n])
		}
		if len(list) > 0 {
			s.SetSuccessors(list[0], list[1:])
		}
		if fingers {
			for f := range Bits {
				s.Finger[f] = r.successorOf(s.FingerStart(f))
			}
		}
		r.states[m.ID] = s
	}
	return r
}

// lookup routes key greedily from start; it returns the member found and
// the number of network hops (messages to another member).
func (r *ring) lookup(t *testing.T, start ids.Member, key ids.Key) (ids.Member, int) {
	t.Helper()
	cur := r.states[start.ID]
	hops := 0
	for range 10 * len(r.sorted) {
		next, final := cur.NextHop(key)
		if next != cur.Self {
			hops++
		}
		if final {
			return next, hops
		}
		if next == cur.Self {
			t.Fatalf("NextHop(%x) from %v returned self without final", key, cur.Self)
		}
		// Progress: every non-final hop moves strictly closer to key.
		if !Strictly(next.Key, cur.Self.Key, key) {
			t.Fatalf("NextHop(%x) from %v went to %v, not in (self, key)", key, cur.Self, next)
		}
		cur = r.states[next.ID]
		if cur == nil {
			t.Fatalf("routed to unknown member %v", next)
		}
	}
	t.Fatalf("lookup for %x from %v did not terminate", key, start)
	return ids.Member{}, 0
}

func TestNextHopRoutesToSuccessorInLogHops(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 200} {
		rnd := rand.New(rand.NewPCG(uint64(n), 77))
		r := buildRing(rnd, n, 4, true)
		bound := int(2*math.Log2(float64(n)) + 2)
		maxHops, total, count := 0, 0, 0
		check := func(start ids.Member, key ids.Key) {
			got, hops := r.lookup(t, start, key)
			if want := r.successorOf(key); got != want {
				t.Fatalf("n=%d: lookup(%x) from %v = %v, want %v", n, key, start, got, want)
			}
			if hops > bound {
				t.Fatalf("n=%d: lookup(%x) from %v took %d hops, bound %d", n, key, start, hops, bound)
			}
			maxHops = max(maxHops, hops)
			total += hops
			count++
		}
		for range 3000 {
			check(r.sorted[rnd.IntN(n)], ids.Key(rnd.Uint64()))
		}
		// Keys on and next to members, from every member.
		for _, start := range r.sorted {
			m := r.sorted[rnd.IntN(n)]
			for _, key := range []ids.Key{m.Key, m.Key + 1, m.Key - 1, 0, maxKey} {
				check(start, key)
			}
		}
		if n == 200 {
			avg := float64(total) / float64(count)
			// Chord's average is about log2(N)/2 ≈ 3.8 hops.
			if avg > math.Log2(float64(n)) {
				t.Errorf("n=%d: average %.2f hops, more than log2 N", n, avg)
			}
			t.Logf("n=%d: %d lookups, average %.2f hops, max %d (bound %d)", n, count, float64(total)/float64(count), maxHops, bound)
		}
	}
}

// Without fingers, the successor lists alone still route correctly.
func TestNextHopSuccessorsOnly(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 8))
	const n = 60
	r := buildRing(rnd, n, 4, false)
	for range 500 {
		start, key := r.sorted[rnd.IntN(n)], ids.Key(rnd.Uint64())
		got, hops := r.lookup(t, start, key)
		if want := r.successorOf(key); got != want {
			t.Fatalf("lookup(%x) = %v, want %v", key, got, want)
		}
		if hops > n/3+2 { // each hop skips up to 3 members
			t.Fatalf("lookup(%x) took %d hops", key, hops)
		}
	}
}

// After failures, with every survivor having called Remove for each failed
// member, lookups still reach the successor among the survivors.
func TestNextHopAfterFailures(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 9))
	const n = 200
	r := buildRing(rnd, n, 4, true)
	// Fail every 5th member (never 4 in a row, so successor lists survive)
	// and a few more non-adjacent ones.
	failed := make(map[ids.PeerID]bool)
	for i := 0; i < n; i += 5 {
		failed[r.sorted[i].ID] = true
	}
	for i := 2; i < n; i += 25 {
		failed[r.sorted[i].ID] = true
	}
	var alive []ids.Member
	for _, m := range r.sorted {
		if failed[m.ID] {
			delete(r.states, m.ID)
			continue
		}
		alive = append(alive, m)
	}
	for _, s := range r.states {
		for id := range failed {
			s.Remove(id)
		}
		for _, m := range s.Members() {
			if failed[m.ID] {
				t.Fatalf("%v still knows failed %v", s.Self, m)
			}
		}
	}
	survivors := &ring{sorted: alive, states: r.states}
	for range 3000 {
		start, key := alive[rnd.IntN(len(alive))], ids.Key(rnd.Uint64())
		got, _ := survivors.lookup(t, start, key)
		if want := survivors.successorOf(key); got != want {
			t.Fatalf("after failures lookup(%x) from %v = %v, want %v", key, start, got, want)
		}
	}
}

// RemoveMember forgets one position only: the same peer at another key, or
// another peer at the same key, stays.
func TestRemoveMember(t *testing.T) {
	self := mem(100, 1)
	a, a2, b := mem(200, 2), mem(300, 2), mem(400, 3)
	s := New(self, 4)
	s.SetSuccessors(a, []ids.Member{a2, b})
	s.Pred = mem(50, 5)
	s.Finger[0] = a
	s.Finger[1] = a2
	s.Finger[2] = mem(200, 7) // same key, other peer
	s.Finger[3] = mem(50, 5)

	s.RemoveMember(mem(999, 9)) // unknown
	if len(s.Succs) != 3 || s.Pred.IsZero() {
		t.Fatalf("removing an unknown member changed the state")
	}
	s.RemoveMember(a)
	if want := []ids.Member{a2, b}; !slices.Equal(s.Succs, want) {
		t.Errorf("Succs = %v, want %v", s.Succs, want)
	}
	if !s.Finger[0].IsZero() || s.Finger[1] != a2 || s.Finger[2] != mem(200, 7) {
		t.Errorf("fingers: %v %v %v", s.Finger[0], s.Finger[1], s.Finger[2])
	}
	s.RemoveMember(mem(50, 9)) // pred key, other peer: kept
	s.RemoveMember(mem(60, 5)) // pred peer, other key: kept
	if s.Pred != mem(50, 5) || s.Finger[3] != mem(50, 5) {
		t.Errorf("pred or finger cleared by a different member")
	}
	s.RemoveMember(mem(50, 5))
	if !s.Pred.IsZero() || !s.Finger[3].IsZero() {
		t.Errorf("pred or finger not cleared")
	}
	s.RemoveMember(a2)
	s.RemoveMember(b)
	if !slices.Equal(s.Succs, []ids.Member{self}) {
		t.Errorf("Succs after removing all = %v, want [self]", s.Succs)
	}
}

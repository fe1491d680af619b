package directory

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

func pid(n int) ids.PeerID {
	var p ids.PeerID
	binary.BigEndian.PutUint64(p[8:], uint64(n))
	return p
}

func objs(os ...ids.ObjectID) []ids.ObjectID { return os }

// holdersOf returns the sorted holders of obj, found through Pick's view of
// the index: Peer(id).Objs for every known peer.
func holdersOf(x *Index, obj ids.ObjectID) []ids.PeerID {
	var out []ids.PeerID
	for _, id := range x.PeerIDs() {
		if _, ok := x.Peer(id).Objs[obj]; ok {
			out = append(out, id)
		}
	}
	return out
}

func peerObjs(x *Index, id ids.PeerID) []ids.ObjectID {
	p := x.Peer(id)
	if p == nil {
		return nil
	}
	var out []ids.ObjectID
	for o := range p.Objs {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// checkIndex verifies the index against a model: peer -> objects.
func checkIndex(t *testing.T, x *Index, model map[ids.PeerID]map[ids.ObjectID]bool) {
	t.Helper()
	if x.NumPeers() != len(model) {
		t.Fatalf("NumPeers = %d, want %d", x.NumPeers(), len(model))
	}
	all := make(map[ids.ObjectID][]ids.PeerID)
	for id, os := range model {
		p := x.Peer(id)
		if p == nil {
			t.Fatalf("peer %s missing", id.Short())
		}
		if len(p.Objs) != len(os) {
			t.Fatalf("peer %s holds %d objects, want %d", id.Short(), len(p.Objs), len(os))
		}
		for o := range os {
			if _, ok := p.Objs[o]; !ok {
				t.Fatalf("peer %s misses %d", id.Short(), o)
			}
			all[o] = append(all[o], id)
		}
	}
	if x.NumObjects() != len(all) {
		t.Fatalf("NumObjects = %d, want %d", x.NumObjects(), len(all))
	}
	s := x.Summary()
	for o, hs := range all {
		if !summary.Test(s, o) {
			t.Fatalf("summary misses indexed object %d", o)
		}
		// Pick can reach exactly the holders (checked without changing loads).
		got := slices.Clone(x.holders[o])
		slices.SortFunc(got, comparePeer)
		slices.SortFunc(hs, comparePeer)
		if !slices.Equal(got, hs) {
			t.Fatalf("holders of %d = %v, want %v", o, got, hs)
		}
	}
	for o := range x.holders {
		if _, ok := all[o]; !ok {
			t.Fatalf("index still lists %d, held by nobody", o)
		}
	}
}

func TestApply(t *testing.T) {
	a, b := pid(1), pid(2)
	type push struct {
		id             ids.PeerID
		full           bool
		added, removed []ids.ObjectID
	}
	for _, tc := range []struct {
		name    string
		pushes  []push
		want    map[ids.PeerID][]ids.ObjectID
		changes int
	}{
		{
			name:    "incremental adds",
			pushes:  []push{{a, false, objs(1, 2), nil}, {b, false, objs(2, 3), nil}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {1, 2}, b: {2, 3}},
			changes: 3,
		},
		{
			name:    "incremental remove",
			pushes:  []push{{a, false, objs(1, 2), nil}, {b, false, objs(2), nil}, {a, false, nil, objs(1, 2)}},
			want:    map[ids.PeerID][]ids.ObjectID{a: nil, b: {2}},
			changes: 3, // 1, 2 appear; 1 disappears; 2 still held by b
		},
		{
			name:    "removing what is not held is a no-op",
			pushes:  []push{{a, false, objs(1), nil}, {a, false, nil, objs(5, 6)}, {b, false, nil, objs(1)}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {1}, b: nil},
			changes: 1,
		},
		{
			name:    "full push replaces",
			pushes:  []push{{a, false, objs(1, 2, 3), nil}, {b, false, objs(1), nil}, {a, true, objs(2, 4), nil}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {2, 4}, b: {1}},
			changes: 5, // 1,2,3 appear; 3 disappears; 4 appears (1 still held by b)
		},
		{
			name:    "empty full push clears the peer but keeps it",
			pushes:  []push{{a, false, objs(1, 2), nil}, {a, true, nil, nil}},
			want:    map[ids.PeerID][]ids.ObjectID{a: nil},
			changes: 4,
		},
		{
			name:    "first full push of a peer",
			pushes:  []push{{a, true, objs(7, 8), nil}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {7, 8}},
			changes: 2,
		},
		{
			name:    "duplicate adds count once",
			pushes:  []push{{a, false, objs(1, 1, 1), nil}, {a, false, objs(1), nil}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {1}},
			changes: 1,
		},
		{
			name:    "removed then added in one push",
			pushes:  []push{{a, false, objs(1), nil}, {a, false, objs(1), objs(1)}},
			want:    map[ids.PeerID][]ids.ObjectID{a: {1}},
			changes: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex(0.01)
			for i, p := range tc.pushes {
				x.Apply(p.id, time.Duration(i+1)*time.Second, p.full, p.added, p.removed)
				if got := x.Peer(p.id).LastSeen; got != time.Duration(i+1)*time.Second {
					t.Errorf("push %d: LastSeen = %v", i, got)
				}
			}
			model := make(map[ids.PeerID]map[ids.ObjectID]bool)
			for id, os := range tc.want {
				model[id] = make(map[ids.ObjectID]bool)
				for _, o := range os {
					model[id][o] = true
				}
				if got := peerObjs(x, id); !slices.Equal(got, os) {
					t.Errorf("peer %s holds %v, want %v", id.Short(), got, os)
				}
			}
			checkIndex(t, x, model)
			if x.Changes() != tc.changes {
				t.Errorf("Changes = %d, want %d", x.Changes(), tc.changes)
			}
			x.TakeChanges()
			if x.Changes() != 0 {
				t.Errorf("Changes after TakeChanges = %d", x.Changes())
			}
		})
	}
}

func TestAddHolderAndTouch(t *testing.T) {
	x := NewIndex(0.01)
	x.AddHolder(5, pid(1), time.Second)
	if p := x.Peer(pid(1)); p == nil || p.LastSeen != time.Second {
		t.Fatalf("AddHolder did not create the peer: %+v", p)
	}
	x.AddHolder(5, pid(2), 2*time.Second)
	x.AddHolder(5, pid(2), 3*time.Second)
	if x.Changes() != 1 || x.NumObjects() != 1 {
		t.Errorf("Changes %d, NumObjects %d; want 1, 1", x.Changes(), x.NumObjects())
	}
	if got := holdersOf(x, 5); !slices.Equal(got, []ids.PeerID{pid(1), pid(2)}) {
		t.Errorf("holders = %v", got)
	}
	// AddHolder for a known peer is not a keepalive.
	if got := x.Peer(pid(2)).LastSeen; got != 2*time.Second {
		t.Errorf("LastSeen = %v, want 2s", got)
	}
	// Touch keeps objects and load.
	x.Peer(pid(1)).Load = 7
	p := x.Touch(pid(1), 10*time.Second)
	if p != x.Peer(pid(1)) || p.LastSeen != 10*time.Second || p.Load != 7 || len(p.Objs) != 1 {
		t.Errorf("Touch = %+v", p)
	}
	// Touch of a new peer creates it empty.
	q := x.Touch(pid(3), 11*time.Second)
	if q == nil || q.Objs == nil || len(q.Objs) != 0 || x.NumPeers() != 3 {
		t.Errorf("Touch new = %+v, peers %d", q, x.NumPeers())
	}
	if x.NumObjects() != 1 {
		t.Errorf("Touch changed objects")
	}
}

func TestRemovePeer(t *testing.T) {
	x := NewIndex(0.01)
	x.Apply(pid(1), 0, false, objs(1, 2, 3), nil)
	x.Apply(pid(2), 0, false, objs(3, 4), nil)
	x.TakeChanges()
	x.RemovePeer(pid(9)) // unknown
	if x.NumPeers() != 2 || x.Changes() != 0 {
		t.Fatalf("removing an unknown peer changed the index")
	}
	x.RemovePeer(pid(1))
	if x.Peer(pid(1)) != nil || x.NumPeers() != 1 {
		t.Errorf("peer not removed")
	}
	if x.Changes() != 2 {
		t.Errorf("Changes = %d, want 2 (objects 1 and 2 disappeared)", x.Changes())
	}
	checkIndex(t, x, map[ids.PeerID]map[ids.ObjectID]bool{pid(2): {3: true, 4: true}})
	if _, ok := x.Pick(1, ids.PeerID{}, 0, rand.New(rand.NewPCG(1, 1))); ok {
		t.Errorf("Pick found a holder of an object only the removed peer held")
	}
	if id, ok := x.Pick(3, ids.PeerID{}, 0, rand.New(rand.NewPCG(1, 1))); !ok || id != pid(2) {
		t.Errorf("Pick(3) = %v, %v", id, ok)
	}
	x.RemovePeer(pid(2))
	if x.NumPeers() != 0 || x.NumObjects() != 0 {
		t.Errorf("index not empty: %d peers %d objects", x.NumPeers(), x.NumObjects())
	}
}

func TestExpire(t *testing.T) {
	x := NewIndex(0.01)
	for i := 1; i <= 6; i++ {
		x.Apply(pid(i), time.Duration(i)*time.Second, false, objs(ids.ObjectID(i), 100), nil)
	}
	if got := x.Expire(time.Second); len(got) != 0 {
		t.Errorf("Expire(1s) = %v; LastSeen == cutoff must stay", got)
	}
	// Refresh peer 2 so it survives.
	x.Touch(pid(2), 10*time.Second)
	got := x.Expire(4 * time.Second)
	if want := []ids.PeerID{pid(1), pid(3)}; !slices.Equal(got, want) {
		t.Errorf("Expire(4s) = %v, want %v (sorted)", got, want)
	}
	if !slices.Equal(x.PeerIDs(), []ids.PeerID{pid(2), pid(4), pid(5), pid(6)}) {
		t.Errorf("PeerIDs after expiry = %v", x.PeerIDs())
	}
	if x.NumObjects() != 5 { // 2,4,5,6 and 100
		t.Errorf("NumObjects = %d, want 5", x.NumObjects())
	}
	if got := x.Expire(time.Hour); len(got) != 4 || x.NumPeers() != 0 || x.NumObjects() != 0 {
		t.Errorf("Expire(1h) = %v; peers %d objects %d", got, x.NumPeers(), x.NumObjects())
	}
}

func TestPeerIDsSorted(t *testing.T) {
	x := NewIndex(0.01)
	rnd := rand.New(rand.NewPCG(3, 3))
	for range 100 {
		var p ids.PeerID
		for i := range p {
			p[i] = byte(rnd.IntN(256))
		}
		x.Touch(p, 0)
	}
	got := x.PeerIDs()
	if len(got) != 100 || !slices.IsSortedFunc(got, comparePeer) {
		t.Errorf("PeerIDs not sorted or wrong length %d", len(got))
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Less(got[i]) {
			t.Fatalf("PeerIDs not strictly ascending at %d", i)
		}
	}
}

func TestPick(t *testing.T) {
	rnd := rand.New(rand.NewPCG(4, 4))
	x := NewIndex(0.01)
	for i := 1; i <= 4; i++ {
		x.Apply(pid(i), 0, false, objs(1), nil)
	}
	x.Apply(pid(5), 0, false, objs(2), nil)
	x.Peer(pid(1)).Load = 5
	x.Peer(pid(2)).Load = 1
	x.Peer(pid(3)).Load = 3
	x.Peer(pid(4)).Load = 1

	if _, ok := x.Pick(99, ids.PeerID{}, 0, rnd); ok {
		t.Errorf("Pick of an unindexed object succeeded")
	}
	if _, ok := x.Pick(2, pid(5), 0, rnd); ok {
		t.Errorf("Pick excluding the only holder succeeded")
	}
	if p := x.Peer(pid(5)); p.Load != 0 {
		t.Errorf("failed Pick counted load %d", p.Load)
	}
	// Least loaded: 2 or 4 (load 1).
	id, ok := x.Pick(1, ids.PeerID{}, 0, rnd)
	if !ok || (id != pid(2) && id != pid(4)) {
		t.Fatalf("Pick = %v, %v; want peer 2 or 4", id, ok)
	}
	if x.Peer(id).Load != 2 {
		t.Errorf("picked peer load = %d, want 2", x.Peer(id).Load)
	}
	other := pid(2)
	if id == pid(2) {
		other = pid(4)
	}
	// Now the other one is the unique least loaded.
	if id2, _ := x.Pick(1, ids.PeerID{}, 0, rnd); id2 != other {
		t.Errorf("second Pick = %v, want %v", id2, other)
	}
	// Excluding: the least loaded other than the excluded.
	x.Peer(pid(2)).Load, x.Peer(pid(4)).Load = 0, 9
	if id3, _ := x.Pick(1, pid(2), 0, rnd); id3 != pid(3) {
		t.Errorf("Pick excluding 2 = %v, want 3", id3)
	}
	if x.Peer(pid(2)).Load != 0 {
		t.Errorf("excluded peer's load changed")
	}
}

// Repeated picks keep the loads of the holders within one of each other,
// and ties are broken among all tied holders.
func TestPickBalances(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 5))
	x := NewIndex(0.01)
	const n = 7
	for i := 1; i <= n; i++ {
		x.Apply(pid(i), 0, false, objs(1), nil)
	}
	firstPick := make(map[ids.PeerID]int)
	for round := range 700 {
		id, ok := x.Pick(1, ids.PeerID{}, 0, rnd)
		if !ok {
			t.Fatal("Pick failed")
		}
		if round%n == 0 {
			firstPick[id]++
		}
		lo, hi := 1<<30, -1
		for i := 1; i <= n; i++ {
			l := x.Peer(pid(i)).Load
			lo, hi = min(lo, l), max(hi, l)
		}
		if hi-lo > 1 {
			t.Fatalf("round %d: loads spread %d..%d", round, lo, hi)
		}
	}
	for i := 1; i <= n; i++ {
		if x.Peer(pid(i)).Load != 100 {
			t.Errorf("peer %d load %d, want 100", i, x.Peer(pid(i)).Load)
		}
	}
	// When all are tied, every holder gets picked first at some point.
	if len(firstPick) < n {
		t.Errorf("tie-break reached only %d of %d holders: %v", len(firstPick), n, firstPick)
	}
}

func TestPickDeterministic(t *testing.T) {
	run := func() []ids.PeerID {
		rnd := rand.New(rand.NewPCG(9, 9))
		x := NewIndex(0.01)
		for i := 1; i <= 5; i++ {
			x.Apply(pid(i), 0, false, objs(1), nil)
		}
		var out []ids.PeerID
		for range 50 {
			id, _ := x.Pick(1, pid(3), 0, rnd)
			out = append(out, id)
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different picks")
	}
	if slices.Contains(a, pid(3)) {
		t.Errorf("excluded peer picked")
	}
}

func TestIndexSummary(t *testing.T) {
	x := NewIndex(0.01)
	if x.Summary() != nil {
		t.Errorf("summary of an empty index is not nil")
	}
	x.Apply(pid(1), 0, false, objs(1, 2), nil)
	s1 := x.Summary()
	if s1 == nil || x.Summary() != s1 {
		t.Fatalf("summary not stable")
	}
	snap := s1.Copy()
	x.Touch(pid(1), time.Second)
	x.AddHolder(1, pid(2), 0) // another holder: the object set is unchanged
	if x.Summary() != s1 {
		t.Errorf("summary changed although the object set did not")
	}
	x.Apply(pid(2), 0, false, objs(3), nil)
	if x.Summary() == s1 {
		t.Errorf("summary unchanged after a new object")
	}
	if !s1.Equal(snap) {
		t.Errorf("an earlier summary was modified")
	}
	s2 := x.Summary()
	x.Apply(pid(2), 0, false, nil, objs(1)) // pid(1) still holds 1
	if x.Summary() != s2 {
		t.Errorf("summary changed although object 1 is still indexed")
	}
	x.Apply(pid(2), 0, false, nil, objs(3)) // 3 leaves the index
	if x.Summary() == s2 {
		t.Errorf("summary unchanged after an object left the index")
	}
}

func TestTakeChangesAndHolds(t *testing.T) {
	x := NewIndex(0.01)
	if a, r := x.TakeChanges(); len(a) != 0 || r != 0 {
		t.Errorf("TakeChanges of an empty index = %v, %d", a, r)
	}
	x.Apply(pid(1), 0, false, objs(5, 3, 9), nil)
	x.Apply(pid(2), 0, false, objs(3, 7), nil) // 3 already indexed
	for _, tc := range []struct {
		obj  ids.ObjectID
		want bool
	}{{3, true}, {5, true}, {7, true}, {9, true}, {4, false}} {
		if got := x.Holds(tc.obj); got != tc.want {
			t.Errorf("Holds(%d) = %v", tc.obj, got)
		}
	}
	if x.Changes() != 4 {
		t.Errorf("Changes = %d, want 4", x.Changes())
	}
	a, r := x.TakeChanges()
	slices.Sort(a)
	if !slices.Equal(a, objs(3, 5, 7, 9)) || r != 0 {
		t.Errorf("TakeChanges = %v, %d; want [3 5 7 9], 0", a, r)
	}
	if x.Changes() != 0 {
		t.Errorf("Changes after TakeChanges = %d", x.Changes())
	}
	x.Apply(pid(1), 0, false, objs(11), objs(5, 3)) // 5 leaves, 3 stays (pid 2)
	x.RemovePeer(pid(2))                            // 3 and 7 leave
	if x.Holds(3) || x.Holds(5) || x.Holds(7) || !x.Holds(9) || !x.Holds(11) {
		t.Errorf("Holds wrong after removals")
	}
	a, r = x.TakeChanges()
	if !slices.Equal(a, objs(11)) || r != 3 {
		t.Errorf("TakeChanges = %v, %d; want [11], 3", a, r)
	}
	if a, r := x.TakeChanges(); len(a) != 0 || r != 0 {
		t.Errorf("second TakeChanges = %v, %d", a, r)
	}
	// Changes counts every appearance and disappearance.
	x.Apply(pid(3), 0, false, objs(20), nil)
	x.Apply(pid(3), 0, false, nil, objs(20))
	if x.Changes() != 2 {
		t.Errorf("Changes = %d, want 2", x.Changes())
	}
	a, r = x.TakeChanges()
	if r != 1 || len(a) != 1 {
		t.Errorf("TakeChanges after add+remove = %v, %d", a, r)
	}
}

// Random pushes, removals and expiries: the index matches a model and its
// summary never misses an indexed object.
func TestIndexRandomAgainstModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(6, 7))
	x := NewIndex(0.01)
	model := make(map[ids.PeerID]map[ids.ObjectID]bool)
	seen := make(map[ids.PeerID]time.Duration)
	now := time.Duration(0)
	randObjs := func(n int) []ids.ObjectID {
		var out []ids.ObjectID
		for range n {
			out = append(out, ids.ObjectID(rnd.IntN(2000)))
		}
		return out
	}
	for step := range 3000 {
		now += time.Second
		id := pid(1 + rnd.IntN(30))
		switch r := rnd.IntN(20); {
		case r < 12:
			added, removed := randObjs(rnd.IntN(40)), randObjs(rnd.IntN(20))
			x.Apply(id, now, false, added, removed)
			if model[id] == nil {
				model[id] = make(map[ids.ObjectID]bool)
			}
			for _, o := range removed {
				delete(model[id], o)
			}
			for _, o := range added {
				model[id][o] = true
			}
			seen[id] = now
		case r < 15:
			added := randObjs(rnd.IntN(200))
			x.Apply(id, now, true, added, nil)
			model[id] = make(map[ids.ObjectID]bool)
			for _, o := range added {
				model[id][o] = true
			}
			seen[id] = now
		case r < 17:
			x.RemovePeer(id)
			delete(model, id)
			delete(seen, id)
		case r < 19:
			if model[id] != nil {
				x.Touch(id, now)
				seen[id] = now
			}
		default:
			cutoff := now - time.Duration(rnd.IntN(200))*time.Second
			var want []ids.PeerID
			for p, ls := range seen {
				if ls < cutoff {
					want = append(want, p)
					delete(model, p)
					delete(seen, p)
				}
			}
			slices.SortFunc(want, comparePeer)
			if got := x.Expire(cutoff); !slices.Equal(got, want) {
				t.Fatalf("step %d: Expire = %v, want %v", step, got, want)
			}
		}
		if step%10 == 0 || step == 2999 {
			checkIndex(t, x, model)
		}
	}
}

func TestPickPrefersFreshHolders(t *testing.T) {
	x := NewIndex(0.01)
	x.Apply(pid(1), 10*time.Second, false, []ids.ObjectID{7}, nil)
	x.Apply(pid(2), 100*time.Second, false, []ids.ObjectID{7}, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5; i++ {
		if id, _ := x.Pick(7, ids.PeerID{}, 50*time.Second, rnd); id != pid(2) {
			t.Fatalf("pick %d chose %v, want the fresh holder", i, id)
		}
	}
	x.Suspect(pid(2))
	if id, _ := x.Pick(7, ids.PeerID{}, 50*time.Second, rnd); id != pid(1) {
		t.Fatalf("after Suspect(2) chose %v", id)
	}
	if gone := x.Expire(50 * time.Second); len(gone) != 1 || gone[0] != pid(1) {
		t.Fatalf("Expire = %v, want the silent peer only (a suspect is kept)", gone)
	}
	x.Touch(pid(2), 120*time.Second)
	if x.Peer(pid(2)).Suspect {
		t.Fatal("Touch did not clear Suspect")
	}
}

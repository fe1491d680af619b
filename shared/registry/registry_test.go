package registry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
)

func layout(t *testing.T) keymgr.Layout {
	t.Helper()
	l, err := keymgr.NewLayout(6, 3)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func peer(i int) ids.PeerID {
	var id ids.PeerID
	id[0], id[1], id[15] = byte(i>>8), byte(i), 1
	return id
}

func site(i int) ids.SiteID { return ids.SiteOf(fmt.Sprintf("https://s%d.example", i)) }

func TestEntriesClassifies(t *testing.T) {
	l := layout(t)
	r := New(l)
	a, b := site(1), site(2)
	mustAdd := func(m ids.Member, owner uint32, exp int64) {
		t.Helper()
		if err := r.Add(m, owner, exp); err != nil {
			t.Fatal(err)
		}
	}
	a00 := ids.Member{Key: l.Key(a, 0, 0), ID: peer(1)}
	a01 := ids.Member{Key: l.Key(a, 0, 1), ID: peer(2)}
	a30 := ids.Member{Key: l.Key(a, 3, 0), ID: peer(3)}
	a32 := ids.Member{Key: l.Key(a, 3, 2), ID: peer(4)}
	b00 := ids.Member{Key: l.Key(b, 0, 0), ID: peer(5)}
	mustAdd(a01, 0, 0)
	mustAdd(a32, 0, 0)
	mustAdd(a00, 0, 0)
	mustAdd(a30, 7, 100) // remote instance, expires at 100
	mustAdd(b00, 0, 0)

	got := r.Entries(Query{Site: a, Loc: 0, N: 16}, rand.New(rand.NewPCG(1, 2)), 50)
	if want := []ids.Member{a00, a01}; !slices.Equal(got.Local, want) {
		t.Errorf("local %v, want %v (instance order)", got.Local, want)
	}
	if want := []ids.Member{a30, a32}; !slices.Equal(got.Remote, want) {
		t.Errorf("remote %v, want %v (main instances first)", got.Remote, want)
	}
	if len(got.Random) != 5 {
		t.Errorf("random %v, want all 5 members", got.Random)
	}
	// The asker is never in its own answer; expired remote entries are skipped.
	got = r.Entries(Query{Site: a, Loc: 0, N: 16, Exclude: peer(2)}, nil, 101)
	if want := []ids.Member{a00}; !slices.Equal(got.Local, want) {
		t.Errorf("local %v, want %v", got.Local, want)
	}
	if want := []ids.Member{a32}; !slices.Equal(got.Remote, want) {
		t.Errorf("remote %v, want %v", got.Remote, want)
	}
	for _, m := range got.Random {
		if m.ID == peer(2) || m == a30 {
			t.Errorf("random %v holds the asker or an expired entry", got.Random)
		}
	}
	// Random members only.
	got = r.Entries(Query{N: 2}, nil, 0)
	if got.Local != nil || got.Remote != nil || len(got.Random) != 2 || got.Random[0] == got.Random[1] {
		t.Errorf("random-only answer %+v", got)
	}
	// An empty registry answers an explicit empty list: the ring is empty.
	if e := New(l).Entries(Query{Site: a, N: 4}, nil, 0); !e.Empty() {
		t.Errorf("empty registry answered %+v", e)
	}
}

func TestOwnership(t *testing.T) {
	l := layout(t)
	r := New(l)
	m := ids.Member{Key: l.Key(site(1), 2, 0), ID: peer(9)}
	if err := r.Add(ids.Member{Key: 1}, 0, 0); err == nil {
		t.Error("zero id accepted")
	}
	_ = r.Add(m, 0, 0)
	_ = r.Add(m, 3, 10) // a remote announcement never replaces a local entry
	r.Expire(1000)
	if loc, rem := r.Counts(); loc != 1 || rem != 0 {
		t.Fatalf("counts %d/%d after a remote refresh of a local entry", loc, rem)
	}
	r.Remove(m, 3) // not the owner
	if loc, _ := r.Counts(); loc != 1 {
		t.Fatal("removed by a non-owner")
	}
	r.Remove(m, 0)
	_ = r.Add(m, 3, 10)
	_ = r.Add(m, 4, 20) // another remote instance took it over
	r.RemoveOwner(3)
	if _, rem := r.Counts(); rem != 1 {
		t.Fatalf("remote entry of owner 4 removed with owner 3")
	}
	_ = r.Add(m, 0, 0) // now local: promoted
	if loc, rem := r.Counts(); loc != 1 || rem != 0 {
		t.Fatalf("counts %d/%d after a local add of a remote entry", loc, rem)
	}
}

// TestModel checks random operations against a brute-force model.
func TestModel(t *testing.T) {
	l := layout(t)
	r := New(l)
	rnd := rand.New(rand.NewPCG(7, 7))
	type rec struct {
		owner uint32
		exp   int64
	}
	model := map[ids.Member]rec{}
	sites := []ids.SiteID{site(1), site(2), site(3)}
	now := int64(0)
	for step := 0; step < 20000; step++ {
		now++
		m := ids.Member{Key: l.Key(sites[rnd.IntN(3)], rnd.IntN(6), rnd.IntN(3)), ID: peer(rnd.IntN(40))}
		owner := uint32(rnd.IntN(3))
		switch op := rnd.IntN(10); {
		case op < 5:
			exp := now + int64(rnd.IntN(50))
			_ = r.Add(m, owner, exp)
			if owner == 0 {
				exp = 0
			}
			if old, ok := model[m]; !ok || old.owner != 0 || owner == 0 {
				model[m] = rec{owner, exp}
			}
		case op < 8:
			r.Remove(m, owner)
			if old, ok := model[m]; ok && old.owner == owner {
				delete(model, m)
			}
		case op < 9:
			r.Expire(now - 20)
			for k, v := range model {
				if v.owner != 0 && v.exp < now-20 {
					delete(model, k)
				}
			}
		default:
			if owner != 0 {
				r.RemoveOwner(owner)
				for k, v := range model {
					if v.owner == owner {
						delete(model, k)
					}
				}
			}
		}
		if step%97 != 0 {
			continue
		}
		s, loc, ex := sites[rnd.IntN(3)], rnd.IntN(6), peer(rnd.IntN(40))
		got := r.Entries(Query{Site: s, Loc: loc, N: MaxRandom, Exclude: ex}, rnd, now)
		var wantLocal, wantRemote []ids.Member
		liveN := 0
		for k, v := range model {
			if k.ID == ex || v.owner != 0 && v.exp < now {
				continue
			}
			liveN++
			if !l.SameSite(k.Key, s) {
				continue
			}
			if _, kl, _ := l.Split(k.Key); kl == loc {
				wantLocal = append(wantLocal, k)
			} else {
				wantRemote = append(wantRemote, k)
			}
		}
		if len(got.Local) != min(len(wantLocal), MaxLocal) || len(got.Remote) != min(len(wantRemote), MaxRemote) {
			t.Fatalf("step %d: local %d want %d; remote %d want %d", step, len(got.Local), len(wantLocal), len(got.Remote), len(wantRemote))
		}
		if len(wantLocal) <= MaxLocal && !sameSet(got.Local, wantLocal) {
			t.Fatalf("step %d: local %v want %v", step, got.Local, wantLocal)
		}
		for _, m := range got.Local {
			if !slices.Contains(wantLocal, m) {
				t.Fatalf("step %d: local %v not a live directory of the petal", step, m)
			}
		}
		for _, m := range got.Remote {
			if !slices.Contains(wantRemote, m) {
				t.Fatalf("step %d: remote %v not a live remote directory", step, m)
			}
		}
		if len(got.Random) < min(MaxRandom, liveN)/2 {
			// Rejection sampling may return fewer than asked, never far fewer.
			t.Fatalf("step %d: %d random of %d live", step, len(got.Random), liveN)
		}
		for i, m := range got.Random {
			v, ok := model[m]
			if !ok || m.ID == ex || v.owner != 0 && v.exp < now || slices.Contains(got.Random[:i], m) {
				t.Fatalf("step %d: bad random member %v", step, m)
			}
		}
		loc0, rem0 := r.Counts()
		if loc0+rem0 != len(model) {
			t.Fatalf("step %d: counts %d+%d, model %d", step, loc0, rem0, len(model))
		}
	}
}

func sameSet(a, b []ids.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, m := range a {
		if !slices.Contains(b, m) {
			return false
		}
	}
	return true
}

func TestRandomIsUniformAndDeterministic(t *testing.T) {
	l := layout(t)
	r := New(l)
	for i := 0; i < 100; i++ {
		_ = r.Add(ids.Member{Key: l.Key(site(i), 0, 0), ID: peer(i)}, 0, 0)
	}
	count := map[ids.Member]int{}
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5000; i++ {
		for _, m := range r.Entries(Query{N: 4}, rnd, 0).Random {
			count[m]++
		}
	}
	// 20,000 draws over 100 members: 200 each on average.
	for m, c := range count {
		if c < 120 || c > 290 {
			t.Errorf("member %v drawn %d times, want about 200", m, c)
		}
	}
	a := r.Entries(Query{N: 8}, rand.New(rand.NewPCG(9, 9)), 0)
	b := r.Entries(Query{N: 8}, rand.New(rand.NewPCG(9, 9)), 0)
	if !slices.Equal(a.Random, b.Random) {
		t.Error("same seed, different answers")
	}
}

func TestConcurrentUse(t *testing.T) {
	l := layout(t)
	r := New(l)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				m := ids.Member{Key: l.Key(site(i%7), i%6, 0), ID: peer(g*1000 + i%50)}
				_ = r.Add(m, uint32(g%2), int64(i))
				_ = r.Entries(Query{Site: site(i % 7), Loc: i % 6, N: 4}, nil, int64(i))
				if i%3 == 0 {
					r.Remove(m, uint32(g%2))
				}
				if i%500 == 0 {
					r.Expire(int64(i))
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	r.Members(func(ids.Member, uint32) { n++ })
	if loc, rem := r.Counts(); loc+rem != n {
		t.Fatalf("counts %d+%d, members %d", loc, rem, n)
	}
}

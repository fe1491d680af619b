package content

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

type recorder struct{ got []ids.ObjectID }

func (r *recorder) fn(o ids.ObjectID) { r.got = append(r.got, o) }

func (r *recorder) take() []ids.ObjectID {
	g := r.got
	r.got = nil
	return g
}

func mustPut(t *testing.T, c *Cache, obj ids.ObjectID, size int64, exp time.Duration, ev func(ids.ObjectID)) {
	t.Helper()
	if !c.Put(obj, size, exp, ev) {
		t.Fatalf("Put(%d, %d) refused", obj, size)
	}
}

func TestPutBasics(t *testing.T) {
	c := NewCache(0, 0.01)
	if c.Len() != 0 || c.Used() != 0 || c.Changes() != 0 {
		t.Fatalf("new cache not empty")
	}
	if c.Summary() != nil {
		t.Errorf("summary of a never-filled cache is not nil")
	}
	if c.Has(0, 1, nil) || c.Contains(1) {
		t.Errorf("empty cache has 1")
	}
	mustPut(t, c, 1, 10, 0, nil)
	mustPut(t, c, 2, 20, 0, nil)
	if c.Len() != 2 || c.Used() != 30 {
		t.Errorf("Len, Used = %d, %d; want 2, 30", c.Len(), c.Used())
	}
	if !c.Has(0, 1, nil) || !c.Contains(2) {
		t.Errorf("cached objects not found")
	}
	if s, e := c.Meta(2); s != 20 || e != 0 {
		t.Errorf("Meta(2) = %d, %v", s, e)
	}
	if s, e := c.Meta(3); s != 0 || e != 0 {
		t.Errorf("Meta(absent) = %d, %v", s, e)
	}
	// Re-putting updates size and expiry, is not a change.
	mustPut(t, c, 1, 15, 5*time.Second, nil)
	if c.Len() != 2 || c.Used() != 35 || c.Changes() != 2 {
		t.Errorf("after re-put: Len %d Used %d Changes %d; want 2, 35, 2", c.Len(), c.Used(), c.Changes())
	}
	if s, e := c.Meta(1); s != 15 || e != 5*time.Second {
		t.Errorf("Meta(1) after re-put = %d, %v", s, e)
	}
}

func TestLRUEviction(t *testing.T) {
	type step struct {
		op      string // put, has
		obj     ids.ObjectID
		size    int64
		evicted []ids.ObjectID
	}
	for _, tc := range []struct {
		name  string
		quota int64
		steps []step
		final []ids.ObjectID // Objects() at the end
		used  int64
	}{
		{
			name:  "oldest goes first",
			quota: 100,
			steps: []step{{"put", 1, 40, nil}, {"put", 2, 40, nil}, {"put", 3, 40, []ids.ObjectID{1}}},
			final: []ids.ObjectID{2, 3}, used: 80,
		},
		{
			name:  "a hit refreshes",
			quota: 100,
			steps: []step{{"put", 1, 40, nil}, {"put", 2, 40, nil}, {"has", 1, 0, nil}, {"put", 3, 40, []ids.ObjectID{2}}},
			final: []ids.ObjectID{1, 3}, used: 80,
		},
		{
			name:  "a re-put refreshes",
			quota: 100,
			steps: []step{{"put", 1, 40, nil}, {"put", 2, 40, nil}, {"put", 1, 40, nil}, {"put", 3, 40, []ids.ObjectID{2}}},
			final: []ids.ObjectID{1, 3}, used: 80,
		},
		{
			name:  "several evictions in LRU order",
			quota: 100,
			steps: []step{{"put", 5, 30, nil}, {"put", 4, 30, nil}, {"put", 6, 30, nil}, {"put", 9, 90, []ids.ObjectID{5, 4, 6}}},
			final: []ids.ObjectID{9}, used: 90,
		},
		{
			name:  "exactly at quota evicts nothing",
			quota: 100,
			steps: []step{{"put", 1, 50, nil}, {"put", 2, 50, nil}},
			final: []ids.ObjectID{1, 2}, used: 100,
		},
		{
			name:  "object of exactly the quota evicts all others",
			quota: 100,
			steps: []step{{"put", 1, 10, nil}, {"put", 2, 10, nil}, {"put", 3, 100, []ids.ObjectID{1, 2}}},
			final: []ids.ObjectID{3}, used: 100,
		},
		{
			name:  "growing a cached object evicts others",
			quota: 100,
			steps: []step{{"put", 1, 30, nil}, {"put", 2, 30, nil}, {"put", 3, 30, nil}, {"put", 1, 60, []ids.ObjectID{2}}},
			final: []ids.ObjectID{1, 3}, used: 90,
		},
		{
			name:  "shrinking a cached object",
			quota: 100,
			steps: []step{{"put", 1, 60, nil}, {"put", 1, 10, nil}, {"put", 2, 90, nil}},
			final: []ids.ObjectID{1, 2}, used: 100,
		},
		{
			name:  "too large is refused without evictions",
			quota: 100,
			steps: []step{{"put", 1, 60, nil}, {"put", 2, 101, nil}, {"put", 3, 1 << 40, nil}},
			final: []ids.ObjectID{1}, used: 60,
		},
		{
			name:  "a miss does not refresh",
			quota: 100,
			steps: []step{{"put", 1, 50, nil}, {"put", 2, 50, nil}, {"has", 7, 0, nil}, {"put", 3, 50, []ids.ObjectID{1}}},
			final: []ids.ObjectID{2, 3}, used: 100,
		},
		{
			name:  "unbounded",
			quota: 0,
			steps: []step{{"put", 1, 1 << 40, nil}, {"put", 2, 1 << 40, nil}, {"put", 3, 1 << 50, nil}},
			final: []ids.ObjectID{1, 2, 3}, used: 1<<41 + 1<<50,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(tc.quota, 0.01)
			var r recorder
			for i, s := range tc.steps {
				switch s.op {
				case "put":
					want := tc.quota == 0 || s.size <= tc.quota
					if got := c.Put(s.obj, s.size, 0, r.fn); got != want {
						t.Errorf("step %d: Put(%d, %d) = %v, want %v", i, s.obj, s.size, got, want)
					}
				case "has":
					c.Has(0, s.obj, r.fn)
				}
				if got := r.take(); !slices.Equal(got, s.evicted) {
					t.Errorf("step %d: evicted %v, want %v", i, got, s.evicted)
				}
				if tc.quota > 0 && c.Used() > tc.quota {
					t.Errorf("step %d: used %d over quota %d", i, c.Used(), tc.quota)
				}
			}
			if got := c.Objects(); !slices.Equal(got, tc.final) {
				t.Errorf("Objects = %v, want %v", got, tc.final)
			}
			if c.Used() != tc.used {
				t.Errorf("Used = %d, want %d", c.Used(), tc.used)
			}
			if c.Len() != len(tc.final) {
				t.Errorf("Len = %d, want %d", c.Len(), len(tc.final))
			}
		})
	}
}

func TestPutNilEvictedCallback(t *testing.T) {
	c := NewCache(10, 0.01)
	mustPut(t, c, 1, 6, 0, nil)
	mustPut(t, c, 2, 6, 0, nil) // evicts 1 with no callback
	if c.Contains(1) || !c.Contains(2) {
		t.Errorf("eviction without callback failed: %v", c.Objects())
	}
	mustPut(t, c, 3, 6, time.Second, nil)
	if c.Has(time.Second, 3, nil) {
		t.Errorf("expired object reported")
	}
}

func TestExpiry(t *testing.T) {
	const exp = 10 * time.Second
	for _, tc := range []struct {
		name    string
		expires time.Duration
		now     time.Duration
		fresh   bool
	}{
		{"before", exp, exp - 1, true},
		{"long before", exp, 0, true},
		{"at", exp, exp, false},
		{"after", exp, exp + time.Hour, false},
		{"never", 0, 1 << 62, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(0, 0.01)
			mustPut(t, c, 1, 10, tc.expires, nil)
			mustPut(t, c, 2, 10, 0, nil)
			c.TakeChanges()
			var r recorder
			got := c.Has(tc.now, 1, r.fn)
			if got != tc.fresh {
				t.Fatalf("Has at %v with expiry %v = %v", tc.now, tc.expires, got)
			}
			ev := r.take()
			if tc.fresh {
				if len(ev) != 0 || !c.Contains(1) || c.Len() != 2 || c.Used() != 20 {
					t.Errorf("fresh object disturbed: evicted %v, len %d", ev, c.Len())
				}
				return
			}
			if !slices.Equal(ev, []ids.ObjectID{1}) {
				t.Errorf("evicted = %v, want [1]", ev)
			}
			if c.Contains(1) || c.Len() != 1 || c.Used() != 10 {
				t.Errorf("expired object still held: len %d used %d", c.Len(), c.Used())
			}
			if c.Has(tc.now, 1, r.fn) || len(r.take()) != 0 {
				t.Errorf("second Has reported or evicted again")
			}
			added, removed := c.TakeChanges()
			if len(added) != 0 || !slices.Equal(removed, []ids.ObjectID{1}) {
				t.Errorf("changes after expiry = %v, %v", added, removed)
			}
		})
	}
}

func TestReputRefreshesExpiry(t *testing.T) {
	c := NewCache(0, 0.01)
	mustPut(t, c, 1, 10, time.Second, nil)
	mustPut(t, c, 1, 10, time.Minute, nil)
	if !c.Has(2*time.Second, 1, nil) {
		t.Errorf("re-put did not extend the expiry")
	}
	mustPut(t, c, 1, 10, 0, nil)
	if !c.Has(time.Hour, 1, nil) {
		t.Errorf("re-put with expiry 0 did not make the object permanent")
	}
}

// Contains neither evicts expired objects nor touches LRU order.
func TestContainsIsPassive(t *testing.T) {
	c := NewCache(100, 0.01)
	mustPut(t, c, 1, 50, time.Second, nil)
	mustPut(t, c, 2, 50, 0, nil)
	if !c.Contains(1) {
		t.Fatalf("Contains(1) false")
	}
	if c.Len() != 2 {
		t.Errorf("Contains evicted")
	}
	var r recorder
	mustPut(t, c, 3, 50, 0, r.fn)
	if got := r.take(); !slices.Equal(got, []ids.ObjectID{1}) {
		t.Errorf("Contains refreshed LRU: evicted %v, want [1]", got)
	}
}

func TestPendingChanges(t *testing.T) {
	for _, tc := range []struct {
		name           string
		quota          int64
		run            func(c *Cache)
		changes        int
		added, removed []ids.ObjectID
	}{
		{
			name:    "adds sorted",
			run:     func(c *Cache) { c.Put(30, 1, 0, nil); c.Put(10, 1, 0, nil); c.Put(20, 1, 0, nil) },
			changes: 3, added: []ids.ObjectID{10, 20, 30},
		},
		{
			name:    "add then evict cancels out",
			quota:   10,
			run:     func(c *Cache) { c.Put(1, 10, 0, nil); c.Put(2, 10, 0, nil) },
			changes: 3, added: []ids.ObjectID{2},
		},
		{
			name:    "add then expire cancels out",
			run:     func(c *Cache) { c.Put(1, 10, time.Second, nil); c.Has(time.Second, 1, nil) },
			changes: 2,
		},
		{
			name:    "add, evict, add again",
			quota:   10,
			run:     func(c *Cache) { c.Put(1, 10, 0, nil); c.Put(2, 10, 0, nil); c.Put(1, 10, 0, nil) },
			changes: 5, added: []ids.ObjectID{1}, removed: nil,
		},
		{
			name:    "re-put is no change",
			run:     func(c *Cache) { c.Put(1, 10, 0, nil); c.Put(1, 20, 0, nil); c.Put(1, 5, time.Hour, nil) },
			changes: 1, added: []ids.ObjectID{1},
		},
		{
			name:    "refused put is no change",
			quota:   10,
			run:     func(c *Cache) { c.Put(1, 11, 0, nil) },
			changes: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(tc.quota, 0.01)
			tc.run(c)
			if c.Changes() != tc.changes {
				t.Errorf("Changes = %d, want %d", c.Changes(), tc.changes)
			}
			added, removed := c.TakeChanges()
			if !slices.Equal(added, tc.added) || !slices.Equal(removed, tc.removed) {
				t.Errorf("TakeChanges = %v, %v; want %v, %v", added, removed, tc.added, tc.removed)
			}
			if c.Changes() != 0 {
				t.Errorf("Changes after TakeChanges = %d", c.Changes())
			}
			if a, r := c.TakeChanges(); len(a) != 0 || len(r) != 0 {
				t.Errorf("second TakeChanges = %v, %v", a, r)
			}
		})
	}
}

// Across pushes: an object pushed, then evicted, is reported removed; removed
// then re-added before the next push cancels out.
func TestPendingChangesAcrossPushes(t *testing.T) {
	c := NewCache(10, 0.01)
	mustPut(t, c, 1, 10, 0, nil)
	if a, r := c.TakeChanges(); !slices.Equal(a, []ids.ObjectID{1}) || r != nil {
		t.Fatalf("first push = %v, %v", a, r)
	}
	mustPut(t, c, 2, 10, 0, nil) // evicts 1
	if a, r := c.TakeChanges(); !slices.Equal(a, []ids.ObjectID{2}) || !slices.Equal(r, []ids.ObjectID{1}) {
		t.Fatalf("second push = %v, %v", a, r)
	}
	mustPut(t, c, 1, 10, 0, nil) // evicts 2
	mustPut(t, c, 2, 10, 0, nil) // evicts 1
	if c.Changes() != 4 {
		t.Errorf("Changes = %d, want 4", c.Changes())
	}
	// Directory knows {2}; the cache holds {2}: nothing to tell.
	if a, r := c.TakeChanges(); len(a) != 0 || len(r) != 0 {
		t.Errorf("third push = %v, %v; want nothing", a, r)
	}
}

// TakeChanges, applied to a model of the directory, always reproduces the
// cache's content.
func TestChangesReplayMatchesObjects(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	c := NewCache(2000, 0.01)
	dir := make(map[ids.ObjectID]bool)
	now := time.Duration(0)
	for step := range 20000 {
		now += time.Millisecond
		obj := ids.ObjectID(rnd.IntN(300))
		switch rnd.IntN(3) {
		case 0, 1:
			exp := time.Duration(0)
			if rnd.IntN(3) == 0 {
				exp = now + time.Duration(rnd.IntN(100))*time.Millisecond
			}
			c.Put(obj, int64(1+rnd.IntN(120)), exp, nil)
		case 2:
			c.Has(now, obj, nil)
		}
		if rnd.IntN(50) == 0 || step == 19999 {
			added, removed := c.TakeChanges()
			if !slices.IsSorted(added) || !slices.IsSorted(removed) {
				t.Fatalf("step %d: changes not sorted", step)
			}
			for _, o := range removed {
				if !dir[o] {
					t.Fatalf("step %d: removal of %d the directory never had", step, o)
				}
				delete(dir, o)
			}
			for _, o := range added {
				if dir[o] {
					t.Fatalf("step %d: addition of %d the directory already has", step, o)
				}
				dir[o] = true
			}
			var model []ids.ObjectID
			for o := range dir {
				model = append(model, o)
			}
			slices.Sort(model)
			if got := c.Objects(); !slices.Equal(got, model) {
				t.Fatalf("step %d: directory model %v != Objects %v", step, model, got)
			}
		}
	}
}

func TestObjectsSorted(t *testing.T) {
	c := NewCache(0, 0.01)
	rnd := rand.New(rand.NewPCG(1, 9))
	want := make(map[ids.ObjectID]bool)
	for range 500 {
		o := ids.ObjectID(rnd.Uint64())
		want[o] = true
		mustPut(t, c, o, 1, 0, nil)
	}
	got := c.Objects()
	if !slices.IsSorted(got) || len(got) != len(want) {
		t.Fatalf("Objects not sorted or wrong length: %d vs %d", len(got), len(want))
	}
	for _, o := range got {
		if !want[o] {
			t.Fatalf("unexpected object %d", o)
		}
	}
}

// The summary holds every cached object whatever happened before.
func TestSummaryNoFalseNegatives(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	for _, quota := range []int64{0, 500, 5000, 100000} {
		c := NewCache(quota, 0.01)
		now := time.Duration(0)
		for step := range 6000 {
			now += time.Millisecond
			obj := ids.ObjectID(rnd.Uint64N(3000))
			if rnd.IntN(4) == 0 {
				c.Has(now, obj, nil)
			} else {
				exp := time.Duration(0)
				if rnd.IntN(4) == 0 {
					exp = now + time.Duration(rnd.IntN(50))*time.Millisecond
				}
				c.Put(obj, int64(1+rnd.IntN(100)), exp, nil)
			}
			if step%97 == 0 || step == 5999 {
				s := c.Summary()
				for _, o := range c.Objects() {
					if !summary.Test(s, o) {
						t.Fatalf("quota %d step %d: summary misses cached %d (len %d)", quota, step, o, c.Len())
					}
				}
			}
		}
	}
}

func TestSummaryPointerAndVersion(t *testing.T) {
	c := NewCache(100, 0.01)
	v0 := c.SummaryVersion()
	mustPut(t, c, 1, 40, time.Second, nil)
	s1 := c.Summary()
	v1 := c.SummaryVersion()
	if s1 == nil || v1 <= v0 {
		t.Fatalf("summary after Put: %v, version %d -> %d", s1, v0, v1)
	}
	same := func(what string) {
		t.Helper()
		if c.Summary() != s1 || c.SummaryVersion() != v1 {
			t.Errorf("%s changed the summary", what)
		}
	}
	same("Summary again")
	c.Has(0, 1, nil)
	same("a hit")
	c.Has(0, 99, nil)
	same("a miss")
	c.Contains(1)
	same("Contains")
	mustPut(t, c, 1, 50, 2*time.Second, nil)
	same("a re-put")
	c.TakeChanges()
	same("TakeChanges")
	c.Objects()
	same("Objects")
	if c.Put(7, 101, 0, nil) {
		t.Fatal("oversized put accepted")
	}
	same("a refused put")

	snap := s1.Copy()
	mustPut(t, c, 2, 40, 0, nil)
	s2 := c.Summary()
	if s2 == s1 || c.SummaryVersion() <= v1 {
		t.Errorf("adding an object kept the summary pointer or version")
	}
	if !s1.Equal(snap) {
		t.Errorf("an earlier summary changed after a later Put")
	}
	if !summary.Test(s2, 1) || !summary.Test(s2, 2) {
		t.Errorf("new summary misses objects")
	}
	v2 := c.SummaryVersion()
	mustPut(t, c, 3, 40, 0, nil) // evicts 1
	if c.Contains(1) {
		t.Fatal("1 not evicted")
	}
	if c.Summary() == s2 || c.SummaryVersion() <= v2 {
		t.Errorf("eviction kept the summary pointer or version")
	}
	s3, v3 := c.Summary(), c.SummaryVersion()
	c.Has(time.Hour, 3, nil) // fresh
	if c.Summary() != s3 {
		t.Errorf("hit changed summary")
	}
	mustPut(t, c, 4, 10, time.Second, nil)
	s4, v4 := c.Summary(), c.SummaryVersion()
	if s4 == s3 || v4 <= v3 {
		t.Errorf("put kept summary")
	}
	c.Has(time.Second, 4, nil) // expires
	if c.Summary() == s4 || c.SummaryVersion() <= v4 {
		t.Errorf("expiry kept the summary pointer or version")
	}
}

func TestVersions(t *testing.T) {
	c := NewCache(100, 0.01)
	if !c.PutVersion(1, 10, 0, 5, nil) {
		t.Fatal("first version refused")
	}
	if c.PutVersion(1, 20, 0, 4, nil) {
		t.Error("an older version replaced a newer one")
	}
	if s, _ := c.Meta(1); s != 10 || c.Version(1) != 5 {
		t.Errorf("after an older put: size %d version %d", s, c.Version(1))
	}
	if !c.PutVersion(1, 30, time.Minute, 5, nil) {
		t.Error("the same version was not refreshed")
	}
	if !c.PutVersion(1, 40, 0, 9, nil) || c.Version(1) != 9 || c.Used() != 40 {
		t.Errorf("newer version: version %d used %d", c.Version(1), c.Used())
	}
	// A newer version too large for the quota drops the old one, and says so.
	var ev []ids.ObjectID
	if c.PutVersion(1, 101, 0, 10, func(o ids.ObjectID) { ev = append(ev, o) }) {
		t.Error("oversized object stored")
	}
	if c.Contains(1) || len(ev) != 1 || ev[0] != 1 || c.Used() != 0 {
		t.Errorf("oversized new version: contains %v evicted %v used %d", c.Contains(1), ev, c.Used())
	}
}

func TestExpireBeforeAndRemove(t *testing.T) {
	c := NewCache(0, 0.01)
	mustPut(t, c, 1, 10, time.Second, nil)
	mustPut(t, c, 2, 10, 0, nil)
	mustPut(t, c, 3, 10, 3*time.Second, nil)
	c.TakeChanges()
	var ev []ids.ObjectID
	if n := c.ExpireBefore(2*time.Second, func(o ids.ObjectID) { ev = append(ev, o) }); n != 1 || len(ev) != 1 || ev[0] != 1 {
		t.Fatalf("ExpireBefore: %d %v", n, ev)
	}
	if _, removed := c.TakeChanges(); len(removed) != 1 || removed[0] != 1 {
		t.Errorf("expired object not a pending removal: %v", removed)
	}
	if !c.Remove(3) || c.Remove(3) || c.Contains(3) {
		t.Error("Remove")
	}
	if n := c.ExpireBefore(time.Hour, nil); n != 0 || c.Len() != 1 {
		t.Errorf("after removal ExpireBefore dropped %d, %d left", n, c.Len())
	}
	// Re-putting without expiry keeps the count right: nothing left to expire.
	mustPut(t, c, 4, 10, time.Second, nil)
	mustPut(t, c, 4, 10, 0, nil)
	if n := c.ExpireBefore(time.Hour, nil); n != 0 || !c.Contains(4) {
		t.Errorf("object whose expiry was lifted expired")
	}
}

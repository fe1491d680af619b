// Package registry is the bootstrap service's knowledge of D-ring: the
// directory peers that registered their D-ring keys, and the answer to an
// entry-point request built from them. The real service (bootstrap/) and the
// simulator's bootstrap (shared/sim) use this one package, so the simulator
// never knows more than the service can: only what peers registered.
//
// An entry-point answer has three parts: the website's directories in the
// asker's locality (every PetalUp instance), the website's directories in the
// other localities, and a few random live members of D-ring of any website,
// from which a peer routes a lookup or a join.
package registry

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
)

// Limits of one answer; they are part of the bootstrap protocol.
const (
	// MaxLocal bounds Answer.Local.
	MaxLocal = 16
	// MaxRemote bounds Answer.Remote.
	MaxRemote = 32
	// MaxRandom bounds Answer.Random (and so Query.N).
	MaxRandom = 16
)

// Query is an entry-point request.
type Query struct {
	// Site is the website whose directories are wanted; 0 asks for random
	// members only.
	Site ids.SiteID
	// Loc is the asker's locality.
	Loc int
	// N is how many random members are wanted (at most MaxRandom).
	N int
	// Exclude is the asker, never returned to itself.
	Exclude ids.PeerID
}

// Answer is the reply to a Query. Lists are nil when empty.
type Answer struct {
	// Local are the directories of Query.Site in Query.Loc, instance order.
	Local []ids.Member
	// Remote are the directories of Query.Site in the other localities,
	// main instances first.
	Remote []ids.Member
	// Random are up to Query.N distinct random members of any website.
	Random []ids.Member
}

// Empty reports whether the registry knew no member at all for the query:
// for a Query with N > 0 that means D-ring is empty.
func (a Answer) Empty() bool { return len(a.Local)+len(a.Remote)+len(a.Random) == 0 }

type entry struct {
	m     ids.Member
	owner uint32
	exp   int64
}

// Registry holds the registered D-ring members. It is safe for concurrent
// use. Owner 0 is the instance itself (its own peers, or the simulator's
// bootstrap): those entries stay until removed. Other owners are remote
// bootstrap instances (NATS) whose entries expire unless refreshed.
type Registry struct {
	layout keymgr.Layout

	mu     sync.RWMutex
	all    []entry            // dense: uniform sampling, O(1) removal
	idx    map[ids.Member]int // position in all
	bySite map[uint64][]int32 // site prefix -> positions in all, insertion order
	local  int
}

// New returns an empty registry for the key layout peers use.
func New(layout keymgr.Layout) *Registry {
	return &Registry{layout: layout, idx: make(map[ids.Member]int), bySite: make(map[uint64][]int32)}
}

// ErrZeroID is returned by Add for a member without a peer id.
var ErrZeroID = errors.New("registry: zero peer id")

func (r *Registry) prefix(k ids.Key) uint64 {
	p, _, _ := r.layout.Split(k)
	return p
}

// Add registers member m for owner; expires (in the caller's clock, e.g.
// Unix milliseconds) matters only for a remote owner. A local entry is never
// replaced by a remote one for the same member; a remote one is refreshed.
func (r *Registry) Add(m ids.Member, owner uint32, expires int64) error {
	if m.ID.IsZero() {
		return ErrZeroID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.idx[m]; ok {
		e := &r.all[i]
		switch {
		case e.owner == 0 && owner != 0:
		case e.owner != 0 && owner == 0:
			e.owner, e.exp = 0, 0
			r.local++
		default:
			e.owner, e.exp = owner, expires
		}
		return nil
	}
	i := len(r.all)
	r.all = append(r.all, entry{m: m, owner: owner, exp: expires})
	r.idx[m] = i
	p := r.prefix(m.Key)
	r.bySite[p] = append(r.bySite[p], int32(i))
	if owner == 0 {
		r.local++
	}
	return nil
}

// Remove drops member m if owner registered it.
func (r *Registry) Remove(m ids.Member, owner uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.idx[m]; ok && r.all[i].owner == owner {
		r.removeAt(i)
	}
}

// RemoveOwner drops every entry of a remote owner (it said goodbye).
func (r *Registry) RemoveOwner(owner uint32) {
	if owner == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if r.all[i].owner == owner {
			r.removeAt(i)
		}
	}
}

// Expire drops the remote entries that expired before now.
func (r *Registry) Expire(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.all) - 1; i >= 0; i-- {
		if r.all[i].owner != 0 && r.all[i].exp < now {
			r.removeAt(i)
		}
	}
}

// removeAt deletes all[i], moving the last entry into its place.
func (r *Registry) removeAt(i int) {
	e := r.all[i]
	last := len(r.all) - 1
	p := r.prefix(e.m.Key)
	r.bySite[p] = deleteIndex(r.bySite[p], int32(i))
	if len(r.bySite[p]) == 0 {
		delete(r.bySite, p)
	}
	if i != last {
		moved := r.all[last]
		r.all[i] = moved
		r.idx[moved.m] = i
		mp := r.prefix(moved.m.Key)
		list := r.bySite[mp]
		for j, v := range list {
			if v == int32(last) {
				list[j] = int32(i)
				break
			}
		}
	}
	r.all = r.all[:last]
	delete(r.idx, e.m)
	if e.owner == 0 {
		r.local--
	}
}

func deleteIndex(list []int32, v int32) []int32 {
	for j, x := range list {
		if x == v {
			return append(list[:j], list[j+1:]...)
		}
	}
	return list
}

// live reports whether e may be handed out at now.
func live(e *entry, now int64) bool { return e.owner == 0 || e.exp >= now }

// Entries answers q from the registered members, as of now (remote entries
// that expired are skipped). rnd drives the random choice; nil uses
// math/rand/v2's global source.
func (r *Registry) Entries(q Query, rnd *rand.Rand, now int64) Answer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var a Answer
	if q.Site != 0 {
		for _, i := range r.bySite[r.prefix(r.layout.Key(q.Site, 0, 0))] {
			e := &r.all[i]
			if e.m.ID == q.Exclude || !live(e, now) {
				continue
			}
			if _, loc, _ := r.layout.Split(e.m.Key); loc == q.Loc {
				a.Local = append(a.Local, e.m)
			} else {
				a.Remote = append(a.Remote, e.m)
			}
		}
		inst := func(m ids.Member) int { _, _, i := r.layout.Split(m.Key); return i }
		slices.SortStableFunc(a.Local, func(x, y ids.Member) int { return cmp.Compare(inst(x), inst(y)) })
		slices.SortStableFunc(a.Remote, func(x, y ids.Member) int { return cmp.Compare(inst(x), inst(y)) })
		if len(a.Local) > MaxLocal {
			a.Local = a.Local[:MaxLocal]
		}
		if len(a.Remote) > MaxRemote {
			a.Remote = a.Remote[:MaxRemote]
		}
	}
	a.Random = r.sample(min(q.N, MaxRandom), q.Exclude, rnd, now)
	return a
}

func intN(rnd *rand.Rand, n int) int {
	if rnd == nil {
		return rand.IntN(n)
	}
	return rnd.IntN(n)
}

// sample returns up to n distinct random live members other than exclude.
func (r *Registry) sample(n int, exclude ids.PeerID, rnd *rand.Rand, now int64) []ids.Member {
	L := len(r.all)
	if n <= 0 || L == 0 {
		return nil
	}
	var out []ids.Member
	ok := func(e *entry) bool { return e.m.ID != exclude && live(e, now) }
	if L <= 4*n {
		// Small ring: a partial Fisher-Yates over the positions.
		perm := make([]int32, L)
		for i := range perm {
			perm[i] = int32(i)
		}
		for i := 0; i < L && len(out) < n; i++ {
			j := i + intN(rnd, L-i)
			perm[i], perm[j] = perm[j], perm[i]
			if e := &r.all[perm[i]]; ok(e) {
				out = append(out, e.m)
			}
		}
		return out
	}
	// Large ring: rejection sampling; L > 4n, so few draws repeat.
	for tries := 0; tries < 8*n && len(out) < n; tries++ {
		e := &r.all[intN(rnd, L)]
		if ok(e) && !slices.Contains(out, e.m) {
			out = append(out, e.m)
		}
	}
	return out
}

// Members calls fn for every entry, under the read lock (fn must not call
// back into the registry).
func (r *Registry) Members(fn func(m ids.Member, owner uint32)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := range r.all {
		fn(r.all[i].m, r.all[i].owner)
	}
}

// Counts returns the number of local and remote entries.
func (r *Registry) Counts() (local, remote int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.local, len(r.all) - r.local
}

// Layout is the key layout the registry was built with.
func (r *Registry) Layout() keymgr.Layout { return r.layout }

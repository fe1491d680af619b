package bootstrap

import (
	"math/rand/v2"
	"sync"

	"github.com/flowercdn/flower/shared/ids"
)

// dirKey is one petal: a website and a locality.
type dirKey struct {
	site ids.SiteID
	loc  uint16
}

// dirEnt is a directory peer of a petal. inst is 0 for a peer connected to
// this instance, else the index of the remote instance that announced it;
// exp (unix milliseconds) is when a remote entry ages out without a refresh.
type dirEnt struct {
	id   ids.PeerID
	inst uint32
	exp  int64
}

// dirSet keeps the directory peers of one petal dense, for O(1) add/remove
// and uniform random sampling.
type dirSet struct {
	list []dirEnt
	idx  map[ids.PeerID]int
}

// directory indexes the directory peers of every petal, local and remote.
type directory struct {
	mu    sync.RWMutex
	sets  map[dirKey]*dirSet
	local int
	total int
}

func newDirectory() *directory {
	return &directory{sets: make(map[dirKey]*dirSet)}
}

// put adds or refreshes id in petal k. A local entry always wins over a
// remote one for the same id.
func (d *directory) put(k dirKey, id ids.PeerID, inst uint32, exp int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sets[k]
	if s == nil {
		s = &dirSet{idx: make(map[ids.PeerID]int)}
		d.sets[k] = s
	}
	if i, ok := s.idx[id]; ok {
		e := &s.list[i]
		if e.inst == 0 && inst != 0 {
			return
		}
		if e.inst == 0 {
			d.local--
		}
		e.inst, e.exp = inst, exp
		if inst == 0 {
			d.local++
		}
		return
	}
	s.idx[id] = len(s.list)
	s.list = append(s.list, dirEnt{id: id, inst: inst, exp: exp})
	d.total++
	if inst == 0 {
		d.local++
	}
}

// del removes id from petal k if the entry belongs to inst.
func (d *directory) del(k dirKey, id ids.PeerID, inst uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delLocked(k, id, inst)
}

func (d *directory) delLocked(k dirKey, id ids.PeerID, inst uint32) {
	s := d.sets[k]
	if s == nil {
		return
	}
	i, ok := s.idx[id]
	if !ok || s.list[i].inst != inst {
		return
	}
	last := len(s.list) - 1
	if i != last {
		s.list[i] = s.list[last]
		s.idx[s.list[i].id] = i
	}
	s.list = s.list[:last]
	delete(s.idx, id)
	d.total--
	if inst == 0 {
		d.local--
	}
	if len(s.list) == 0 {
		delete(d.sets, k)
	}
}

// expire drops remote entries whose exp is before now (or every entry of
// instance inst when inst != 0 and now < 0).
func (d *directory) expire(now int64, inst uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, s := range d.sets {
		for i := len(s.list) - 1; i >= 0; i-- {
			e := s.list[i]
			if e.inst == 0 {
				continue
			}
			if (inst != 0 && e.inst == inst) || (inst == 0 && e.exp < now) {
				d.delLocked(k, e.id, e.inst)
				if d.sets[k] == nil {
					break
				}
			}
		}
	}
}

// sample returns up to n distinct random live entries of petal k, never
// exclude. Remote entries older than now are skipped.
func (d *directory) sample(k dirKey, n int, exclude ids.PeerID, now int64) []ids.PeerID {
	if n <= 0 {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	s := d.sets[k]
	if s == nil {
		return nil
	}
	ok := func(e dirEnt) bool { return e.id != exclude && (e.inst == 0 || e.exp >= now) }
	L := len(s.list)
	out := make([]ids.PeerID, 0, min(n, L))
	if L <= 4*n {
		// Small petal: a partial Fisher-Yates over a copy of the indices.
		perm := rand.Perm(L)
		for _, i := range perm {
			if e := s.list[i]; ok(e) {
				out = append(out, e.id)
				if len(out) == n {
					break
				}
			}
		}
		return out
	}
	// Large petal: rejection sampling; L > 4n so few draws repeat.
	for tries := 0; tries < 8*n && len(out) < n; tries++ {
		e := s.list[rand.IntN(L)]
		if !ok(e) {
			continue
		}
		dup := false
		for _, x := range out {
			if x == e.id {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e.id)
		}
	}
	return out
}

// localEntries calls fn for every local entry (under the read lock).
func (d *directory) localEntries(fn func(k dirKey, id ids.PeerID)) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for k, s := range d.sets {
		for _, e := range s.list {
			if e.inst == 0 {
				fn(k, e.id)
			}
		}
	}
}

func (d *directory) counts() (local, remote int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.local, d.total - d.local
}

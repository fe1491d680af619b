// Package content holds a content peer's cache of one website: objects
// bounded by a byte quota (LRU plus expiry), the changes not yet pushed to
// the directory, and the content summary gossiped to the petal.
package content

import (
	"container/list"
	"slices"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

type item struct {
	obj     ids.ObjectID
	size    int64
	expires time.Duration // 0: never
	version uint64
}

// Cache is the cache of one website at one peer. Its methods are not safe
// for concurrent use (the core is single-threaded).
type Cache struct {
	quota   int64
	used    int64
	lru     *list.List // front: most recent
	items   map[ids.ObjectID]*list.Element
	pending map[ids.ObjectID]bool // true: added, false: removed since last push
	changes int
	sum     *summary.Builder
	// expiring counts the items with an expiry, so that ExpireBefore
	// costs nothing in a cache without any.
	expiring int
}

// NewCache returns an empty cache with a byte quota (0: unbounded) and the
// false-positive target of its summary.
func NewCache(quota int64, fp float64) *Cache {
	return &Cache{
		quota:   quota,
		lru:     list.New(),
		items:   make(map[ids.ObjectID]*list.Element),
		pending: make(map[ids.ObjectID]bool),
		sum:     summary.NewBuilder(fp),
	}
}

// Len is the number of objects held.
func (c *Cache) Len() int { return len(c.items) }

// Used is the number of bytes held.
func (c *Cache) Used() int64 { return c.used }

func (c *Cache) all(yield func(ids.ObjectID) bool) {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if !yield(e.Value.(*item).obj) {
			return
		}
	}
}

// Has reports whether obj is cached and fresh at now; a hit refreshes its
// LRU position. An expired object is evicted and reported in evicted.
func (c *Cache) Has(now time.Duration, obj ids.ObjectID, evicted func(ids.ObjectID)) bool {
	e, ok := c.items[obj]
	if !ok {
		return false
	}
	it := e.Value.(*item)
	if it.expires != 0 && now >= it.expires {
		c.remove(e)
		if evicted != nil {
			evicted(obj)
		}
		return false
	}
	c.lru.MoveToFront(e)
	return true
}

// Contains reports whether obj is cached, without touching LRU order.
func (c *Cache) Contains(obj ids.ObjectID) bool {
	_, ok := c.items[obj]
	return ok
}

// Put stores obj (size bytes, expiring at expires, 0 = never) at version 0;
// see PutVersion.
func (c *Cache) Put(obj ids.ObjectID, size int64, expires time.Duration, evicted func(ids.ObjectID)) bool {
	return c.PutVersion(obj, size, expires, 0, evicted)
}

// PutVersion stores obj (size bytes, expiring at expires, 0 = never) and
// evicts least recently used objects past the quota, reporting each in
// evicted. An object larger than the quota is not stored, and neither is an
// older version than the one held (a cache keeps the highest version; an
// equal one refreshes size and expiry). PutVersion reports whether obj was
// stored.
func (c *Cache) PutVersion(obj ids.ObjectID, size int64, expires time.Duration, version uint64, evicted func(ids.ObjectID)) bool {
	if e, ok := c.items[obj]; ok && e.Value.(*item).version > version {
		return false
	}
	if c.quota > 0 && size > c.quota {
		if e, ok := c.items[obj]; ok {
			c.remove(e) // the new version does not fit: drop the old one too
			if evicted != nil {
				evicted(obj)
			}
		}
		return false
	}
	if e, ok := c.items[obj]; ok {
		it := e.Value.(*item)
		c.used += size - it.size
		if (it.expires != 0) != (expires != 0) {
			c.expiring += sign(expires) - sign(it.expires)
		}
		it.size, it.expires, it.version = size, expires, version
		c.lru.MoveToFront(e)
	} else {
		c.items[obj] = c.lru.PushFront(&item{obj: obj, size: size, expires: expires, version: version})
		c.used += size
		c.expiring += sign(expires)
		c.note(obj, true)
		c.sum.Add(obj, len(c.items), c.all)
	}
	for c.quota > 0 && c.used > c.quota {
		back := c.lru.Back()
		victim := back.Value.(*item).obj
		c.remove(back)
		if evicted != nil {
			evicted(victim)
		}
	}
	return true
}

func sign(d time.Duration) int {
	if d != 0 {
		return 1
	}
	return 0
}

// Remove drops obj (the host found it stale or lost its bytes). It reports
// whether obj was cached.
func (c *Cache) Remove(obj ids.ObjectID) bool {
	e, ok := c.items[obj]
	if ok {
		c.remove(e)
	}
	return ok
}

// ExpireBefore drops every object whose expiry is at or before now,
// reporting each in evicted, and returns how many it dropped.
func (c *Cache) ExpireBefore(now time.Duration, evicted func(ids.ObjectID)) int {
	if c.expiring == 0 {
		return 0
	}
	n := 0
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if it := e.Value.(*item); it.expires != 0 && now >= it.expires {
			c.remove(e)
			n++
			if evicted != nil {
				evicted(it.obj)
			}
		}
		e = next
	}
	return n
}

func (c *Cache) remove(e *list.Element) {
	it := c.lru.Remove(e).(*item)
	delete(c.items, it.obj)
	c.used -= it.size
	c.expiring -= sign(it.expires)
	c.note(it.obj, false)
	c.sum.Remove(len(c.items), c.all)
}

func (c *Cache) note(obj ids.ObjectID, added bool) {
	c.changes++
	if prev, ok := c.pending[obj]; ok && prev != added {
		delete(c.pending, obj) // added then removed (or back): nothing to tell
		return
	}
	c.pending[obj] = added
}

// Changes is the number of cache changes since the last TakeChanges.
func (c *Cache) Changes() int { return c.changes }

// TakeChanges returns the objects added and removed since the last call, in
// ascending order, and resets the change counter.
func (c *Cache) TakeChanges() (added, removed []ids.ObjectID) {
	for obj, a := range c.pending {
		if a {
			added = append(added, obj)
		} else {
			removed = append(removed, obj)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	clear(c.pending)
	c.changes = 0
	return added, removed
}

// Objects returns every cached object in ascending order (a full push).
func (c *Cache) Objects() []ids.ObjectID {
	out := make([]ids.ObjectID, 0, len(c.items))
	for obj := range c.items {
		out = append(out, obj)
	}
	slices.Sort(out)
	return out
}

// SummaryVersion grows whenever the content summary changes.
func (c *Cache) SummaryVersion() uint64 { return c.sum.Version() }

// Summary is the content summary: an immutable Bloom filter of the cache.
func (c *Cache) Summary() *bloom.BloomFilter { return c.sum.Snapshot() }

// Meta returns the size and expiry of a cached object (zeros when absent).
func (c *Cache) Meta(obj ids.ObjectID) (size int64, expires time.Duration) {
	if e, ok := c.items[obj]; ok {
		it := e.Value.(*item)
		return it.size, it.expires
	}
	return 0, 0
}

// Version returns the version of a cached object (0 when absent).
func (c *Cache) Version(obj ids.ObjectID) uint64 {
	if e, ok := c.items[obj]; ok {
		return e.Value.(*item).version
	}
	return 0
}

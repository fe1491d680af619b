package sim

// lru is the byte-bounded LRU caches of all peers of a baseline (Squirrel or
// origin-only), in flat arrays: one doubly linked list per peer through a
// shared entry pool, and one map from (peer, object) to entry.
type lru struct {
	quota      []int64
	used       []int64
	head, tail []int32 // most / least recently used entry of each peer, -1 none
	ent        []lruEnt
	free       []int32
	idx        map[uint64]int32
}

type lruEnt struct {
	peer, obj  int32
	size       int32
	prev, next int32
}

func newLRU(quota []int64) *lru {
	n := len(quota)
	c := &lru{
		quota: quota,
		used:  make([]int64, n),
		head:  make([]int32, n),
		tail:  make([]int32, n),
		idx:   map[uint64]int32{},
	}
	for i := range c.head {
		c.head[i], c.tail[i] = -1, -1
	}
	return c
}

func lruKey(peer, obj int32) uint64 { return uint64(uint32(peer))<<32 | uint64(uint32(obj)) }

// get reports whether peer holds obj, and makes it the most recently used.
func (c *lru) get(peer, obj int32) bool {
	e, ok := c.idx[lruKey(peer, obj)]
	if ok {
		c.unlink(e)
		c.pushFront(e)
	}
	return ok
}

// has reports whether peer holds obj without touching it.
func (c *lru) has(peer, obj int32) bool {
	_, ok := c.idx[lruKey(peer, obj)]
	return ok
}

// add stores obj at peer (most recently used), evicting least recently used
// objects until it fits. An object larger than the quota is not stored.
func (c *lru) add(peer, obj int32, size int32) {
	if c.get(peer, obj) {
		return
	}
	if int64(size) > c.quota[peer] {
		return
	}
	for c.used[peer]+int64(size) > c.quota[peer] {
		t := c.tail[peer]
		c.unlink(t)
		delete(c.idx, lruKey(peer, c.ent[t].obj))
		c.used[peer] -= int64(c.ent[t].size)
		c.free = append(c.free, t)
	}
	var e int32
	if n := len(c.free); n > 0 {
		e = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		e = int32(len(c.ent))
		c.ent = append(c.ent, lruEnt{})
	}
	c.ent[e] = lruEnt{peer: peer, obj: obj, size: size}
	c.idx[lruKey(peer, obj)] = e
	c.used[peer] += int64(size)
	c.pushFront(e)
}

func (c *lru) unlink(e int32) {
	x := &c.ent[e]
	if x.prev >= 0 {
		c.ent[x.prev].next = x.next
	} else {
		c.head[x.peer] = x.next
	}
	if x.next >= 0 {
		c.ent[x.next].prev = x.prev
	} else {
		c.tail[x.peer] = x.prev
	}
}

func (c *lru) pushFront(e int32) {
	x := &c.ent[e]
	p := x.peer
	x.prev, x.next = -1, c.head[p]
	if x.next >= 0 {
		c.ent[x.next].prev = e
	} else {
		c.tail[p] = e
	}
	c.head[p] = e
}

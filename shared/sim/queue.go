package sim

import "time"

// Event kinds. One queue type serves every system; each system uses its own
// kinds.
const (
	evTrace uint8 = iota // next workload trace entry (qid: trace index)

	// Flower-CDN host.
	evMsg       // deliver message slot qid from node `from` to node
	evFetchDone // origin fetch of query qid of node finished (arg: object)
	evDeliver   // object from node `from` arrives at node for its query qid (arg: object)
	evTick      // run node's timers (qid: tick version)
	evEntryAsk  // node's entry-point request reaches the bootstrap service (qid: request slot)
	evEntryAns  // the service's answer reaches node (qid: slot)

	// Squirrel.
	evSqArrive  // query qid reaches its home node (arg: hops so far)
	evSqFetched // home node's origin fetch for query qid finished
	evSqDeliver // object arrives at the requester (from: serving home node)

	// Squirrel's directory scheme (besides evSqArrive and evSqDeliver).
	evDirForward // the home's forwarded request reaches delegate node (arg: hops)
	evDirOrigin  // the requester learns it must fetch from the origin (arg: hops)
	evDirFetched // the requester's origin fetch finished
	evDirAdd     // the requester's "I hold it" reaches the home node (from: requester)
	evDirGone    // a delegate's "I do not hold it" reaches the home node (from: delegate)

	// Origin-only.
	evOrDeliver // object from the origin arrives at the requester
)

// event is one scheduled occurrence. Events are ordered by (at, seq): seq is
// the order in which they were scheduled, which makes the run deterministic.
type event struct {
	at   time.Duration
	seq  uint64
	qid  uint64
	node int32
	from int32
	arg  int32
	kind uint8
	hops uint8 // evDeliver: overlay hops the query took to its provider
}

// queue is a binary min-heap of events by (at, seq). It stores events by
// value, so scheduling allocates nothing once the backing array has grown.
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) len() int    { return len(q.h) }
func (q *queue) top() *event { return &q.h[0] }

func less(a, b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *queue) push(e event) {
	e.seq = q.seq
	q.seq++
	q.h = append(q.h, e)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&e, &h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (q *queue) pop() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	last := h[n]
	q.h = h[:n]
	h = q.h
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && less(&h[r], &h[c]) {
			c = r
		}
		if !less(&h[c], &last) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = last
	return top
}

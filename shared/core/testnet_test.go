package core

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// testNet is a small deterministic host for core tests: fixed latencies,
// an instantaneous bootstrap service, origin fetches that always succeed.
type testNet struct {
	t       *testing.T
	cfg     Config
	now     time.Duration
	nodes   []*Node
	byID    map[ids.PeerID]int
	q       evHeap
	seq     uint64
	rnd     *rand.Rand
	answers map[qkey]Answer
	served  []Serve
	dirs    map[ids.Key]ids.PeerID // live directory positions as the bootstrap sees them
	msgs    int
	fetched map[[2]uint64]int // origin fetches per (site, object), when not nil
}

type ev struct {
	at   time.Duration
	seq  uint64
	kind int // 0 deliver, 1 tick, 2 fetch done, 3 delivered
	to   int
	from ids.PeerID
	msg  wire.Msg
	qid  uint64
}

type evHeap []ev

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(ev)) }
func (h *evHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTestNet(t *testing.T, cfg Config, n int, seed uint64) *testNet {
	t.Helper()
	tn := &testNet{t: t, cfg: cfg, byID: map[ids.PeerID]int{}, rnd: rand.New(rand.NewPCG(seed, 1)),
		answers: map[qkey]Answer{}, dirs: map[ids.Key]ids.PeerID{}}
	for i := 0; i < n; i++ {
		var id ids.PeerID
		for j := range id {
			id[j] = byte(tn.rnd.UintN(256))
		}
		nd, err := New(cfg, id, i%cfg.Localities, rand.New(rand.NewPCG(seed, uint64(i)+100)))
		if err != nil {
			t.Fatal(err)
		}
		tn.byID[id] = i
		tn.nodes = append(tn.nodes, nd)
	}
	return tn
}

func (tn *testNet) latency(a, b int) time.Duration {
	if tn.nodes[a].loc == tn.nodes[b].loc {
		return 10 * time.Millisecond
	}
	return 100 * time.Millisecond
}

func (tn *testNet) push(e ev) {
	tn.seq++
	e.seq = tn.seq
	heap.Push(&tn.q, e)
}

// drain processes node i's Ready batch.
func (tn *testNet) drain(i int) {
	nd := tn.nodes[i]
	rd := nd.Ready()
	for _, e := range rd.Msgs {
		j, ok := tn.byID[e.To]
		if !ok {
			continue
		}
		tn.msgs++
		// Everything the core sends must fit the wire format.
		if _, err := wire.Encode(e.Msg); err != nil {
			tn.t.Fatalf("node %d sent a message the wire refuses: %v", i, err)
		}
		tn.push(ev{at: tn.now + tn.latency(i, j), kind: 0, to: j, from: nd.id, msg: e.Msg})
	}
	for _, a := range rd.Answers {
		tn.answers[qkey{i, a.QID}] = a
	}
	for _, f := range rd.Fetches {
		if tn.fetched != nil {
			tn.fetched[[2]uint64{uint64(f.Site), uint64(f.Obj)}]++
		}
		tn.push(ev{at: tn.now + 200*time.Millisecond, kind: 2, to: i, qid: f.QID})
	}
	for _, s := range rd.Serves {
		tn.served = append(tn.served, s)
		j := tn.byID[s.To]
		tn.push(ev{at: tn.now + tn.latency(i, j), kind: 3, to: j, from: nd.id, qid: s.QID})
	}
	for _, r := range rd.Roles {
		for k, id := range tn.dirs {
			if id == nd.id && !slices.Contains(nd.DirKeys(), k) {
				delete(tn.dirs, k)
			}
		}
		if r.Role == RoleDirectory {
			tn.dirs[r.Key] = nd.id
		}
	}
	needEntries := rd.NeedEntries
	nd.Advance()
	if needEntries {
		var es []ids.Member
		keys := make([]ids.Key, 0, len(tn.dirs))
		for k := range tn.dirs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if tn.nodes[tn.byID[tn.dirs[k]]].Online() {
				es = append(es, ids.Member{Key: k, ID: tn.dirs[k]})
			}
		}
		tn.rnd.Shuffle(len(es), func(a, b int) { es[a], es[b] = es[b], es[a] })
		if len(es) > 4 {
			es = es[:4]
		}
		nd.SetEntryPoints(tn.now, es)
		tn.drain(i)
		return
	}
	if nt := nd.NextTick(); nt >= 0 {
		tn.push(ev{at: max(nt, tn.now), kind: 1, to: i})
	}
}

// qkey names a query: its originator and QID.
type qkey struct {
	node int
	qid  uint64
}

func (tn *testNet) query(i int, site ids.SiteID, obj ids.ObjectID) qkey {
	qid := tn.nodes[i].Query(tn.now, site, obj)
	tn.drain(i)
	return qkey{i, qid}
}

// run processes events until time until.
func (tn *testNet) run(until time.Duration) {
	for len(tn.q) > 0 && tn.q[0].at <= until {
		e := heap.Pop(&tn.q).(ev)
		tn.now = e.at
		nd := tn.nodes[e.to]
		if !nd.Online() {
			continue
		}
		switch e.kind {
		case 0:
			nd.Receive(tn.now, e.from, e.msg)
		case 1:
			if nt := nd.NextTick(); nt < 0 || nt > tn.now {
				continue
			}
			nd.Tick(tn.now)
		case 2:
			nd.FetchDone(tn.now, e.qid, true, 1000)
		case 3:
			nd.Delivered(tn.now, e.qid, e.from, true, 1000)
		}
		tn.drain(e.to)
	}
	tn.now = until
}

func (tn *testNet) offline(i int) {
	tn.nodes[i].GoOffline(tn.now)
	tn.drain(i)
}

func (tn *testNet) online(i int) {
	tn.nodes[i].Reconnect(tn.now)
	tn.drain(i)
}

// directories returns, per key, the online nodes holding it.
func (tn *testNet) directories() map[ids.Key][]int {
	out := map[ids.Key][]int{}
	for i, nd := range tn.nodes {
		if !nd.Online() {
			continue
		}
		for _, k := range nd.DirKeys() {
			out[k] = append(out[k], i)
		}
	}
	return out
}

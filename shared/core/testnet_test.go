package core_test

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/registry"
)

// testNet is a small deterministic host for core tests, built on the host
// driver like every other host: fixed latencies, a bootstrap service made of
// the real registry (shared/registry) a round trip away, origin fetches that
// always succeed. Every message crosses the wire codec.
type testNet struct {
	t       *testing.T
	cfg     Config
	now     time.Duration
	nodes   []*Node
	drv     []*host.Driver
	byID    map[ids.PeerID]int
	q       evHeap
	seq     uint64
	rnd     *rand.Rand
	answers map[qkey]Answer
	at      map[qkey]time.Duration // when each answer came
	served  []Serve
	reg     *registry.Registry
	regs    [][]host.Registration // what each node registered, as the registry has it
	msgs    int
	fetched map[[2]uint64]int // origin fetches per (site, object), when not nil
	// bootstrapDown: entry-point requests are never answered (the service
	// is unreachable and the host does not even notice).
	bootstrapDown bool
	// record, when set, sees every batch of outputs in order.
	record func(node int, what string)
}

const bootLat = 20 * time.Millisecond

type evKind uint8

const (
	evDeliver   evKind = iota // frame from `from` to node `to`
	evTick                    // node's timers
	evFetchDone               // origin fetch of qid done
	evObject                  // object of qid from `from` arrives
	evEntries                 // bootstrap answer arrives
	evRegister                // registration set reaches the bootstrap
)

type ev struct {
	at    time.Duration
	seq   uint64
	kind  evKind
	to    int
	from  ids.PeerID
	frame []byte
	qid   uint64
	req   EntryRequest
	ent   *Entries // evEntries: nil while the request travels to the service
	regs  []host.Registration
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

// env is node i's side of the test network: the host.Env implementation.
type env struct {
	tn *testNet
	i  int
}

func (e env) Send(to ids.PeerID, frame []byte) {
	tn := e.tn
	j, ok := tn.byID[to]
	if !ok {
		return
	}
	tn.msgs++
	tn.note(e.i, fmt.Sprintf("msg %s %x", to.Short(), frame))
	tn.push(ev{at: tn.now + tn.latency(e.i, j), kind: evDeliver, to: j, from: tn.nodes[e.i].ID(), frame: frame})
}

func (e env) Fetch(f Fetch) {
	tn := e.tn
	if tn.fetched != nil {
		tn.fetched[[2]uint64{uint64(f.Site), uint64(f.Obj)}]++
	}
	tn.note(e.i, fmt.Sprintf("fetch %+v", f))
	tn.push(ev{at: tn.now + 200*time.Millisecond, kind: evFetchDone, to: e.i, qid: f.QID})
}

func (e env) Serve(s Serve) {
	tn := e.tn
	tn.served = append(tn.served, s)
	tn.note(e.i, fmt.Sprintf("serve %+v", s))
	if j, ok := tn.byID[s.To]; ok {
		tn.push(ev{at: tn.now + tn.latency(e.i, j), kind: evObject, to: j, from: tn.nodes[e.i].ID(), qid: s.QID})
	}
}

func (e env) Evict(ev Evict) { e.tn.note(e.i, fmt.Sprintf("evict %+v", ev)) }

func (e env) Register(regs []host.Registration) {
	e.tn.note(e.i, fmt.Sprintf("register %+v", regs))
	e.tn.push(ev{at: e.tn.now + bootLat, kind: evRegister, to: e.i, regs: regs})
}

func (e env) Entries(req EntryRequest) {
	tn := e.tn
	tn.note(e.i, fmt.Sprintf("entries %+v", req))
	if tn.bootstrapDown {
		return
	}
	// The service answers from what was registered when the request
	// reaches it, one way later; the answer takes one way back.
	tn.push(ev{at: tn.now + bootLat, kind: evEntries, to: e.i, req: req})
}

func (e env) Answer(a Answer) {
	e.tn.answers[qkey{e.i, a.QID}] = a
	e.tn.at[qkey{e.i, a.QID}] = e.tn.now
	e.tn.note(e.i, fmt.Sprintf("answer %+v", a))
}

func (tn *testNet) note(i int, what string) {
	if tn.record != nil {
		tn.record(i, what)
	}
}

func newTestNet(t *testing.T, cfg Config, n int, seed uint64) *testNet {
	t.Helper()
	layout, err := keymgr.NewLayout(cfg.Localities, cfg.InstanceBits)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNet{t: t, cfg: cfg, byID: map[ids.PeerID]int{}, rnd: rand.New(rand.NewPCG(seed, 1)),
		answers: map[qkey]Answer{}, at: map[qkey]time.Duration{}, reg: registry.New(layout), regs: make([][]host.Registration, n)}
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
		tn.nodes = append(tn.nodes, nil)
		tn.drv = append(tn.drv, nil)
		tn.replace(i, nd)
	}
	return tn
}

// replace makes nd node i (a restored node after a restart).
func (tn *testNet) replace(i int, nd *Node) {
	e := env{tn, i}
	d, err := host.New(nd, host.Env{Transport: e, Origin: e, Objects: e, Bootstrap: e, Answerer: e}, host.Options{})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[i], tn.drv[i] = nd, d
}

func (tn *testNet) latency(a, b int) time.Duration {
	if tn.nodes[a].Locality() == tn.nodes[b].Locality() {
		return 10 * time.Millisecond
	}
	return 100 * time.Millisecond
}

func (tn *testNet) push(e ev) {
	tn.seq++
	e.seq = tn.seq
	heap.Push(&tn.q, e)
}

// after schedules node i's next tick after an input.
func (tn *testNet) after(i int) {
	if nt := tn.drv[i].NextTick(); nt >= 0 {
		tn.push(ev{at: max(nt, tn.now), kind: evTick, to: i})
	}
}

// qkey names a query: its originator and QID.
type qkey struct {
	node int
	qid  uint64
}

func (tn *testNet) query(i int, site ids.SiteID, obj ids.ObjectID) qkey {
	qid := tn.drv[i].Query(tn.now, site, obj)
	tn.after(i)
	return qkey{i, qid}
}

// register applies node i's new registration set to the registry.
func (tn *testNet) register(i int, regs []host.Registration) {
	id := tn.nodes[i].ID()
	host.DiffDirectories(tn.regs[i], regs, func(r host.Registration, added bool) {
		m := ids.Member{Key: r.Key, ID: id}
		if !added {
			tn.reg.Remove(m, 0)
		} else if err := tn.reg.Add(m, 0, 0); err != nil {
			tn.t.Fatal(err)
		}
	})
	tn.regs[i] = regs
}

// run processes events until time until.
func (tn *testNet) run(until time.Duration) {
	for len(tn.q) > 0 && tn.q[0].at <= until {
		e := heap.Pop(&tn.q).(ev)
		tn.now = e.at
		if e.kind == evRegister {
			tn.register(e.to, e.regs)
			continue
		}
		nd, d := tn.nodes[e.to], tn.drv[e.to]
		if !nd.Online() {
			continue
		}
		switch e.kind {
		case evDeliver:
			if err := d.Receive(tn.now, e.from, e.frame); err != nil {
				tn.t.Fatalf("node %d: %v", e.to, err)
			}
		case evTick:
			if nt := d.NextTick(); nt < 0 || nt > tn.now {
				continue
			}
			d.Tick(tn.now)
		case evFetchDone:
			d.FetchDone(tn.now, e.qid, true, Object{Size: 1000})
		case evObject:
			d.Delivered(tn.now, e.qid, e.from, Object{Size: 1000})
		case evEntries:
			if e.ent == nil {
				// The request reached the service: it answers from what
				// was registered by now.
				a := tn.reg.Entries(registry.Query{Site: e.req.Site, Loc: e.req.Loc, N: e.req.N, Exclude: nd.ID()}, tn.rnd, 0)
				tn.push(ev{at: tn.now + bootLat, kind: evEntries, to: e.to,
					ent: &Entries{Site: e.req.Site, Local: a.Local, Remote: a.Remote, Random: a.Random}})
				continue
			}
			d.SetEntries(tn.now, *e.ent)
		}
		tn.after(e.to)
	}
	tn.now = until
}

func (tn *testNet) offline(i int) {
	tn.drv[i].GoOffline(tn.now)
}

func (tn *testNet) online(i int) {
	tn.drv[i].Reconnect(tn.now)
	tn.after(i)
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

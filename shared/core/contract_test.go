package core_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
	"github.com/flowercdn/flower/shared/wire"
)

// lone is one node driven by hand: the test plays every other party.
type lone struct {
	t    *testing.T
	n    *Node
	site ids.SiteID
	now  time.Duration
}

func newLone(t *testing.T, cfg Config) *lone {
	t.Helper()
	n, err := New(cfg, pid(1), 0, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	l := &lone{t: t, n: n, site: ids.SiteOf("https://a.example")}
	n.AddInterest(0, l.site)
	n.Advance()
	return l
}

func pid(i byte) ids.PeerID { return ids.PeerID{i, 0xee} }

// take returns the node's outputs and advances it.
func (l *lone) take() Ready {
	r := *l.n.Ready()
	out := Ready{
		Msgs: slices.Clone(r.Msgs), Answers: slices.Clone(r.Answers), Fetches: slices.Clone(r.Fetches),
		Serves: slices.Clone(r.Serves), Evicts: slices.Clone(r.Evicts), Roles: slices.Clone(r.Roles),
		EntryReqs: slices.Clone(r.EntryReqs), Persist: r.Persist,
	}
	l.n.Advance()
	return out
}

// tick runs every timer due up to until, one Tick per due time.
func (l *lone) tick(until time.Duration) []Ready {
	var out []Ready
	for {
		nt := l.n.NextTick()
		if nt < 0 || nt > until {
			break
		}
		l.now = max(l.now, nt)
		l.n.Tick(l.now)
		out = append(out, l.take())
	}
	l.now = until
	return out
}

// content makes the node a content peer of its petal with directory dir
// and one contact that may hold obj.
func (l *lone) content(dir, contact ids.PeerID, obj ids.ObjectID) {
	l.t.Helper()
	key := l.n.Layout().Key(l.site, 0, 0)
	l.n.Receive(l.now, dir, &wire.InitView{Site: l.site, Dir: wire.DirInfo{Member: ids.Member{Key: key, ID: dir}, Gen: 1},
		View: []wire.Contact{{ID: contact}}})
	f := bloom.NewWithEstimates(100, 0.01)
	summary.AddTo(f, []ids.ObjectID{obj})
	l.n.Receive(l.now, contact, &wire.Shuffle{Site: l.site, View: []wire.Contact{{ID: contact}}, Summary: f})
	l.take()
	if r := l.n.Role(l.site); r != RoleContent {
		l.t.Fatalf("role %v, want content", r)
	}
}

func queriesTo(r Ready, to ids.PeerID, mode wire.QueryMode) int {
	n := 0
	for _, e := range r.Msgs {
		if q, ok := e.Msg.(*wire.Query); ok && e.To == to && q.Mode == mode {
			n++
		}
	}
	return n
}

// Defect: RemoveInterest with a query in flight, then FetchDone, Delivered or
// the query's timeout read the site peer that is gone.
func TestRemoveInterestWithQueryInFlight(t *testing.T) {
	for _, then := range []string{"FetchDone", "Delivered", "timeout", "DeliveryFailed"} {
		t.Run(then, func(t *testing.T) {
			l := newLone(t, DefaultConfig())
			obj := ids.ObjectOf("https://a.example/x")
			l.content(pid(2), pid(3), obj)
			qid := l.n.Query(l.now, l.site, obj)
			r := l.take()
			if queriesTo(r, pid(3), wire.QAsk) != 1 {
				t.Fatalf("query not sent to the contact: %+v", r.Msgs)
			}
			if then == "FetchDone" {
				// Move the query to the origin first.
				l.n.Unreachable(l.now, pid(3))
				l.n.Unreachable(l.now, pid(2))
				if r := l.take(); len(r.Fetches) != 1 {
					t.Fatalf("no origin fetch: %+v", r)
				}
			}
			l.n.RemoveInterest(l.now, l.site)
			r = l.take()
			if len(r.Answers) != 1 || r.Answers[0].QID != qid || !r.Answers[0].Aborted {
				t.Fatalf("RemoveInterest answers %+v, want the query aborted", r.Answers)
			}
			switch then {
			case "FetchDone":
				l.n.FetchDone(l.now, qid, true, Object{Size: 10})
			case "Delivered":
				l.n.Delivered(l.now, qid, pid(3), Object{Size: 10})
			case "DeliveryFailed":
				l.n.DeliveryFailed(l.now, qid, pid(3), FailBadObject)
			case "timeout":
				l.tick(l.now + time.Minute)
			}
			if r := l.take(); len(r.Answers) != 0 || l.n.CacheLen(l.site) != 0 {
				t.Fatalf("after RemoveInterest: answers %+v, cache %d", r.Answers, l.n.CacheLen(l.site))
			}
		})
	}
}

// Defect: Validate accepted SummaryMinInterval = 0, a timer period, so Tick
// never returned. Every duration, period, count and size is validated: each
// numeric field is set to zero and to a negative value.
func TestConfigValidatesEveryField(t *testing.T) {
	// Fields where zero means something: no PetalUp instances, no petal
	// contact asked, no join jitter, no lookup retry, an unbounded cache.
	zeroOK := map[string]bool{"InstanceBits": true, "QueryTries": true, "JoinJitter": true, "LookupRetries": true, "CacheBytes": true}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		for _, v := range []float64{0, -1} {
			c := DefaultConfig()
			fv := reflect.ValueOf(&c).Elem().Field(i)
			switch fv.Kind() {
			case reflect.Int, reflect.Int64:
				fv.SetInt(int64(v))
			case reflect.Float64:
				fv.SetFloat(v)
			case reflect.Bool:
				continue // both values are valid
			default:
				t.Fatalf("field %s of kind %s: extend this test", f.Name, fv.Kind())
			}
			err := c.Validate()
			switch {
			case v == 0 && zeroOK[f.Name]:
				if err != nil {
					t.Errorf("%s = 0 rejected: %v", f.Name, err)
				}
			case err == nil:
				t.Errorf("%s = %v accepted", f.Name, v)
			case !strings.Contains(err.Error(), f.Name):
				t.Errorf("%s = %v: error %q does not name the field", f.Name, v, err)
			}
		}
	}
}

// Defect: Stats handed out the node's own map.
func TestStatsIsACopy(t *testing.T) {
	l := newLone(t, DefaultConfig())
	st := l.n.Stats()
	st.Origin["forged"] = 42
	if l.n.Stats().Origin["forged"] != 0 {
		t.Fatal("Stats returned the node's own map")
	}
}

// Defect: a query waiting for entry points had no timeout (NextTick -1), and
// an empty SetEntryPoints, the only answer a host with a dead bootstrap could
// give, made the node found a new D-ring.
func TestBootstrapUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	l := newLone(t, cfg)
	obj := ids.ObjectOf("https://a.example/y")
	qid := l.n.Query(l.now, l.site, obj)
	r := l.take()
	if len(r.EntryReqs) != 1 || r.EntryReqs[0].Site != l.site {
		t.Fatalf("a new client asks the bootstrap service for its petal: %+v", r.EntryReqs)
	}
	if nt := l.n.NextTick(); nt < 0 || nt > cfg.EntryTimeout {
		t.Fatalf("NextTick %v while a query waits for the bootstrap service", nt)
	}
	// The service never answers: the query goes to the origin after
	// EntryTimeout, and no ring is founded.
	var fetched bool
	for _, b := range l.tick(cfg.EntryTimeout) {
		fetched = fetched || slices.ContainsFunc(b.Fetches, func(f Fetch) bool { return f.QID == qid })
	}
	if !fetched {
		t.Fatal("query did not go to the origin once the entry request timed out")
	}
	l.n.FetchDone(l.now, qid, true, Object{Size: 5})
	if r := l.take(); len(r.Answers) != 1 || r.Answers[0].Source != SourceOrigin {
		t.Fatalf("answers %+v", r.Answers)
	}
	if len(l.n.DirKeys()) != 0 || l.n.Stats().EntryFailures != 1 {
		t.Fatalf("positions %v, entry failures %d", l.n.DirKeys(), l.n.Stats().EntryFailures)
	}
	// While the node backs off, a query that needs the service goes to the
	// origin at once; so does one whose request the host reports failed.
	q2 := l.n.Query(l.now, l.site, ids.ObjectOf("https://a.example/z"))
	if r := l.take(); len(r.EntryReqs) != 0 || len(r.Fetches) != 1 || r.Fetches[0].QID != q2 {
		t.Fatalf("during backoff: %+v", r)
	}
	l.tick(l.now + cfg.EntryRetryMax*2)
	q3 := l.n.Query(l.now, l.site, ids.ObjectOf("https://a.example/w"))
	r = l.take()
	if len(r.EntryReqs) != 1 {
		t.Fatalf("after the backoff the service is asked again: %+v", r)
	}
	l.n.EntriesFailed(l.now, r.EntryReqs[0].Site)
	if r := l.take(); len(r.Fetches) != 1 || r.Fetches[0].QID != q3 || len(l.n.DirKeys()) != 0 {
		t.Fatalf("after EntriesFailed: %+v, positions %v", r, l.n.DirKeys())
	}
	// Only an explicit empty answer founds D-ring.
	l.tick(l.now + cfg.EntryRetryMax*2)
	q4 := l.n.Query(l.now, l.site, ids.ObjectOf("https://a.example/v"))
	r = l.take()
	if len(r.EntryReqs) != 1 {
		t.Fatalf("entry request %+v", r.EntryReqs)
	}
	l.n.SetEntries(l.now, Entries{Site: r.EntryReqs[0].Site})
	r = l.take()
	if len(l.n.DirKeys()) != 1 || l.n.Role(l.site) != RoleDirectory {
		t.Fatalf("an explicit empty answer: positions %v role %v", l.n.DirKeys(), l.n.Role(l.site))
	}
	if !slices.ContainsFunc(r.Fetches, func(f Fetch) bool { return f.QID == q4 }) {
		t.Fatalf("query of the founder: %+v", r)
	}
}

// TestNetworkWithoutBootstrap: a network whose bootstrap service never
// answers still ends every query, from the origin, within a bounded time,
// and nobody founds a ring.
func TestNetworkWithoutBootstrap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 2
	tn := newTestNet(t, cfg, 12, 4)
	tn.bootstrapDown = true
	site := ids.SiteOf("https://a.example")
	var qs []qkey
	issued := map[qkey]time.Duration{}
	for round := 0; round < 5; round++ {
		for i := range tn.nodes {
			q := tn.query(i, site, ids.ObjectID(tn.rnd.IntN(5)))
			qs = append(qs, q)
			issued[q] = tn.now
			tn.run(tn.now + 300*time.Millisecond)
		}
	}
	tn.run(tn.now + time.Minute)
	bound := cfg.EntryTimeout + time.Second
	for _, q := range qs {
		a, ok := tn.answers[q]
		if !ok {
			t.Fatalf("query %+v never answered", q)
		}
		if a.Source == SourcePeer {
			t.Fatalf("query %+v answered by a peer without any petal", q)
		}
		if took := tn.at[q] - issued[q]; took > bound {
			t.Fatalf("query %+v took %v, more than %v", q, took, bound)
		}
	}
	if d := tn.directories(); len(d) != 0 {
		t.Fatalf("a ring was founded without the bootstrap service: %v", d)
	}
	for i, nd := range tn.nodes {
		if st := nd.Stats(); st.EntryFailures == 0 {
			t.Errorf("node %d counted no entry failure", i)
		}
	}
}

// TestUnreachable: what waits on a peer the host reports unreachable fails at
// once instead of at its timeout.
func TestUnreachable(t *testing.T) {
	l := newLone(t, DefaultConfig())
	obj := ids.ObjectOf("https://a.example/x")
	dir, contact := pid(2), pid(3)
	l.content(dir, contact, obj)
	qid := l.n.Query(l.now, l.site, obj)
	if r := l.take(); queriesTo(r, contact, wire.QAsk) != 1 {
		t.Fatalf("not asked of the contact: %+v", r.Msgs)
	}
	l.n.Unreachable(l.now, contact)
	r := l.take()
	if queriesTo(r, dir, wire.QDir) != 1 {
		t.Fatalf("after the contact became unreachable the query should go to the directory at once: %+v", r.Msgs)
	}
	if v := l.n.Snapshot().Sites[0].View; slices.ContainsFunc(v, func(c wire.Contact) bool { return c.ID == contact }) {
		t.Fatalf("unreachable contact still in the view: %v", v)
	}
	l.n.Unreachable(l.now, dir)
	r = l.take()
	if len(r.Fetches) != 1 || r.Fetches[0].QID != qid {
		t.Fatalf("after the directory became unreachable the query should go to the origin: %+v", r)
	}
	if l.n.Stats().Origin["dir_unreachable"] != 1 {
		t.Fatalf("origin reasons %v", l.n.Stats().Origin)
	}
	// The content peer replaces its directory (tryJoin), through the
	// bootstrap service since it holds no D-ring position.
	if len(r.EntryReqs) != 1 {
		t.Fatalf("no tryJoin after the directory became unreachable: %+v", r)
	}
	if nt := l.n.NextTick(); nt < 0 {
		t.Fatal("no timer pending")
	}
}

// TestDeliveryFailed: a broken transfer moves the query on; a bad object
// makes the node avoid its sender.
func TestDeliveryFailed(t *testing.T) {
	l := newLone(t, DefaultConfig())
	obj := ids.ObjectOf("https://a.example/x")
	dir, contact := pid(2), pid(3)
	l.content(dir, contact, obj)
	qid := l.n.Query(l.now, l.site, obj)
	l.take()
	l.n.DeliveryFailed(l.now, qid, contact, FailTransfer)
	if r := l.take(); queriesTo(r, dir, wire.QDir) != 1 {
		t.Fatalf("a broken transfer from the contact should move the query to the directory: %+v", r.Msgs)
	}
	// The directory's holder sends bytes that fail verification.
	holder := pid(4)
	l.n.DeliveryFailed(l.now, qid, holder, FailBadObject)
	if r := l.take(); len(r.Fetches) != 1 || r.Fetches[0].QID != qid {
		t.Fatalf("after a bad object the query goes to the origin: %+v", r)
	}
	// The bad sender is avoided: gossip does not bring it back.
	l.n.Receive(l.now, contact, &wire.Shuffle{Site: l.site, View: []wire.Contact{{ID: holder}, {ID: contact}}})
	l.take()
	l.n.Receive(l.now, dir, &wire.InitView{Site: l.site, View: []wire.Contact{{ID: holder}}})
	l.take()
	if got := l.n.Snapshot().Sites[0].View; slices.ContainsFunc(got, func(c wire.Contact) bool { return c.ID == holder }) {
		t.Fatalf("avoided peer back in the view: %v", got)
	}
}

// TestObjectExpiryAndVersion: the cache honours the expiry and version the
// host reports with FetchDone and Delivered.
func TestObjectExpiryAndVersion(t *testing.T) {
	cfg := DefaultConfig()
	l := newLone(t, cfg)
	l.n.SetEntries(0, Entries{}) // not asked: ignored
	obj := ids.ObjectOf("https://a.example/x")
	l.content(pid(2), pid(3), obj)
	other := ids.ObjectOf("https://a.example/other")
	fetch := func(o ids.ObjectID, meta Object) {
		t.Helper()
		qid := l.n.Query(l.now, l.site, o)
		l.take()
		l.n.Unreachable(l.now, pid(3))
		l.n.Unreachable(l.now, pid(2))
		l.take()
		l.n.FetchDone(l.now, qid, true, meta)
		l.take()
		l.content(pid(2), pid(3), obj) // back in the petal for the next one
	}
	fetch(other, Object{Size: 10, Expires: l.now + 90*time.Second, Version: 3})
	if l.n.CacheLen(l.site) != 1 {
		t.Fatalf("fresh object not cached")
	}
	// A local hit while fresh.
	qid := l.n.Query(l.now, l.site, other)
	if r := l.take(); len(r.Answers) != 1 || r.Answers[0].QID != qid || r.Answers[0].Source != SourceLocal {
		t.Fatalf("fresh object: %+v", r.Answers)
	}
	// The keepalive sweep evicts it once it expired, before anyone asks.
	var evicted bool
	for _, b := range l.tick(l.now + 3*cfg.KeepalivePeriod) {
		evicted = evicted || slices.Contains(b.Evicts, Evict{Site: l.site, Obj: other})
	}
	if !evicted || l.n.CacheLen(l.site) != 0 {
		t.Fatalf("expired object: evicted %v, cache %d", evicted, l.n.CacheLen(l.site))
	}
	// An object already expired on arrival is not cached.
	fetch(other, Object{Size: 10, Expires: l.now})
	if l.n.CacheLen(l.site) != 0 {
		t.Fatal("stale object cached")
	}
	// A newer version is kept; an older one does not replace it.
	fetch(other, Object{Size: 10, Version: 7})
	fetch(other, Object{Size: 20, Version: 5}) // the query is a local hit: nothing fetched
	st := l.n.Snapshot()
	if len(st.Sites[0].Objects) != 1 || st.Sites[0].Objects[0].Version != 7 {
		t.Fatalf("stored %+v", st.Sites[0].Objects)
	}
	l.n.Invalidate(l.now, l.site, other)
	if r := l.take(); len(r.Evicts) != 1 || l.n.CacheLen(l.site) != 0 {
		t.Fatalf("Invalidate: %+v", r.Evicts)
	}
}

// TestReadyDeterminism: two runs of one scenario with one seed produce the
// same sequence of Ready batches (every output, in order, messages byte for
// byte).
func TestReadyDeterminism(t *testing.T) {
	run := func() []string {
		cfg := DefaultConfig()
		cfg.Localities = 3
		tn := newTestNet(t, cfg, 30, 11)
		var log []string
		tn.record = func(i int, what string) { log = append(log, fmt.Sprintf("%v %d %s", tn.now, i, what)) }
		sites := []ids.SiteID{ids.SiteOf("https://a.example"), ids.SiteOf("https://b.example")}
		for step := 0; step < 600; step++ {
			i := tn.rnd.IntN(len(tn.nodes))
			switch r := tn.rnd.IntN(100); {
			case r < 3:
				if tn.nodes[i].Online() {
					tn.offline(i)
				} else {
					tn.online(i)
				}
			case tn.nodes[i].Online():
				tn.query(i, sites[i%2], ids.ObjectID(tn.rnd.IntN(30)))
			}
			tn.run(tn.now + 200*time.Millisecond)
		}
		tn.run(tn.now + 5*time.Minute)
		return log
	}
	a, b := run(), run()
	if len(a) < 5000 {
		t.Fatalf("only %d outputs: the scenario does too little", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("runs differ at output %d of %d/%d: %q vs %q", i, len(a), len(b), a[i], b[i])
			}
		}
		t.Fatalf("runs differ in length: %d vs %d", len(a), len(b))
	}
}

// TestReceiving: once the object is on its way the query waits for the
// transfer, not for its stage timer; a broken transfer moves it on, and so
// does the sender becoming unreachable.
func TestReceiving(t *testing.T) {
	cfg := DefaultConfig()
	l := newLone(t, cfg)
	obj := ids.ObjectOf("https://a.example/x")
	dir, contact := pid(2), pid(3)
	l.content(dir, contact, obj)
	qid := l.n.Query(l.now, l.site, obj)
	l.take()
	l.now += 5 * time.Millisecond
	l.n.Receiving(l.now, qid, contact)
	l.take()
	// Far past the request timeout: nothing happens to the query.
	for _, r := range l.tick(l.now + 3*cfg.RequestTimeout) {
		if queriesTo(r, dir, wire.QDir) != 0 || len(r.Fetches) != 0 || len(r.Answers) != 0 {
			t.Fatalf("the query moved on while its object was arriving: %+v", r)
		}
	}
	l.now += 3 * cfg.RequestTimeout
	l.n.Delivered(l.now, qid, contact, Object{Size: 1 << 20})
	r := l.take()
	if len(r.Answers) != 1 || r.Answers[0].Source != SourcePeer || r.Answers[0].Provider != contact {
		t.Fatalf("answers %+v", r.Answers)
	}
	// The RTT sample is the time to the first byte, not the transfer: the
	// next request to the contact times out after a few RTTs, well under
	// the default timeout.
	other := ids.ObjectOf("https://a.example/y")
	l.content(dir, contact, other)
	qid = l.n.Query(l.now, l.site, other)
	if r := l.take(); queriesTo(r, contact, wire.QAsk) != 1 {
		t.Fatalf("not asked of the contact: %+v", r.Msgs)
	}
	moved := false
	for _, r := range l.tick(l.now + 2*cfg.MinTimeout) {
		moved = moved || queriesTo(r, dir, wire.QDir) == 1
	}
	if !moved {
		t.Fatalf("the contact's timeout should follow its 5 ms RTT (floor %v), not the 3 s transfer", cfg.MinTimeout)
	}
	// A transfer whose sender becomes unreachable ends the wait.
	l2 := newLone(t, cfg)
	l2.content(dir, contact, obj)
	qid = l2.n.Query(l2.now, l2.site, obj)
	l2.take()
	l2.n.Receiving(l2.now, qid, contact)
	l2.take()
	l2.n.Unreachable(l2.now, contact)
	if r := l2.take(); queriesTo(r, dir, wire.QDir) != 1 {
		t.Fatalf("sender unreachable mid-transfer: the query should go to the directory: %+v", r.Msgs)
	}
	// The directory forwards to a holder, whose transfer breaks off: origin.
	holder := pid(4)
	l2.n.Receiving(l2.now, qid, holder)
	l2.n.Unreachable(l2.now, dir) // the old target: no effect on the transfer
	if r := l2.take(); len(r.Fetches) != 0 {
		t.Fatalf("the directory leaving ended a transfer from a holder: %+v", r)
	}
	l2.n.DeliveryFailed(l2.now, qid, holder, FailTransfer)
	if r := l2.take(); len(r.Fetches) != 1 || r.Fetches[0].QID != qid {
		t.Fatalf("a broken transfer from a holder goes to the origin: %+v", r)
	}
	if l2.n.Stats().Origin["transfer_failed"] != 1 {
		t.Fatalf("origin reasons %v", l2.n.Stats().Origin)
	}
}

// TestPrivateObjectNotCached: an origin object the host may not share
// answers the query but never enters the cache, and waiting peers get a
// Miss.
func TestPrivateObjectNotCached(t *testing.T) {
	l := newLone(t, DefaultConfig())
	obj := ids.ObjectOf("https://a.example/private")
	l.content(pid(2), pid(3), obj)
	qid := l.n.Query(l.now, l.site, obj)
	l.take()
	l.n.Unreachable(l.now, pid(3))
	l.n.Unreachable(l.now, pid(2))
	if r := l.take(); len(r.Fetches) != 1 {
		t.Fatalf("no origin fetch: %+v", r)
	}
	// Another peer asks for it while it is being fetched.
	asker := pid(9)
	l.n.Receive(l.now, asker, &wire.Query{QID: 77, Site: l.site, Obj: obj, Origin: asker, Mode: wire.QAsk, Hops: 1})
	if r := l.take(); len(r.Msgs) != 0 {
		t.Fatalf("the query should wait for the fetch: %+v", r.Msgs)
	}
	l.n.FetchDone(l.now, qid, true, Object{Size: 10, Private: true})
	r := l.take()
	if len(r.Answers) != 1 || r.Answers[0].Source != SourceOrigin || r.Answers[0].Failed {
		t.Fatalf("answers %+v", r.Answers)
	}
	if l.n.CacheLen(l.site) != 0 || len(r.Serves) != 0 {
		t.Fatalf("private object cached (%d) or served (%+v)", l.n.CacheLen(l.site), r.Serves)
	}
	missed := false
	for _, e := range r.Msgs {
		if m, ok := e.Msg.(*wire.Miss); ok && e.To == asker && m.QID == 77 {
			missed = true
		}
	}
	if !missed {
		t.Fatalf("the waiting peer got no Miss: %+v", r.Msgs)
	}
}

// TestCached: an object the host got outside a query (the browser's
// service worker fetched it) is cached and pushed like an origin fetch;
// private objects and older versions are refused.
func TestCached(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PushThreshold = 1
	l := newLone(t, cfg)
	obj := ids.ObjectOf("https://a.example/img/1.jpg")
	l.n.Cached(l.now, l.site, ids.ObjectOf("https://a.example/secret"), Object{Size: 10, Private: true})
	if l.n.CacheLen(l.site) != 0 {
		t.Fatal("a private object was cached")
	}
	l.n.Cached(l.now, l.site, obj, Object{Size: 100, Version: 2})
	if l.n.CacheLen(l.site) != 1 {
		t.Fatalf("cache holds %d objects, want 1", l.n.CacheLen(l.site))
	}
	if v, ok := l.n.CachedVersion(l.site, obj); !ok || v != 2 {
		t.Fatalf("cached version %d %v, want 2", v, ok)
	}
	l.n.Cached(l.now, l.site, obj, Object{Size: 100, Version: 1})
	if v, _ := l.n.CachedVersion(l.site, obj); v != 2 {
		t.Fatalf("an older version replaced version 2 (now %d)", v)
	}
	r := l.take()
	if !r.Persist {
		t.Fatal("the state was not marked for saving")
	}
	listed := false
	for _, ss := range l.n.Snapshot().Sites {
		for _, o := range ss.Objects {
			listed = listed || o.Obj == obj
		}
	}
	if !listed {
		t.Fatal("the snapshot does not list the cached object")
	}
}

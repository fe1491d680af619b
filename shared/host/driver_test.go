package host

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// rec is a host that records what the driver asks of it.
type rec struct {
	frames   [][]byte
	msgs     []wire.Msg
	fetches  []core.Fetch
	serves   []core.Serve
	evicts   []core.Evict
	regs     [][]Registration
	entries  []core.EntryRequest
	answers  []core.Answer
	persists int
	onAnswer func()
}

func (r *rec) Send(to ids.PeerID, b []byte)  { r.frames = append(r.frames, b) }
func (r *rec) Fetch(f core.Fetch)            { r.fetches = append(r.fetches, f) }
func (r *rec) Serve(s core.Serve)            { r.serves = append(r.serves, s) }
func (r *rec) Evict(e core.Evict)            { r.evicts = append(r.evicts, e) }
func (r *rec) Register(regs []Registration)  { r.regs = append(r.regs, regs) }
func (r *rec) Entries(req core.EntryRequest) { r.entries = append(r.entries, req) }
func (r *rec) Persist(core.State)            { r.persists++ }
func (r *rec) Answer(a core.Answer) {
	r.answers = append(r.answers, a)
	if r.onAnswer != nil {
		r.onAnswer()
	}
}

// msgRec is a MsgTransport.
type msgRec struct{ rec }

func (r *msgRec) SendMsg(to ids.PeerID, m wire.Msg) { r.msgs = append(r.msgs, m) }

func newNode(t *testing.T, id byte) *core.Node {
	t.Helper()
	n, err := core.New(core.DefaultConfig(), ids.PeerID{id, 1}, 2, rand.New(rand.NewPCG(1, uint64(id))))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newDriver(t *testing.T, r *rec, opt Options) *Driver {
	t.Helper()
	d, err := New(newNode(t, 1), Env{Transport: r, Origin: r, Objects: r, Bootstrap: r, Persister: r, Answerer: r}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var site = ids.SiteOf("https://a.example")

// founder makes the driven node found D-ring: its query asks the bootstrap
// service, which answers that the ring is empty.
func founder(t *testing.T, d *Driver, r *rec) uint64 {
	t.Helper()
	qid := d.Query(0, site, 7)
	if len(r.entries) != 1 || r.entries[0].Site != site || r.entries[0].Loc != 2 {
		t.Fatalf("entry requests %+v", r.entries)
	}
	d.SetEntries(time.Millisecond, core.Entries{Site: site})
	if d.Node().Role(site) != core.RoleDirectory {
		t.Fatalf("role %v", d.Node().Role(site))
	}
	return qid
}

func TestNewChecksEnv(t *testing.T) {
	r := &rec{}
	if _, err := New(nil, Env{Transport: r, Origin: r, Objects: r, Bootstrap: r, Answerer: r}, Options{}); err == nil {
		t.Error("nil node accepted")
	}
	if _, err := New(newNode(t, 1), Env{Transport: r, Origin: r, Objects: r, Answerer: r}, Options{}); err == nil {
		t.Error("Env without Bootstrap accepted")
	}
}

func TestRegistrationsFollowRoles(t *testing.T) {
	r := &rec{}
	d := newDriver(t, r, Options{})
	qid := founder(t, d, r)
	key := d.Node().DirKeys()[0]
	want := []Registration{{Site: site, Loc: 2, Role: core.RoleDirectory, Key: key}}
	if len(r.regs) == 0 || !slices.Equal(r.regs[len(r.regs)-1], want) {
		t.Fatalf("registrations %+v, want last %+v", r.regs, want)
	}
	if len(r.fetches) != 1 || r.fetches[0].QID != qid {
		t.Fatalf("fetches %+v", r.fetches)
	}
	if r.persists == 0 {
		t.Error("role change not persisted")
	}
	// Offline: nobody's entry point any more; back: the set again (the
	// position is being reclaimed, so content until it is).
	n := len(r.regs)
	d.GoOffline(time.Second)
	if len(r.regs) != n+1 || r.regs[n] != nil {
		t.Fatalf("going offline registered %+v", r.regs[n:])
	}
	d.Reconnect(2 * time.Second)
	last := r.regs[len(r.regs)-1]
	if len(last) != 1 || last[0].Site != site || last[0].Role != core.RoleContent {
		t.Fatalf("after reconnect %+v", last)
	}
	d.RemoveInterest(3*time.Second, site)
	if last := r.regs[len(r.regs)-1]; len(last) != 0 {
		t.Fatalf("after RemoveInterest %+v", last)
	}
}

func TestMessagesAreEncoded(t *testing.T) {
	r := &rec{}
	d := newDriver(t, r, Options{})
	founder(t, d, r)
	// A peer's query for an object the founder does not hold: NotFound.
	q := &wire.Query{QID: 9, Site: site, Obj: 8, Origin: ids.PeerID{5}, Key: d.Node().DirKeys()[0], Mode: wire.QDir, Hops: 1}
	frame, err := wire.Encode(q)
	if err != nil {
		t.Fatal(err)
	}
	before := len(r.frames)
	if err := d.Receive(time.Second, ids.PeerID{5}, frame); err != nil {
		t.Fatal(err)
	}
	if len(r.frames) != before+1 {
		t.Fatalf("no answer sent")
	}
	m, err := wire.Decode(r.frames[before])
	if err != nil {
		t.Fatalf("the driver sent a frame that does not decode: %v", err)
	}
	if nf, ok := m.(*wire.NotFound); !ok || nf.QID != 9 {
		t.Fatalf("answer %#v", m)
	}
	// Garbage from a peer is refused and counted; the node is untouched.
	if err := d.Receive(time.Second, ids.PeerID{5}, []byte{1, 200, 3}); err == nil {
		t.Error("a bad frame was accepted")
	}
	if st := d.Stats(); st.BadFrames != 1 || st.MsgsReceived != 1 || st.MsgsSent < 1 || st.BytesSent == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMsgTransport(t *testing.T) {
	for _, encode := range []bool{false, true} {
		r := &msgRec{}
		d, err := New(newNode(t, 1), Env{Transport: r, Origin: r, Objects: r, Bootstrap: r, Answerer: r}, Options{Encode: encode})
		if err != nil {
			t.Fatal(err)
		}
		founder(t, d, &r.rec)
		d.ReceiveMsg(time.Second, ids.PeerID{5}, &wire.Ping{ReqID: 3})
		if encode && (len(r.frames) != 1 || len(r.msgs) != 0) || !encode && (len(r.msgs) != 1 || len(r.frames) != 0) {
			t.Errorf("encode=%v: %d frames, %d messages", encode, len(r.frames), len(r.msgs))
		}
	}
}

func TestReentrantCallPanics(t *testing.T) {
	r := &rec{}
	d := newDriver(t, r, Options{})
	r.onAnswer = func() { d.Tick(time.Hour) }
	defer func() {
		if v := recover(); !errors.Is(asErr(v), ErrReentrant) {
			t.Fatalf("recovered %v, want ErrReentrant", v)
		}
	}()
	founder(t, d, r)
	d.FetchDone(time.Second, r.fetches[0].QID, true, core.Object{Size: 1})
	t.Fatal("no panic")
}

func asErr(v any) error {
	err, _ := v.(error)
	return err
}

func TestDiffDirectories(t *testing.T) {
	a := Registration{Site: 1, Role: core.RoleDirectory, Key: 10}
	b := Registration{Site: 2, Role: core.RoleDirectory, Key: 20}
	c := Registration{Site: 3, Role: core.RoleContent}
	b2 := Registration{Site: 2, Role: core.RoleDirectory, Key: 21} // another instance key
	var got []string
	DiffDirectories([]Registration{a, b, c}, []Registration{b2, c, a}, func(r Registration, added bool) {
		got = append(got, fmt.Sprintf("%v %d", added, r.Key))
	})
	if want := []string{"false 20", "true 21"}; !slices.Equal(got, want) {
		t.Fatalf("diff %v, want %v", got, want)
	}
}

// A restored content peer declares its role when it comes back online,
// although rejoining its petal changes no role (it was content and stays
// content).
func TestRestoredContentPeerRegisters(t *testing.T) {
	st := core.State{Sites: []core.SiteState{{Site: site, Role: core.RoleContent, View: []wire.Contact{{ID: ids.PeerID{9}}}}}}
	rn, err := core.Restore(core.DefaultConfig(), ids.PeerID{3, 1}, 2, rand.New(rand.NewPCG(1, 3)), st)
	if err != nil {
		t.Fatal(err)
	}
	r := &rec{}
	rd, err := New(rn, Env{Transport: r, Origin: r, Objects: r, Bootstrap: r, Answerer: r}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rd.Reconnect(time.Second)
	want := []Registration{{Site: site, Loc: 2, Role: core.RoleContent}}
	if len(r.regs) == 0 || !slices.Equal(r.regs[len(r.regs)-1], want) {
		t.Fatalf("registrations after restore and reconnect %+v, want last %+v", r.regs, want)
	}
}

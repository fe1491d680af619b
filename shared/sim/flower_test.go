package sim

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
)

func TestHostRepairTracking(t *testing.T) {
	cfg := smallConfig()
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFlower(w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	site := w.SiteIDs[0]
	key := f.layout.Key(site, 1, 0)
	p1, p2 := int32(3), int32(4)
	pt1, pt2 := f.partOf(p1), f.partOf(p2)
	e1, e2 := nodeAs(pt1, p1), nodeAs(pt2, p2)
	at := func(d time.Duration) { pt1.now, pt2.now = d, d }
	dir := []host.Registration{{Site: site, Loc: 1, Role: core.RoleDirectory, Key: key}}
	content := []host.Registration{{Site: site, Loc: 1, Role: core.RoleContent}}
	// window ends after t: hand the window's registrations over and apply
	// those that reached the service by then.
	window := func(t time.Duration) {
		f.barrier()
		f.boot.applyUntil(t)
	}
	f.online[p1], f.online[p2] = true, true
	at(time.Second)
	e1.Register(dir)
	if n, _ := f.boot.reg.Counts(); n != 0 {
		t.Fatal("registry changed inside a window")
	}
	window(time.Second) // not arrived yet: one way to the service takes 30-80 ms
	if n, _ := f.boot.reg.Counts(); n != 0 {
		t.Fatal("registration applied before it reached the service")
	}
	window(time.Second + 80*time.Millisecond)
	if n, _ := f.boot.reg.Counts(); n != 1 || f.boot.holders[key] != 1 {
		t.Fatalf("position not registered: %d", n)
	}
	if e := f.boot.answer(pt2, w.PeerIDs[p2], core.EntryRequest{Site: site, Loc: 1, N: 4}); len(e.Local) != 1 ||
		e.Local[0] != (ids.Member{Key: key, ID: w.PeerIDs[p1]}) || len(e.Random) != 1 {
		t.Fatalf("entries = %+v", e)
	}
	if e := f.boot.answer(pt1, w.PeerIDs[p1], core.EntryRequest{Site: site, Loc: 1, N: 4}); !(e.Local == nil && e.Random == nil) {
		t.Fatalf("a node is offered itself as entry point: %+v", e)
	}
	// p1 fails at 10 s: the position is vacant until p2 takes it at 13.5 s.
	at(10 * time.Second)
	f.online[p1] = false
	e1.Register(nil)
	window(11 * time.Second)
	if n, _ := f.boot.reg.Counts(); n != 0 || f.boot.failures != 1 || len(f.boot.vacant) != 1 {
		t.Fatalf("failure not tracked: %d registered, failures %d", n, f.boot.failures)
	}
	at(13500 * time.Millisecond)
	e2.Register(dir)
	window(14 * time.Second)
	d := f.dirMetrics()
	// As the service sees it: from the failure's arrival to the repair's.
	want := float64(3500*time.Millisecond+w.BootLat(w.Loc[p2])-w.BootLat(w.Loc[p1])) / float64(time.Millisecond)
	if d.Repairs != 1 || math.Abs(d.RepairMsMean-want) > 0.001 || d.VacantAtEnd != 0 || d.PositionsEnd != 1 {
		t.Fatalf("repair metrics: %+v, want a repair of %.3f ms", d, want)
	}
	// A second holder of the same key is a conflict, not a new instance.
	f.online[p1] = true
	e1.Register(dir)
	window(15 * time.Second)
	if d := f.dirMetrics(); d.HolderConflicts != 1 || d.MaxHoldersPerKey != 2 || d.MaxInstancesPerPetal != 1 {
		t.Fatalf("conflict metrics: %+v", d)
	}
	// A voluntary step-down leaves no vacancy.
	e2.Register(content)
	e1.Register(content)
	window(16 * time.Second)
	if d := f.dirMetrics(); d.Failures != 1 || d.VacantAtEnd != 0 || d.PositionsEnd != 0 {
		t.Fatalf("step-down tracked as failure: %+v", d)
	}
}

// TestWireCodecTransparent: a run whose messages all cross the wire codec
// gives exactly the result of a run that hands them over decoded.
func TestWireCodecTransparent(t *testing.T) {
	cfg := smallConfig()
	cfg.Systems = []string{SysFlower}
	a := runJSON(t, cfg)
	cfg.Wire = true
	b := runJSON(t, cfg)
	// The echoed configuration differs in its "wire" field only.
	a = bytes.Replace(a, []byte(`"wire":false`), []byte(`"wire":true`), 1)
	if !bytes.Equal(a, b) {
		t.Fatalf("encoded and decoded runs differ:\n%s\n%s", firstDiff(a, b), firstDiff(b, a))
	}
}

// asNode is node p's Env, as its partition gives it to p's driver.
type asNode struct {
	pt *part
	p  int32
}

func nodeAs(pt *part, p int32) asNode { return asNode{pt, p} }

func (a asNode) Register(regs []host.Registration) {
	a.pt.cur = a.p
	a.pt.env.Register(regs)
}

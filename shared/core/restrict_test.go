package core_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// TestNoDirectoryHandsOver: a directory told NoDirectory gives its position
// up at once, naming a successor as a clean leave does; the petal follows
// the successor and keeps serving; the restricted node stays a content
// peer and never holds a position again, even when the successor leaves
// and the key must be taken anew.
func TestNoDirectoryHandsOver(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LeaveHandover = true
	tn, site, key, old := petalWithDir(t, cfg, 12, 7)
	tn.drv[old].SetRestrictions(tn.now, Restrictions{NoDirectory: true})
	tn.after(old)
	if got := tn.nodes[old].Restrictions(); !got.NoDirectory || got.NoServe {
		t.Fatalf("restrictions %+v", got)
	}
	if len(tn.nodes[old].DirKeys()) != 0 || tn.nodes[old].Role(site) != RoleContent {
		t.Fatalf("after NoDirectory: keys %v, role %v; want none, content", tn.nodes[old].DirKeys(), tn.nodes[old].Role(site))
	}
	tn.run(tn.now + 200*time.Millisecond)
	h := tn.directories()[key]
	if len(h) != 1 || h[0] == old {
		t.Fatalf("200 ms after the directory gave up, holders of its key: %v (old %d)", h, old)
	}
	succ := h[0]
	for i, nd := range tn.nodes {
		if i == succ {
			continue
		}
		if d := nd.DirInfo(site); d.Member.ID != tn.nodes[succ].ID() {
			t.Errorf("node %d dir-info %v, want the successor %d", i, d, succ)
		}
	}
	// The petal still serves the restricted node's object (it serves, it
	// only holds no position) and the others'.
	asker := (succ + 1) % len(tn.nodes)
	if asker == old {
		asker = (asker + 1) % len(tn.nodes)
	}
	tn.run(tn.now + time.Second)
	var qs []qkey
	for i := range tn.nodes {
		if i != asker {
			qs = append(qs, tn.query(asker, site, ids.ObjectID(i)))
			tn.run(tn.now + 300*time.Millisecond)
		}
	}
	tn.run(tn.now + 5*time.Second)
	for _, q := range qs {
		if a := tn.answers[q]; a.Source == SourceOrigin {
			t.Errorf("query %v after the handover went to the origin: %+v", q, a)
		}
	}
	// The successor leaves; whoever it names, the restricted node never
	// takes the key, and the petal gets a directory again.
	tn.offline(succ)
	for i := range tn.nodes {
		if i != succ {
			tn.query(i, site, ids.ObjectID(100+i))
			tn.run(tn.now + 2*time.Second)
		}
	}
	tn.run(tn.now + 3*time.Minute)
	h = tn.directories()[key]
	if len(h) != 1 || h[0] == old {
		t.Fatalf("after the successor left, holders of the key: %v (restricted node %d)", h, old)
	}
	if len(tn.nodes[old].DirKeys()) != 0 || tn.nodes[old].Role(site) != RoleContent {
		t.Fatalf("restricted node: keys %v, role %v", tn.nodes[old].DirKeys(), tn.nodes[old].Role(site))
	}
	checkRing(t, tn)
}

// TestNoDirectoryFounder: a node that may hold no position does not found
// D-ring when the bootstrap service says nobody is on it: its queries go
// to the origin and it stays a client; lifting the restriction lets the
// next query found it.
func TestNoDirectoryFounder(t *testing.T) {
	l := newLone(t, DefaultConfig())
	l.n.SetRestrictions(l.now, Restrictions{NoDirectory: true})
	l.take()
	for i := range 3 {
		l.now += time.Second
		l.n.Query(l.now, l.site, ids.ObjectID(i+1))
		r := l.take()
		l.n.SetEntries(l.now, Entries{Site: l.site}) // nobody on D-ring
		r2 := l.take()
		r.Fetches = append(r.Fetches, r2.Fetches...)
		if len(l.n.DirKeys()) != 0 || l.n.Role(l.site) != RoleClient {
			t.Fatalf("query %d: keys %v, role %v; want no position, client", i, l.n.DirKeys(), l.n.Role(l.site))
		}
		if len(r.Fetches) != 1 {
			t.Fatalf("query %d: fetches %+v, want the origin", i, r.Fetches)
		}
	}
	l.tick(l.now + 2*time.Minute)
	if len(l.n.DirKeys()) != 0 {
		t.Fatalf("after timers: keys %v", l.n.DirKeys())
	}
	l.n.SetRestrictions(l.now, Restrictions{})
	l.take()
	l.now += time.Second
	l.n.Query(l.now, l.site, ids.ObjectID(9))
	l.take()
	l.n.SetEntries(l.now, Entries{Site: l.site})
	l.take()
	if l.n.Role(l.site) != RoleDirectory {
		t.Fatalf("unrestricted: role %v, want directory", l.n.Role(l.site))
	}
}

// TestNoServe: a content peer under NoServe answers a query for an object
// it holds with a miss: the asker gets it from the origin at once, and the
// node serves nothing; lifting it serves again.
func TestNoServe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LeaveHandover = true
	tn, site, _, dir := petalWithDir(t, cfg, 6, 3)
	holder := (dir + 1) % len(tn.nodes)
	asker := (dir + 2) % len(tn.nodes)
	tn.drv[holder].SetRestrictions(tn.now, Restrictions{NoServe: true})
	tn.after(holder)
	served := len(tn.served)
	q := tn.query(asker, site, ids.ObjectID(holder))
	start := tn.now
	tn.run(tn.now + 5*time.Second)
	a := tn.answers[q]
	if a.Source != SourceOrigin || a.Failed {
		t.Fatalf("object of a NoServe peer: %+v, want the origin", a)
	}
	if took := tn.at[q] - start; took > time.Second {
		t.Errorf("the asker waited %v for a NoServe peer", took)
	}
	for _, s := range tn.served[served:] {
		if s.Obj == ids.ObjectID(holder) && s.To == tn.nodes[asker].ID() {
			// The origin answered; any serve of this object to the
			// asker would have come from the restricted node.
			t.Errorf("served under NoServe: %+v", s)
		}
	}
	tn.drv[holder].SetRestrictions(tn.now, Restrictions{})
	tn.after(holder)
	asker2 := (dir + 3) % len(tn.nodes)
	q = tn.query(asker2, site, ids.ObjectID(holder))
	tn.run(tn.now + 5*time.Second)
	if a := tn.answers[q]; a.Source == SourceOrigin {
		t.Errorf("after lifting NoServe: %+v, want a peer", a)
	}
}

// FuzzRestrictions drives a warm network (LeaveHandover on, as browser
// peers run) with restrictions switched on and off at random nodes, their
// queries, and well-formed messages from random peers: a node under
// NoDirectory never holds a position, one under NoServe serves nothing,
// and once every restriction is lifted the network heals as without them
// (every query answered, one directory per petal, a consistent ring).
func FuzzRestrictions(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 200, 3, 3, 0, 200, 7, 1, 5, 1, 2, 3, 4})
	f.Add([]byte{1, 5, 30, 2, 7, 100, 0, 1, 2, 0, 0, 6, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{3, 0, 0, 3, 1, 0, 3, 2, 0, 3, 3, 0, 3, 4, 0, 3, 5, 0, 200, 0, 9, 200, 0, 1, 7, 2, 0, 100})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		cfg := DefaultConfig()
		cfg.Localities = 2
		cfg.LeaveHandover = true
		tn := newTestNet(t, cfg, 12, 5)
		sites := []ids.SiteID{ids.SiteOf("https://a.example"), ids.SiteOf("https://b.example")}
		for i := range tn.nodes {
			tn.query(i, sites[i%2], ids.ObjectID(i%7))
			tn.run(tn.now + 200*time.Millisecond)
		}
		tn.run(tn.now + 2*time.Minute)
		tn.record = func(i int, what string) {
			if strings.HasPrefix(what, "serve ") && tn.nodes[i].Restrictions().NoServe {
				t.Fatalf("node %d serves under NoServe: %s", i, what)
			}
		}
		check := func() {
			for i, nd := range tn.nodes {
				if nd.Restrictions().NoDirectory && len(nd.DirKeys()) > 0 {
					t.Fatalf("node %d holds %v under NoDirectory", i, nd.DirKeys())
				}
			}
		}
		g := &gen{b: data, tn: tn, sites: sites}
		for len(g.b) > 0 {
			op := g.byte()
			to := int(g.byte()) % len(tn.nodes)
			switch {
			case op < 64:
				tn.drv[to].SetRestrictions(tn.now, Restrictions{NoDirectory: op&1 == 1, NoServe: op&2 == 2})
				tn.after(to)
			case op < 128:
				tn.query(to, sites[to%2], g.obj())
			default:
				from := g.peer()
				frame, err := wire.Encode(g.msg())
				if err != nil || from.IsZero() {
					continue
				}
				if err := tn.drv[to].Receive(tn.now, from, frame); err != nil {
					t.Fatalf("a frame wire.Encode made does not decode: %v", err)
				}
				tn.after(to)
			}
			check()
			tn.run(tn.now + time.Duration(g.byte())*10*time.Millisecond)
			check()
		}
		tn.run(tn.now + 2*time.Minute)
		check()
		// Lift every restriction, heal, then check as FuzzWarmNetwork does.
		for i := range tn.nodes {
			tn.drv[i].SetRestrictions(tn.now, Restrictions{})
			tn.after(i)
		}
		healAndCheck(t, tn, sites)
	})
}

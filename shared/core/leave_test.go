package core_test

import (
	"testing"
	"time"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// petalWithDir builds one petal of n peers (one locality), each holding
// object i, and returns the network, the directory's key and node.
func petalWithDir(t *testing.T, cfg Config, n int, seed uint64) (*testNet, ids.SiteID, ids.Key, int) {
	t.Helper()
	cfg.Localities = 1
	tn := newTestNet(t, cfg, n, seed)
	site := ids.SiteOf("https://a.example")
	for i := range tn.nodes {
		tn.query(i, site, ids.ObjectID(i))
		tn.run(tn.now + time.Second)
	}
	tn.run(tn.now + 3*time.Minute)
	dirs := tn.directories()
	if len(dirs) != 1 {
		t.Fatalf("directories %v", dirs)
	}
	for k, h := range dirs {
		return tn, site, k, h[0]
	}
	panic("unreachable")
}

// TestLeaveHandover: with Config.LeaveHandover, a directory that goes
// offline names a successor, which holds the position at once; every
// content peer follows it without a timeout, and the petal keeps serving
// (no query goes to the origin because its directory was gone). A content
// peer that leaves tells the directory, which no longer sends it queries.
func TestLeaveHandover(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LeaveHandover = true
	tn, site, key, old := petalWithDir(t, cfg, 12, 5)

	// A content peer leaves: the directory stops listing it as a holder.
	leaver := (old + 1) % len(tn.nodes)
	tn.offline(leaver)
	tn.run(tn.now + time.Second)
	q := tn.query((old+2)%len(tn.nodes), site, ids.ObjectID(leaver))
	tn.run(tn.now + 5*time.Second)
	if a := tn.answers[q]; a.Source != SourceOrigin || a.Failed {
		t.Fatalf("object of a peer that left: %+v, want an origin fetch", a)
	}
	if tn.at[q]-tn.now+5*time.Second > time.Second {
		t.Fatalf("query waited on the peer that left: answered %v after issue", tn.at[q]-tn.now+5*time.Second)
	}

	tn.offline(old)
	tn.run(tn.now + 200*time.Millisecond)
	h := tn.directories()[key]
	if len(h) != 1 {
		t.Fatalf("200 ms after the directory left, holders of its key: %v", h)
	}
	succ := h[0]
	for i, nd := range tn.nodes {
		if i == succ || !nd.Online() {
			continue
		}
		if d := nd.DirInfo(site); d.Member.ID != tn.nodes[succ].ID() {
			t.Errorf("node %d dir-info %v, want the successor %d", i, d, succ)
		}
	}
	// Every object of the peers still online is served by the petal, none
	// after a directory timeout.
	var qs []qkey
	asker := (succ + 1) % len(tn.nodes)
	if asker == old || asker == leaver {
		asker = (asker + 3) % len(tn.nodes)
	}
	for i := range tn.nodes {
		if i != old && i != leaver && i != asker {
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
	if st := tn.nodes[asker].Stats(); st.Origin["dir_failed"]+st.Origin["dir_unreachable"] != 0 {
		t.Errorf("queries waited on the directory that left: %v", st.Origin)
	}
	t.Logf("successor %d held the position within 200 ms; %d queries served by peers after the handover", succ, len(qs))
	// The ring settles: one holder per key, a consistent ring.
	tn.run(tn.now + 2*time.Minute)
	if h := tn.directories()[key]; len(h) != 1 {
		t.Fatalf("holders after a while: %v", h)
	}
	checkRing(t, tn)
}

// TestLeaveHandoverOff: without LeaveHandover a departure is silent: the
// directory's key stays vacant until a content peer notices.
func TestLeaveHandoverOff(t *testing.T) {
	tn, _, key, old := petalWithDir(t, DefaultConfig(), 12, 5)
	msgs := tn.msgs
	tn.offline(old)
	if tn.msgs != msgs {
		t.Fatalf("a silent departure sent %d messages", tn.msgs-msgs)
	}
	tn.run(tn.now + 200*time.Millisecond)
	if h := tn.directories()[key]; len(h) != 0 {
		t.Fatalf("key held by %v 200 ms after a silent departure", h)
	}
}

// TestLeaveHandoverNamesLongestUp: the successor a leaving directory names
// is the content peer up the longest by what it said in its pushes
// (Push.Up), whatever the order the directory heard of them in; without
// that, the one the directory has known the longest.
func TestLeaveHandoverNamesLongestUp(t *testing.T) {
	for _, withUp := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.LeaveHandover = true
		l := newLone(t, cfg)
		obj := ids.ObjectOf("https://a.example/x")
		l.n.Query(l.now, l.site, obj)
		l.take()
		l.n.SetEntries(l.now, Entries{Site: l.site}) // nobody on D-ring: found it
		l.take()
		if l.n.Role(l.site) != RoleDirectory || len(l.n.DirKeys()) != 1 {
			t.Fatalf("role %v, keys %v: want the directory", l.n.Role(l.site), l.n.DirKeys())
		}
		key := l.n.DirKeys()[0]
		// Heard of in this order; up for 10 s, not said, 1 h.
		ups := []uint32{10, 0, 3600}
		if !withUp {
			ups = []uint32{0, 0, 0}
		}
		for i, up := range ups {
			l.now += time.Second
			l.n.Receive(l.now, pid(byte(10+i)), &wire.Push{Site: l.site, Key: key, Full: true,
				Added: []ids.ObjectID{ids.ObjectID(i + 1)}, Up: up})
			l.take()
		}
		l.now += time.Second
		l.n.GoOffline(l.now)
		r := l.take()
		want := pid(12)
		if !withUp {
			want = pid(10)
		}
		told := 0
		for _, e := range r.Msgs {
			if a, ok := e.Msg.(*wire.PushAck); ok {
				told++
				if a.OK || a.Key != key || a.Dir.Member.ID != want || a.Dir.Member.Key != key {
					t.Errorf("withUp=%v: goodbye to %v: %+v, want successor %v", withUp, e.To, a, want)
				}
			}
		}
		if told != 3 {
			t.Errorf("withUp=%v: %d content peers told, want 3: %+v", withUp, told, r.Msgs)
		}
	}
}

package core_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
)

func TestPetalFormsAndServes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 2
	tn := newTestNet(t, cfg, 20, 1)
	site := ids.SiteOf("https://a.example")
	obj := func(i int) ids.ObjectID { return ids.ObjectOf(fmt.Sprintf("https://a.example/%d", i)) }
	// Everyone asks for object 0, spaced out.
	var qids []qkey
	for i := range tn.nodes {
		qids = append(qids, tn.query(i, site, obj(0)))
		tn.run(tn.now + 2*time.Second)
	}
	tn.run(tn.now + 10*time.Minute)
	peers, origin := 0, 0
	for _, q := range qids {
		a, ok := tn.answers[q]
		if !ok {
			t.Fatalf("query %d never answered", q)
		}
		if a.Source == SourcePeer {
			peers++
		} else {
			origin++
		}
	}
	dirs := tn.directories()
	t.Logf("peer hits %d origin %d dirs %v msgs %d", peers, origin, dirs, tn.msgs)
	if len(dirs) != 2 {
		t.Fatalf("want one directory per locality, got %v", dirs)
	}
	for k, holders := range dirs {
		if len(holders) != 1 {
			t.Fatalf("key %x held by %v", k, holders)
		}
	}
	if origin > 2 {
		t.Fatalf("origin fetches %d, want at most one per locality", origin)
	}
	for i, nd := range tn.nodes {
		if r := nd.Role(site); r != RoleContent && r != RoleDirectory {
			t.Fatalf("node %d role %v", i, r)
		}
	}
}

// TestChurnConverges: under churn every query is answered, and once churn
// stops each (website, locality) with online peers has exactly one
// directory within a bounded time, and D-ring successors are consistent.
func TestChurnConverges(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 3
	tn := newTestNet(t, cfg, 90, 7)
	sites := []ids.SiteID{ids.SiteOf("https://a.example"), ids.SiteOf("https://b.example")}
	var qs []qkey
	end := 40 * time.Minute
	for tn.now < end {
		i := tn.rnd.IntN(len(tn.nodes))
		switch r := tn.rnd.IntN(100); {
		case r < 3 && tn.now < end-10*time.Minute:
			if tn.nodes[i].Online() {
				tn.offline(i)
			} else {
				tn.online(i)
			}
		default:
			if tn.nodes[i].Online() {
				site := sites[i%2]
				qs = append(qs, tn.query(i, site, ids.ObjectID(tn.rnd.IntN(50))))
			}
		}
		tn.run(tn.now + 500*time.Millisecond)
	}
	for i, nd := range tn.nodes {
		if !nd.Online() {
			tn.online(i)
		}
	}
	tn.run(tn.now + 10*time.Minute)
	answered, aborted := 0, 0
	for _, q := range qs {
		a, ok := tn.answers[q]
		if !ok {
			t.Fatalf("query %+v never answered", q)
		}
		if a.Aborted {
			aborted++
		}
		answered++
	}
	t.Logf("%d queries answered (%d aborted by churn), %d msgs", answered, aborted, tn.msgs)
	checkPetals(t, tn, func(i int) ids.SiteID { return sites[i%2] })
	checkRing(t, tn)
}

// checkPetals checks that each petal with members (node i is interested in
// siteOf(i)) has exactly one directory at its main key.
func checkPetals(t *testing.T, tn *testNet, siteOf func(int) ids.SiteID) {
	t.Helper()
	dirs := tn.directories()
	for i, nd := range tn.nodes {
		s := siteOf(i)
		if r := nd.Role(s); r == RoleContent || r == RoleDirectory {
			if k := nd.Layout().Key(s, nd.Locality(), 0); len(dirs[k]) != 1 {
				t.Fatalf("petal key %x: directories %v, want exactly one", k, dirs[k])
			}
		}
	}
}

// checkRing compares every position's successor with a brute-force
// successor over all live positions.
func checkRing(t *testing.T, tn *testNet) {
	t.Helper()
	var all []ids.Member
	for _, nd := range tn.nodes {
		if !nd.Online() {
			continue
		}
		for _, k := range nd.DirKeys() {
			all = append(all, ids.Member{Key: k, ID: nd.ID()})
		}
	}
	for _, nd := range tn.nodes {
		if !nd.Online() {
			continue
		}
		for _, k := range nd.DirKeys() {
			want := bruteSucc(all, k)
			got, _ := nd.Successor(k)
			if got != want {
				t.Errorf("successor of %x: got %v want %v", k, got, want)
			}
		}
	}
}

func bruteSucc(all []ids.Member, k ids.Key) ids.Member {
	var best ids.Member
	var bestD uint64
	found := false
	for _, m := range all {
		if m.Key == k {
			continue
		}
		d := uint64(m.Key - k)
		if !found || d < bestD {
			best, bestD, found = m, d, true
		}
	}
	if !found {
		for _, m := range all {
			if m.Key == k {
				return m
			}
		}
	}
	return best
}

func TestPetalUpSplits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 1
	cfg.PetalMaxPeers = 8
	tn := newTestNet(t, cfg, 40, 3)
	site := ids.SiteOf("https://big.example")
	var qs []qkey
	for round := 0; round < 30; round++ {
		for i := range tn.nodes {
			qs = append(qs, tn.query(i, site, ids.ObjectID(tn.rnd.IntN(200))))
			tn.run(tn.now + 100*time.Millisecond)
		}
		tn.run(tn.now + 30*time.Second)
	}
	tn.run(tn.now + 5*time.Minute)
	for _, q := range qs {
		if _, ok := tn.answers[q]; !ok {
			t.Fatalf("query %+v never answered", q)
		}
	}
	dirs := tn.directories()
	if len(dirs) < 2 {
		t.Fatalf("petal of 40 peers with limit 8 did not split: %v", dirs)
	}
	for k, h := range dirs {
		if len(h) != 1 {
			t.Fatalf("instance %x held by %v", k, h)
		}
	}
	total := 0
	for k, h := range dirs {
		np := tn.nodes[h[0]].IndexPeers(k)
		total += np
		t.Logf("instance %x: %d content peers", k, np)
	}
	// Every content peer points at a live instance.
	for i, nd := range tn.nodes {
		if nd.Role(site) != RoleContent {
			continue
		}
		d := nd.DirInfo(site)
		h := dirs[d.Member.Key]
		if len(h) != 1 || tn.nodes[h[0]].ID() != d.Member.ID {
			t.Errorf("node %d dir-info %v is not a live instance", i, d.Member)
			continue
		}
		if !tn.nodes[h[0]].Indexes(d.Member.Key, nd.ID()) {
			t.Errorf("node %d is not in the index of its directory %v", i, d.Member)
		}
	}
}

func TestDirectoryFailureReplacedByTryJoin(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 1
	tn := newTestNet(t, cfg, 12, 5)
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
	var key ids.Key
	var old int
	for k, h := range dirs {
		key, old = k, h[0]
	}
	tn.offline(old)
	failedAt := tn.now
	repaired := time.Duration(-1)
	for tn.now < failedAt+10*time.Minute {
		tn.run(tn.now + time.Second)
		if h := tn.directories()[key]; len(h) == 1 {
			repaired = tn.now - failedAt
			break
		}
	}
	if repaired < 0 {
		t.Fatalf("directory %x not replaced within 10 minutes", key)
	}
	t.Logf("directory replaced after %v", repaired)
	// The former directory returns: it must not create a second holder.
	tn.online(old)
	tn.run(tn.now + 5*time.Minute)
	if h := tn.directories()[key]; len(h) != 1 {
		t.Fatalf("after the old directory returned: holders %v", h)
	}
	for i, nd := range tn.nodes {
		if nd.Role(site) == RoleContent && nd.DirInfo(site).Member.Key != key {
			t.Errorf("node %d dir-info %v", i, nd.DirInfo(site))
		}
	}
}

func TestReconnectFromStoredView(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Localities = 1
	tn := newTestNet(t, cfg, 10, 9)
	site := ids.SiteOf("https://a.example")
	for i := range tn.nodes {
		tn.query(i, site, ids.ObjectID(i))
		tn.run(tn.now + time.Second)
	}
	tn.run(tn.now + 3*time.Minute)
	i := 9
	if tn.nodes[i].Role(site) != RoleContent {
		t.Fatalf("role %v", tn.nodes[i].Role(site))
	}
	st := tn.nodes[i].Snapshot()
	tn.offline(i)
	tn.run(tn.now + 5*time.Minute)
	// Restore from the snapshot, as a browser does after a navigation.
	nd, err := Restore(cfg, tn.nodes[i].ID(), tn.nodes[i].Locality(), tn.rnd, st)
	if err != nil {
		t.Fatal(err)
	}
	tn.replace(i, nd)
	tn.online(i)
	tn.run(tn.now + 2*time.Minute)
	if r := nd.Role(site); r != RoleContent {
		t.Fatalf("after reconnect role %v, want content (rejoined from stored view)", r)
	}
	if nd.CacheLen(site) != 1 {
		t.Fatalf("cache lost: %d objects", nd.CacheLen(site))
	}
	// Its object is found by another peer through the directory again.
	q := tn.query(0, site, ids.ObjectID(9))
	tn.run(tn.now + 5*time.Second)
	if a := tn.answers[q]; a.Source != SourcePeer {
		t.Fatalf("object of the reconnected peer not served by a peer: %+v", a)
	}
}

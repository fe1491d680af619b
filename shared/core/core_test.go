package core

import (
	"fmt"
	"testing"
	"time"

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

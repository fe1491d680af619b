package bootstrap

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
)

func TestSiteStatsMergeAndCap(t *testing.T) {
	const origin = "https://a.example"
	site := ids.SiteOf(origin)
	a, b := newSiteStats(2), newSiteStats(2)
	var c opmetrics.SiteCounters
	c.Bytes[opmetrics.SourcePeer] = 10
	if err := a.add([]frame.SiteReport{{Site: site, Origin: origin, Counters: c}}); err != nil {
		t.Fatal(err)
	}
	if err := a.add([]frame.SiteReport{{Site: 7}, {Site: 8}}); err != errSiteCap {
		t.Fatalf("a report past the site cap: %v", err)
	}
	if len(a.totals()) != 1 {
		t.Fatalf("a refused report counted: %v", a.totals())
	}
	msg, err := a.encodeStatsMsg("inst-a", false, map[peerKey]int{{site: site, loc: 1, role: frame.RoleContent}: 3})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeStatsMsg(msg, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a message repeated (cumulative totals) counts once
		if !b.merge(m, time.Now(), time.Time{}) {
			t.Fatal("merge refused")
		}
	}
	if got := b.totals()[site].Bytes[opmetrics.SourcePeer]; got != 10 {
		t.Fatalf("merged peer bytes %d, want 10", got)
	}
	peers := map[peerKey]int{}
	b.remotePeers(time.Now().Add(-time.Minute), peers)
	if peers[peerKey{site: site, loc: 1, role: frame.RoleContent}] != 3 {
		t.Fatalf("remote peers %v", peers)
	}
	bye, _ := a.encodeStatsMsg("inst-a", true, nil)
	m, _ = decodeStatsMsg(bye, 2)
	b.merge(m, time.Now(), time.Time{})
	if got := b.totals()[site].Bytes[opmetrics.SourcePeer]; got != 10 || len(b.remote) != 0 {
		t.Fatalf("after bye: peer bytes %d, %d remote instances", got, len(b.remote))
	}
	if b.name(site) != origin {
		t.Fatalf("site label %q", b.name(site))
	}
}

func TestDecodeStatsMsgRejects(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"v":1}`, `{"v":2,"instance":"x"}`, `[1]`,
		`{"v":1,"instance":"x","sites":[{"site":0,"c":[]}]}`,
		`{"v":1,"instance":"x","sites":[{"site":5,"c":[1,2]}]}`,
		`{"v":1,"instance":"x","sites":[{"site":5,"origin":"https://a.example","c":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}`,
		`{"v":1,"instance":"x","peers":[{"site":5,"loc":0,"role":9,"n":1}]}`,
		`{"v":1,"instance":"x","peers":[{"site":5,"loc":0,"role":2,"n":-1}]}`,
	} {
		if _, err := decodeStatsMsg([]byte(s), 10); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
}

// FuzzDecodeStatsMsg: the NATS site-stats decoder never panics, and what it
// accepts merges without panicking and within the site cap.
func FuzzDecodeStatsMsg(f *testing.F) {
	a := newSiteStats(4)
	_ = a.add([]frame.SiteReport{{Site: ids.SiteOf("https://a.example"), Origin: "https://a.example"}})
	b, _ := a.encodeStatsMsg("i", false, map[peerKey]int{{site: 5, loc: 0, role: frame.RoleClient}: 1})
	f.Add(b)
	f.Add([]byte(`{"v":1,"instance":"x","bye":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStatsMsg(b, 4)
		if err != nil {
			return
		}
		st := newSiteStats(4)
		st.merge(m, time.Now(), time.Time{})
		if len(st.names) > 4 {
			t.Fatalf("%d sites known, cap 4", len(st.names))
		}
		st.sample(time.Now())
		_ = st.seriesRates()
	})
}

// Instances that died without a bye make room for new ones once stale;
// their totals stay counted.
func TestSiteStatsInstanceCap(t *testing.T) {
	st := newSiteStats(10)
	t0 := time.Unix(1000, 0)
	msg := func(inst string) statsMsg {
		c := make([]uint64, nCounters)
		c[0] = 1 // one cache request
		return statsMsg{V: statsMsgVersion, Instance: inst, Sites: []statsSite{{Site: 5, C: c}}}
	}
	for i := range maxInstances {
		if !st.merge(msg(fmt.Sprint("i", i)), t0.Add(time.Duration(i)*time.Second), time.Time{}) {
			t.Fatalf("instance %d refused", i)
		}
	}
	if st.merge(msg("new"), t0.Add(time.Hour), t0) {
		t.Fatal("a new instance displaced a live one")
	}
	if !st.merge(msg("new"), t0.Add(time.Hour), t0.Add(time.Second/2)) {
		t.Fatal("a new instance refused while a stale one is tracked")
	}
	if _, ok := st.remote["i0"]; ok || len(st.remote) != maxInstances {
		t.Fatalf("the stalest instance is still tracked (%d tracked)", len(st.remote))
	}
	if got := st.totals()[5].Requests[0]; got != maxInstances+1 {
		t.Fatalf("cache requests %d, want %d", got, maxInstances+1)
	}
}

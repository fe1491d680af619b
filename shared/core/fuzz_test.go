package core_test

import (
	"slices"
	"testing"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	. "github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
	"github.com/flowercdn/flower/shared/wire"
)

// gen builds well-formed protocol messages from fuzz bytes. Identifiers come
// mostly from the warm network (its peers, sites, D-ring keys, objects) so
// that messages reach real code paths, sometimes from nowhere.
type gen struct {
	b     []byte
	tn    *testNet
	sites []ids.SiteID
}

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	v := g.b[0]
	g.b = g.b[1:]
	return v
}

func (g *gen) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(g.byte())
	}
	return v
}

func (g *gen) bool() bool { return g.byte()&1 == 1 }

func (g *gen) peer() ids.PeerID {
	switch v := g.byte(); {
	case v < 200:
		return g.tn.nodes[int(v)%len(g.tn.nodes)].ID()
	case v < 250:
		return ids.PeerID{0xff, v, 0x5a} // a stranger
	}
	return ids.PeerID{}
}

func (g *gen) site() ids.SiteID {
	if v := g.byte(); v < 240 {
		return g.sites[int(v)%len(g.sites)]
	}
	return ids.SiteID(g.u64())
}

func (g *gen) key() ids.Key {
	v := g.byte()
	l := g.tn.nodes[0].Layout()
	switch {
	case v < 100:
		return l.Key(g.site(), int(g.byte())%g.tn.cfg.Localities, int(g.byte())%l.MaxInstances())
	case v < 200:
		if d := g.tn.directories(); len(d) > 0 {
			var keys []ids.Key
			for k := range d {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return keys[int(v)%len(keys)]
		}
	}
	return ids.Key(g.u64())
}

func (g *gen) member() ids.Member {
	if g.byte() < 10 {
		return ids.Member{}
	}
	return ids.Member{Key: g.key(), ID: g.peer()}
}

func (g *gen) members() []ids.Member {
	out := make([]ids.Member, int(g.byte())%5)
	for i := range out {
		out[i] = g.member()
	}
	return out
}

func (g *gen) dir() wire.DirInfo { return wire.DirInfo{Member: g.member(), Gen: uint32(g.byte())} }

func (g *gen) view() []wire.Contact {
	out := make([]wire.Contact, int(g.byte())%6)
	for i := range out {
		out[i] = wire.Contact{ID: g.peer(), Age: uint16(g.byte())}
	}
	return out
}

func (g *gen) obj() ids.ObjectID {
	if v := g.byte(); v < 240 {
		return ids.ObjectID(v % 40)
	}
	return ids.ObjectID(g.u64())
}

func (g *gen) objs() []ids.ObjectID {
	out := make([]ids.ObjectID, int(g.byte())%6)
	for i := range out {
		out[i] = g.obj()
	}
	return out
}

func (g *gen) bloom() *bloom.BloomFilter {
	if g.bool() {
		return nil
	}
	f := bloom.NewWithEstimates(64, 0.01)
	summary.AddTo(f, g.objs())
	return f
}

func (g *gen) qid() uint64 { return uint64(g.byte()) }

func (g *gen) msg() wire.Msg {
	switch g.byte() % 19 {
	case 0:
		return &wire.Query{QID: g.qid(), Site: g.site(), Obj: g.obj(), Origin: g.peer(), Key: g.key(),
			Mode: wire.QueryMode(g.byte() % 5), Hops: g.byte() % 70, NewClient: g.bool()}
	case 1:
		return &wire.Miss{QID: g.qid(), Site: g.site(), Obj: g.obj()}
	case 2:
		return &wire.NotFound{QID: g.qid(), Site: g.site(), Obj: g.obj(), Key: g.key(), Vacant: g.bool(), Dir: g.dir(), View: g.view()}
	case 3:
		return &wire.InitView{Site: g.site(), Dir: g.dir(), View: g.view()}
	case 4:
		return &wire.Shuffle{Site: g.site(), Reply: g.bool(), Dir: g.dir(), View: g.view(), Summary: g.bloom()}
	case 5:
		return &wire.Push{Site: g.site(), Key: g.key(), Full: g.bool(), Added: g.objs(), Removed: g.objs()}
	case 6:
		return &wire.PushAck{Site: g.site(), Key: g.key(), OK: g.bool(), Dir: g.dir()}
	case 7:
		return &wire.DirSummary{Site: g.site(), From: g.member(), Summary: g.bloom(), Dirs: g.members(), Added: g.objs()}
	case 8:
		return &wire.FindSucc{ReqID: g.qid(), Key: g.key(), Origin: g.peer(), Hops: g.byte() % 70}
	case 9:
		return &wire.FoundSucc{ReqID: g.qid(), Key: g.key(), Succ: g.member(), Hops: g.byte() % 70}
	case 10:
		return &wire.GetPred{ReqID: g.qid(), To: g.key()}
	case 11:
		return &wire.PredReply{ReqID: g.qid(), OK: g.bool(), Pred: g.member(), Succs: g.members()}
	case 12:
		return &wire.Join{ReqID: g.qid(), Me: g.member()}
	case 13:
		return &wire.JoinReply{ReqID: g.qid(), OK: g.bool(), Holder: g.member(), Succs: g.members()}
	case 14:
		return &wire.Notify{To: g.key(), Me: g.member()}
	case 15:
		return &wire.Ping{ReqID: g.qid(), To: g.key()}
	case 16:
		return &wire.Pong{ReqID: g.qid(), OK: g.bool()}
	case 17:
		return &wire.Promote{Site: g.site(), Key: g.key(), Gen: uint32(g.byte()), Dirs: g.members()}
	}
	return &wire.Served{QID: g.qid(), Origin: g.peer()}
}

// FuzzWarmNetwork feeds well-formed messages from random peers (members of
// the network or strangers) into a warm network: no node panics, and the
// invariants of the core tests hold once the network has had time to heal:
// every later query is answered, each petal has exactly one directory, and
// D-ring successors are right.
func FuzzWarmNetwork(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 7, 0, 2, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{14, 0, 100, 5, 0, 7, 0, 1, 2, 3})
	f.Add([]byte{12, 250, 0, 150, 0, 9, 6, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{6, 1, 0, 0, 120, 2, 1, 50, 1, 2, 0, 1, 30, 4, 0, 4, 5, 1, 6, 2})
	f.Add([]byte{17, 2, 0, 0, 0, 0, 3, 0, 0, 9, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		cfg := DefaultConfig()
		cfg.Localities = 2
		tn := newTestNet(t, cfg, 12, 5)
		sites := []ids.SiteID{ids.SiteOf("https://a.example"), ids.SiteOf("https://b.example")}
		for i := range tn.nodes {
			tn.query(i, sites[i%2], ids.ObjectID(i%7))
			tn.run(tn.now + 200*time.Millisecond)
		}
		tn.run(tn.now + 2*time.Minute)
		g := &gen{b: data, tn: tn, sites: sites}
		for len(g.b) > 0 {
			to := int(g.byte()) % len(tn.nodes)
			from := g.peer()
			m := g.msg()
			frame, err := wire.Encode(m)
			if err != nil {
				continue // not well-formed: the wire would refuse it
			}
			if from.IsZero() || !tn.nodes[to].Online() {
				continue
			}
			if err := tn.drv[to].Receive(tn.now, from, frame); err != nil {
				t.Fatalf("a frame wire.Encode made does not decode: %v", err)
			}
			tn.after(to)
			tn.run(tn.now + time.Duration(g.byte())*time.Millisecond)
		}
		healAndCheck(t, tn, sites)
	})
}

// healAndCheck lets the network of the warm-network fuzzers settle, has
// every node query objects of its site (sites[i%2]), and checks that each
// query is answered and that the petals and the D-ring are whole.
func healAndCheck(t *testing.T, tn *testNet, sites []ids.SiteID) {
	t.Helper()
	tn.run(tn.now + 10*time.Minute)
	var qs []qkey
	for round := 0; round < 3; round++ {
		for i := range tn.nodes {
			qs = append(qs, tn.query(i, sites[i%2], ids.ObjectID(tn.rnd.IntN(10))))
			tn.run(tn.now + 100*time.Millisecond)
		}
	}
	tn.run(tn.now + 10*time.Minute)
	for _, q := range qs {
		if _, ok := tn.answers[q]; !ok {
			t.Fatalf("query %+v never answered", q)
		}
	}
	checkPetals(t, tn, func(i int) ids.SiteID { return sites[i%2] })
	checkRing(t, tn)
}

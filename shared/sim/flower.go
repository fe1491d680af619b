package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/wire"
)

// CoreNode is the NewNodeFunc of the real protocol core.
func CoreNode(cfg core.Config, id ids.PeerID, loc int, rnd *rand.Rand) (Node, error) {
	n, err := core.New(cfg, id, loc, rnd)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// maxEntries is how many D-ring entry points the simulated bootstrap
// service hands out per request.
const maxEntries = 4

// noTick marks a node with no tick event pending.
const noTick = time.Duration(-1)

// flowerTraffic names the traffic types of Flower-CDN: wire message types.
var flowerTraffic = func() []string {
	names := make([]string, 256)
	for t, n := range map[wire.Type]string{
		wire.TQuery: "query", wire.TMiss: "miss", wire.TNotFound: "not_found", wire.TInitView: "init_view",
		wire.TShuffle: "shuffle", wire.TPush: "push", wire.TPushAck: "push_ack", wire.TDirSummary: "dir_summary",
		wire.TFindSucc: "find_succ", wire.TFoundSucc: "found_succ", wire.TGetPred: "get_pred",
		wire.TPredReply: "pred_reply", wire.TJoin: "join", wire.TJoinReply: "join_reply", wire.TNotify: "notify",
		wire.TPing: "ping", wire.TPong: "pong", wire.TPromote: "promote",
	} {
		names[t] = n
	}
	for i, n := range names {
		if n == "" {
			names[i] = fmt.Sprintf("type_%d", i)
		}
	}
	return names
}()

type qkey struct {
	node int32
	qid  uint64
}

// dirPos is a D-ring position a node holds, as learnt from its RoleChanges.
type dirPos struct {
	site uint16
	key  ids.Key
	live bool // the holder is online
}

type liveMember struct {
	node int32
	key  ids.Key
}

// flower hosts one core node per peer.
type flower struct {
	base
	layout  keymgr.Layout
	nodes   []Node
	started []bool

	// Messages in flight, by slot, so that events stay small values.
	msgs     []wire.Msg
	freeMsgs []int32

	tickAt  []time.Duration
	tickVer []uint32

	pendQ     map[qkey]int32 // (requester, QID) -> query number, while pending
	lookupSet []bool         // the query reached its server / origin request issued
	serveFrom []int32        // the node whose Serve ended the lookup, -1: origin fetch

	// Directory tracking (the simulated bootstrap service's member list).
	pos        [][]dirPos
	live       []liveMember
	liveIdx    map[liveMember]int32
	holders    map[ids.Key]int32
	vacant     map[ids.Key]time.Duration
	repairs    []float64
	failures   int64
	petalLive  []int32 // sites*k
	petalSplit []bool
	maxInst    int32 // most distinct live positions (instances) of one petal at once
	conflicts  int64 // a position got a second concurrent holder
	maxHolders int32
	dirChanges int64
	rng        *rand.Rand
	entryPerm  []int32
}

func newFlower(w *World, cfg Config) (*flower, error) {
	cc := cfg.Core
	cc.Localities = cfg.Localities
	layout, err := keymgr.NewLayout(cc.Localities, cc.InstanceBits)
	if err != nil {
		return nil, err
	}
	mk := cfg.NewNode
	if mk == nil {
		mk = CoreNode
	}
	P := len(w.PeerIDs)
	f := &flower{
		base:      newBase(w, flowerTraffic),
		layout:    layout,
		nodes:     make([]Node, P),
		started:   make([]bool, P),
		tickAt:    make([]time.Duration, P),
		tickVer:   make([]uint32, P),
		pendQ:     map[qkey]int32{},
		lookupSet: make([]bool, len(w.QueryPos)),
		serveFrom: make([]int32, len(w.QueryPos)),
		pos:       make([][]dirPos, P),
		liveIdx:   map[liveMember]int32{},
		holders:   map[ids.Key]int32{},
		vacant:    map[ids.Key]time.Duration{},
		petalLive: make([]int32, cfg.Sites*cfg.Localities),
		rng:       rand.New(rand.NewPCG(cfg.Seed, streamFlower)),
	}
	f.petalSplit = make([]bool, len(f.petalLive))
	for i := range f.nodes {
		n, err := mk(cc, w.PeerIDs[i], int(w.Loc[i]), rand.New(rand.NewPCG(cfg.Seed, streamNode+uint64(i))))
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		f.nodes[i] = n
		f.tickAt[i] = noTick
	}
	return f, nil
}

func (f *flower) up(p int32) {
	n := f.nodes[p]
	if !f.started[p] {
		f.started[p] = true
		for _, s := range f.w.Interests(p) {
			n.AddInterest(f.now, f.w.SiteIDs[s])
		}
	} else {
		for i := range f.pos[p] {
			f.makeLive(p, &f.pos[p][i])
		}
		n.Reconnect(f.now)
	}
	f.drain(p)
}

func (f *flower) down(p int32) {
	for i := range f.pos[p] {
		f.makeUnlive(p, &f.pos[p][i], true)
	}
	f.nodes[p].GoOffline(f.now)
	f.drain(p)
}

func (f *flower) query(qi, p, obj int32) {
	f.serveFrom[qi] = -1
	qid := f.nodes[p].Query(f.now, f.w.SiteIDs[f.w.SiteOfObj(obj)], f.w.ObjIDs[obj])
	f.pendQ[qkey{p, qid}] = qi
	f.drain(p)
}

func (f *flower) handle(ev *event) {
	p := ev.node
	switch ev.kind {
	case evMsg:
		m := f.msgs[ev.qid]
		f.msgs[ev.qid] = nil
		f.freeMsgs = append(f.freeMsgs, int32(ev.qid))
		if !f.online[p] {
			f.tr.dropped++
			return
		}
		f.nodes[p].Receive(f.now, f.w.PeerIDs[ev.from], m)
	case evFetchDone:
		if !f.online[p] {
			return
		}
		f.nodes[p].FetchDone(f.now, ev.qid, true, int64(f.w.ObjSize[ev.arg]))
	case evDeliver:
		if !f.online[p] {
			return
		}
		f.nodes[p].Delivered(f.now, ev.qid, f.w.PeerIDs[ev.from], true, int64(f.w.ObjSize[ev.arg]))
	case evTick:
		if uint32(ev.qid) != f.tickVer[p] {
			return // superseded
		}
		f.tickAt[p] = noTick
		if !f.online[p] {
			return
		}
		f.nodes[p].Tick(f.now)
		// A timer still due after Tick would spin: push it a microsecond on.
		f.drainFrom(p, f.now+time.Microsecond)
		return
	}
	f.drain(p)
}

// drain consumes node p's Ready batches until it has nothing more to say,
// then schedules its next tick.
func (f *flower) drain(p int32) { f.drainFrom(p, f.now) }

// drainFrom is drain with the next tick no earlier than notBefore.
func (f *flower) drainFrom(p int32, notBefore time.Duration) {
	n := f.nodes[p]
	for {
		r := n.Ready()
		if r.Empty() {
			break
		}
		on := f.online[p]
		for i := range r.Msgs {
			e := &r.Msgs[i]
			f.send(int(e.Msg.Type()), wire.Size(e.Msg))
			to, ok := f.w.Peer(e.To)
			if !ok || !on {
				f.tr.dropped++
				if !ok {
					f.anom["msgs_to_unknown_peer"]++
				} else {
					f.anom["msgs_sent_offline"]++
				}
				continue
			}
			var slot int32
			if k := len(f.freeMsgs); k > 0 {
				slot = f.freeMsgs[k-1]
				f.freeMsgs = f.freeMsgs[:k-1]
			} else {
				slot = int32(len(f.msgs))
				f.msgs = append(f.msgs, nil)
			}
			f.msgs[slot] = e.Msg
			f.q.push(event{at: f.now + f.w.Lat(p, to), kind: evMsg, node: to, from: p, qid: uint64(slot)})
		}
		for i := range r.Fetches {
			fe := &r.Fetches[i]
			obj, ok := f.w.objIdx[fe.Obj]
			if !ok || !on {
				f.anom["bad_fetches"]++
				continue
			}
			if qi, ok := f.pendQ[qkey{p, fe.QID}]; ok {
				f.endLookup(qi, -1) // the latest Serve or Fetch ends the lookup
			}
			ol := f.w.OriginLat(f.w.SiteOfObj(obj), f.w.Loc[p])
			f.q.push(event{at: f.now + 2*ol, kind: evFetchDone, node: p, qid: fe.QID, arg: obj})
		}
		for i := range r.Serves {
			s := &r.Serves[i]
			obj, ok1 := f.w.objIdx[s.Obj]
			to, ok2 := f.w.Peer(s.To)
			if !ok1 || !ok2 || !on {
				f.anom["bad_serves"]++
				continue
			}
			if qi, ok := f.pendQ[qkey{to, s.QID}]; ok {
				// The latest Serve wins: an earlier one may have timed out.
				f.endLookup(qi, p)
			}
			f.q.push(event{at: f.now + f.w.Lat(p, to), kind: evDeliver, node: to, from: p, qid: s.QID, arg: obj})
		}
		for i := range r.Answers {
			f.answer(p, &r.Answers[i])
		}
		for i := range r.Roles {
			f.role(p, &r.Roles[i])
		}
		need := r.NeedEntries && on
		n.Advance()
		if need {
			n.SetEntryPoints(f.now, f.entries(p))
		}
	}
	f.scheduleTick(p, notBefore)
}

func (f *flower) endLookup(qi, server int32) {
	f.lookupSet[qi] = true
	f.serveFrom[qi] = server
	f.res.lookupUS[qi] = int32((f.now - f.issueTime(qi)) / time.Microsecond)
}

func (f *flower) answer(p int32, a *core.Answer) {
	k := qkey{p, a.QID}
	qi, ok := f.pendQ[k]
	if !ok {
		if !a.Aborted {
			f.anom["unknown_answers"]++
		}
		return
	}
	delete(f.pendQ, k)
	if a.Aborted {
		return // the requester went offline: counted as abandoned
	}
	if !f.settle(qi, p) {
		return
	}
	obj := f.w.Trace[f.w.QueryPos[qi]].Obj
	switch {
	case a.Failed:
		f.res.out[qi] = outFailed
		f.anom["failed_answers"]++
	case a.Source == core.SourceLocal:
		f.res.set(qi, outLocal, 0, 0, 0)
	case a.Source == core.SourcePeer:
		prov, ok := f.w.Peer(a.Provider)
		if !ok || prov == p {
			f.anom["bad_provider"]++
			prov = p
		}
		if !f.lookupSet[qi] || f.serveFrom[qi] != prov {
			// No Serve from the provider was seen: count the lookup up to
			// the answer minus the transfer.
			f.anom["lookup_without_serve"]++
			f.res.lookupUS[qi] = int32((f.now - f.w.Lat(prov, p) - f.issueTime(qi)) / time.Microsecond)
		}
		f.res.out[qi] = outPeer
		f.res.hops[qi] = uint8(min(max(a.Hops, 0), 255))
		f.res.transfer[qi] = int32(f.w.Lat(prov, p) / time.Microsecond)
	default:
		if !f.lookupSet[qi] || f.serveFrom[qi] != -1 {
			f.anom["origin_without_fetch"]++
		}
		ol := f.w.OriginLat(f.w.SiteOfObj(obj), f.w.Loc[p])
		f.res.out[qi] = outOrigin
		f.res.hops[qi] = uint8(min(max(a.Hops, 0), 255))
		f.res.transfer[qi] = int32(ol / time.Microsecond)
	}
}

// role tracks directory positions from RoleChange events: RoleDirectory with
// a key adds the position (one per node and website), any other role drops
// the node's position for that website.
func (f *flower) role(p int32, rc *core.RoleChange) {
	s, ok := f.w.siteIdx[rc.Site]
	if !ok {
		f.anom["role_unknown_site"]++
		return
	}
	ps := f.pos[p]
	j := slices.IndexFunc(ps, func(d dirPos) bool { return d.site == s })
	if j >= 0 && (rc.Role != core.RoleDirectory || ps[j].key != rc.Key) {
		f.makeUnlive(p, &ps[j], false)
		ps = slices.Delete(ps, j, j+1)
		j = -1
	}
	if rc.Role == core.RoleDirectory && j < 0 {
		f.dirChanges++
		ps = append(ps, dirPos{site: s, key: rc.Key})
		if f.online[p] {
			f.makeLive(p, &ps[len(ps)-1])
		}
	}
	f.pos[p] = ps
}

func (f *flower) petal(d *dirPos) int {
	_, loc, _ := f.layout.Split(d.key)
	return int(d.site)*f.w.k + min(loc, f.w.k-1)
}

func (f *flower) makeLive(p int32, d *dirPos) {
	if d.live {
		return
	}
	d.live = true
	m := liveMember{p, d.key}
	f.liveIdx[m] = int32(len(f.live))
	f.live = append(f.live, m)
	f.holders[d.key]++
	if h := f.holders[d.key]; h > 1 {
		// Two online peers both believe they hold the position (for
		// example, rings that formed apart and have not merged yet).
		f.conflicts++
		f.maxHolders = max(f.maxHolders, h)
		return
	}
	if t, ok := f.vacant[d.key]; ok {
		f.repairs = append(f.repairs, float64(f.now-t)/float64(time.Millisecond))
		delete(f.vacant, d.key)
	}
	pi := f.petal(d)
	f.petalLive[pi]++
	if f.petalLive[pi] > 1 {
		f.petalSplit[pi] = true
	}
	f.maxInst = max(f.maxInst, f.petalLive[pi])
}

// makeUnlive takes a position out of the live set; failure means its holder
// went offline, which leaves the position vacant until someone holds it.
func (f *flower) makeUnlive(p int32, d *dirPos, failure bool) {
	if !d.live {
		return
	}
	d.live = false
	m := liveMember{p, d.key}
	i := f.liveIdx[m]
	last := f.live[len(f.live)-1]
	f.live[i] = last
	f.liveIdx[last] = i
	f.live = f.live[:len(f.live)-1]
	delete(f.liveIdx, m)
	if f.holders[d.key]--; f.holders[d.key] > 0 {
		return
	}
	delete(f.holders, d.key)
	if failure {
		f.failures++
		f.vacant[d.key] = f.now
	}
	f.petalLive[f.petal(d)]--
}

// entries are up to maxEntries random live D-ring members other than p
// itself: the bootstrap service's answer. Empty means the ring is empty.
func (f *flower) entries(p int32) []ids.Member {
	out := make([]ids.Member, 0, maxEntries)
	n := len(f.live)
	if n == 0 {
		return out
	}
	// Partial Fisher-Yates over a lazily reset permutation: O(maxEntries).
	if len(f.entryPerm) < n {
		f.entryPerm = make([]int32, n+n/2)
	}
	perm := f.entryPerm[:n]
	for i := range perm {
		perm[i] = int32(i)
	}
	for i := 0; i < n && len(out) < maxEntries; i++ {
		j := i + f.rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
		m := f.live[perm[i]]
		if m.node != p {
			out = append(out, ids.Member{Key: m.key, ID: f.w.PeerIDs[m.node]})
		}
	}
	return out
}

// scheduleTick keeps at most one useful tick event per node: at its
// NextTick (not before notBefore), unless one at or before that is pending.
func (f *flower) scheduleTick(p int32, notBefore time.Duration) {
	if !f.online[p] {
		return
	}
	nt := f.nodes[p].NextTick()
	if nt < 0 {
		return
	}
	if nt < notBefore {
		if notBefore > f.now {
			f.anom["tick_not_advanced"]++
		}
		nt = notBefore
	}
	if at := f.tickAt[p]; at != noTick && at <= nt {
		return
	}
	f.tickVer[p]++
	f.tickAt[p] = nt
	f.q.push(event{at: nt, kind: evTick, node: p, qid: uint64(f.tickVer[p])})
}

// dirMetrics summarises the directory figures at the end of the run.
func (f *flower) dirMetrics() *DirMetrics {
	d := &DirMetrics{
		Repairs:              int64(len(f.repairs)),
		Failures:             f.failures,
		VacantAtEnd:          int64(len(f.vacant)),
		PositionsEnd:         int64(len(f.holders)),
		HolderConflicts:      f.conflicts,
		MaxHoldersPerKey:     int64(max(f.maxHolders, 1)),
		MaxInstancesPerPetal: int64(f.maxInst),
		DirectoryRoleChanges: f.dirChanges,
		RolesEnd:             map[string]int64{},
	}
	slices.Sort(f.repairs)
	d.RepairMsMean = round3(mean(f.repairs))
	d.RepairMsP95 = round3(percentile(f.repairs, 0.95))
	for i, c := range f.petalLive {
		if c > 0 {
			d.PetalsWithDir++
		}
		if f.petalSplit[i] {
			d.PetalsSplit++
		}
	}
	for p, n := range f.nodes {
		if !f.online[p] {
			continue
		}
		for _, s := range f.w.Interests(int32(p)) {
			d.RolesEnd[n.Role(f.w.SiteIDs[s]).String()]++
		}
		// The positions learnt from RoleChanges should be what the node holds.
		keys := n.DirKeys()
		same := len(keys) == len(f.pos[p])
		for _, dp := range f.pos[p] {
			same = same && slices.Contains(keys, dp.key)
		}
		if !same {
			f.anom["dir_positions_untracked"]++
		}
	}
	return d
}

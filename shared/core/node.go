// Package core is the Flower-CDN protocol core: a deterministic state machine
// with no I/O, in the style of etcd's raft library. A host feeds it inputs
// (messages from peers, user queries, fetch results, clock ticks) and drains
// its outputs (messages to send, answers, origin fetches, objects to serve,
// role changes) with Ready and Advance. Time and randomness are injected:
// the same inputs and seed give the same outputs.
//
// The seed's seven components live in their own packages (keymgr, locality,
// interest, directory, content, gossip, security) with the D-ring in dring
// and the messages in wire; this package composes them into one node.
package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/content"
	"github.com/flowercdn/flower/shared/directory"
	"github.com/flowercdn/flower/shared/dring"
	"github.com/flowercdn/flower/shared/gossip"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/interest"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/wire"
)

// Node is one Flower-CDN host (a browser or a native peer): one peer per
// website of interest, each a client, a content peer or a directory peer.
// A Node is not safe for concurrent use.
type Node struct {
	cfg    Config
	layout keymgr.Layout
	id     ids.PeerID
	loc    int
	rnd    *rand.Rand
	now    time.Duration
	online bool

	interest  *interest.Manager
	sites     map[ids.SiteID]*sitePeer
	positions []*position // D-ring positions held, in key order
	ghosts    []ghost     // routing state of positions given up recently

	queries  map[uint64]*query
	fetching map[objKey]uint64 // objects being fetched from the origin, by query
	reqs     map[uint64]*request
	shuffles map[shuffleKey]uint64 // outstanding shuffle per (site, peer)
	timers   timerHeap
	timerSeq uint64
	rtt      map[ids.PeerID]time.Duration

	entries      []ids.Member
	entriesKnown bool // SetEntryPoints answered since entries were last needed
	entriesAt    time.Duration
	entrySites   []ids.SiteID // websites whose petal directories were asked for
	ringCheckDue bool
	entriesAsked bool
	waitQueries  []uint64
	waitJoins    []ids.SiteID

	stats  Stats
	nextID uint64
	selfq  []wire.Msg
	depth  int
	ready  Ready
}

type ghost struct {
	ring   *dring.State
	winner ids.Member // who holds the position now
	until  time.Duration
}

type shuffleKey struct {
	site ids.SiteID
	peer ids.PeerID
}

// sitePeer is the node's peer for one website.
type sitePeer struct {
	site       ids.SiteID
	epoch      uint64
	cache      *content.Cache
	view       *gossip.View
	dir        wire.DirInfo // dir-info
	baseKey    ids.Key      // generateKey(ws, loc), instance 0
	needFull   bool
	pushReq    uint64
	lastPush   time.Duration
	joining    bool
	joinAt     time.Duration // a delayed tryJoin is due (0: none)
	joinTarget ids.Key
	wasDir     ids.Key // the position held before going offline (0: none)
	hadDir     bool
	armed      bool
	// reconnecting counts the stored-view contacts still being tried.
	reconnecting int
	reconnected  bool
	// entriesAt is when the host last answered with this petal's directories.
	entriesAt time.Duration
	entriesOK bool
	// promotedDirs are the petal's directories named by a PetalUp promotion.
	promotedDirs []ids.Member
}

// position is a D-ring position this node holds: it is the directory peer
// d(ws, loc) (or a PetalUp instance of it).
type position struct {
	site         ids.SiteID
	key          ids.Key
	inst         int
	epoch        uint64
	gen          uint32
	ring         *dring.State
	index        *directory.Index
	sums         *directory.Summaries
	predHeard    time.Duration
	lastSum      time.Duration
	lastDelta    time.Duration
	lastDiscover time.Duration
	rr           int       // round-robin cursor over instances
	children     []ids.Key // PetalUp instances this directory created
	handover     int       // content peers still to hand over to them
	promotedAt   time.Duration
	forwards     map[uint64]*forward // queries forwarded to holders, awaiting Served
	fwdBy        map[fwdKey]uint64
}

type reqKind uint8

const (
	reqShuffle reqKind = iota
	reqPush
	reqJoinFind
	reqJoin
	reqFinger
	reqDiscover
	reqRingCheck
	reqGetPred
	reqPingPred
	reqPingDir
	reqPingRemote
)

type request struct {
	id     uint64
	kind   reqKind
	site   ids.SiteID
	peer   ids.PeerID
	key    ids.Key // position key (ring requests) or target key
	target ids.Key
	finger int
	sent   []wire.Contact
	at     time.Duration
	tries  int
	hops   int    // Join redirections so far
	qid    uint64 // the query a directory ping is for
	// reconnect marks a shuffle sent to rejoin the petal after going offline.
	reconnect bool
}

// New returns a node with id in locality loc. rnd is its only source of
// randomness.
func New(cfg Config, id ids.PeerID, loc int, rnd *rand.Rand) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	layout, err := keymgr.NewLayout(cfg.Localities, cfg.InstanceBits)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	if loc < 0 || loc >= cfg.Localities {
		return nil, fmt.Errorf("core: locality %d out of range [0,%d)", loc, cfg.Localities)
	}
	if id.IsZero() {
		return nil, fmt.Errorf("core: zero peer id")
	}
	if rnd == nil {
		return nil, fmt.Errorf("core: nil random source")
	}
	return &Node{
		cfg: cfg, layout: layout, id: id, loc: loc, rnd: rnd, online: true,
		interest: interest.New(),
		sites:    make(map[ids.SiteID]*sitePeer),
		queries:  make(map[uint64]*query),
		fetching: make(map[objKey]uint64),
		reqs:     make(map[uint64]*request),
		shuffles: make(map[shuffleKey]uint64),
		rtt:      make(map[ids.PeerID]time.Duration),
		stats:    Stats{Origin: make(map[string]int)},
	}, nil
}

// Stats are counters a host may report; they do not affect the protocol.
type Stats struct {
	// Origin counts origin fetches by the reason the query went there.
	Origin map[string]int
}

// Stats returns the node's counters (the map is the node's own).
func (n *Node) Stats() Stats { return n.stats }

// ID is the node's peer id.
func (n *Node) ID() ids.PeerID { return n.id }

// Locality is the node's locality.
func (n *Node) Locality() int { return n.loc }

// Layout is the key layout (generateKey).
func (n *Node) Layout() keymgr.Layout { return n.layout }

// Online reports whether the node is online.
func (n *Node) Online() bool { return n.online }

// Ready returns the outputs produced since the last Advance.
func (n *Node) Ready() *Ready { return &n.ready }

// Advance tells the node the host consumed the last Ready batch.
func (n *Node) Advance() { n.ready.reset() }

// enter and leave bracket every input: leave delivers the messages the node
// sent to itself, so that a node that is both a content peer and a directory
// needs no special case.
func (n *Node) enter(now time.Duration) {
	if now > n.now {
		n.now = now
	}
	n.depth++
}

func (n *Node) leave() {
	n.depth--
	if n.depth > 0 {
		return
	}
	n.depth++
	for len(n.selfq) > 0 && n.online {
		m := n.selfq[0]
		n.selfq = n.selfq[1:]
		n.handle(n.id, m)
	}
	n.selfq = n.selfq[:0]
	n.depth--
}

func (n *Node) newID() uint64 {
	n.nextID++
	return n.nextID
}

func (n *Node) send(to ids.PeerID, m wire.Msg) {
	if to == n.id {
		n.selfq = append(n.selfq, m)
		return
	}
	n.ready.Msgs = append(n.ready.Msgs, envelope(to, m))
}

func envelope(to ids.PeerID, m wire.Msg) Envelope { return Envelope{To: to, Msg: m} }

// AddInterest is addInterest(ws): the node takes part in website site as a
// client until it joins a petal.
func (n *Node) AddInterest(now time.Duration, site ids.SiteID) {
	n.enter(now)
	defer n.leave()
	n.site(site)
}

func (n *Node) site(site ids.SiteID) *sitePeer {
	if sp := n.sites[site]; sp != nil {
		return sp
	}
	n.interest.AddInterest(site)
	sp := &sitePeer{
		site:    site,
		epoch:   n.newID(),
		cache:   content.NewCache(n.cfg.CacheBytes, n.cfg.BloomFP),
		view:    gossip.NewView(n.cfg.ViewSize),
		baseKey: n.layout.Key(site, n.loc, 0),
	}
	n.sites[site] = sp
	n.ready.Roles = append(n.ready.Roles, RoleChange{Site: site, Role: RoleClient})
	return sp
}

// RemoveInterest is removeInterest(ws): the node leaves the website,
// dropping its cache and any directory position for it.
func (n *Node) RemoveInterest(now time.Duration, site ids.SiteID) {
	n.enter(now)
	defer n.leave()
	sp := n.sites[site]
	if sp == nil {
		return
	}
	for _, p := range n.positionsOf(site) {
		n.dropPosition(p)
	}
	delete(n.sites, site)
	n.interest.RemoveInterest(site)
	n.ready.Roles = append(n.ready.Roles, RoleChange{Site: site, Role: RoleNone})
}

// Role returns the node's role for site.
func (n *Node) Role(site ids.SiteID) Role { return n.interest.Role(site) }

// DirInfo returns the node's dir-info for site.
func (n *Node) DirInfo(site ids.SiteID) wire.DirInfo {
	if sp := n.sites[site]; sp != nil {
		return sp.dir
	}
	return wire.DirInfo{}
}

// ViewLen returns the size of the node's view for site.
func (n *Node) ViewLen(site ids.SiteID) int {
	if sp := n.sites[site]; sp != nil {
		return sp.view.Len()
	}
	return 0
}

// CacheLen returns the number of objects the node caches for site.
func (n *Node) CacheLen(site ids.SiteID) int {
	if sp := n.sites[site]; sp != nil {
		return sp.cache.Len()
	}
	return 0
}

// DirKeys returns the D-ring positions the node holds, in key order.
func (n *Node) DirKeys() []ids.Key {
	out := make([]ids.Key, len(n.positions))
	for i, p := range n.positions {
		out[i] = p.key
	}
	return out
}

// Successor returns the current successor of a position the node holds.
func (n *Node) Successor(key ids.Key) (ids.Member, bool) {
	p := n.position(key)
	if p == nil {
		return ids.Member{}, false
	}
	return p.ring.Successor(), true
}

// Predecessor returns the current predecessor of a position the node holds.
func (n *Node) Predecessor(key ids.Key) (ids.Member, bool) {
	p := n.position(key)
	if p == nil {
		return ids.Member{}, false
	}
	return p.ring.Pred, true
}

// IndexPeers returns how many content peers a held position indexes.
func (n *Node) IndexPeers(key ids.Key) int {
	if p := n.position(key); p != nil {
		return p.index.NumPeers()
	}
	return 0
}

// Indexes reports whether the position key held by the node indexes peer.
func (n *Node) Indexes(key ids.Key, peer ids.PeerID) bool {
	p := n.position(key)
	return p != nil && p.index.Peer(peer) != nil
}

// SetEntryPoints answers Ready.NeedEntries: live D-ring members from the
// bootstrap service. An empty list means the ring is empty.
func (n *Node) SetEntryPoints(now time.Duration, entries []ids.Member) {
	n.enter(now)
	defer n.leave()
	n.entries = n.entries[:0]
	for _, m := range entries {
		if m.ID != n.id && !m.IsZero() {
			n.entries = append(n.entries, m)
		}
	}
	n.entriesKnown = true
	n.entriesAsked = false
	n.entriesAt = n.now
	for _, site := range n.entrySites {
		if sp := n.sites[site]; sp != nil {
			sp.entriesAt, sp.entriesOK = n.now, true
		}
	}
	n.entrySites = n.entrySites[:0]
	// Directories of our websites in other localities that we did not know:
	// start exchanging summaries with them (without waiting for D-ring).
	for _, p := range n.positions {
		for _, m := range n.entries {
			if n.layout.SameSite(m.Key, p.site) && !n.samePetal(m.Key, p.key) && p.sums.Get(m.Key) == nil {
				p.sums.Know(m, n.now)
				n.send(m.ID, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary(),
					Dirs: []ids.Member{p.ring.Self}})
				n.pingRemote(m)
			}
		}
	}
	if !n.online {
		return
	}
	qs := n.waitQueries
	n.waitQueries = nil
	for _, qid := range qs {
		if q := n.queries[qid]; q != nil {
			n.advance(q)
		}
	}
	if n.ringCheckDue {
		n.ringCheckDue = false
		for _, p := range n.positions {
			n.ringCheck(p)
		}
	}
	js := n.waitJoins
	n.waitJoins = nil
	for _, site := range js {
		if sp := n.sites[site]; sp != nil && sp.joining {
			sp.joining = false
			n.tryJoin(sp, n.joinKey(sp))
		}
	}
}

// entry picks a random entry point, asking the host for some when it has
// none. ok false with ringEmpty true means the host said the ring is empty.
func (n *Node) entry() (m ids.Member, ok, ringEmpty bool) {
	if len(n.entries) > 0 {
		return n.entries[n.rnd.IntN(len(n.entries))], true, false
	}
	if n.entriesKnown {
		return ids.Member{}, false, true
	}
	n.needEntries()
	return ids.Member{}, false, false
}

func (n *Node) needEntries() {
	if !n.entriesAsked {
		n.entriesAsked = true
		n.ready.NeedEntries = true
		n.ready.EntrySites = append(n.ready.EntrySites, n.entrySites...)
	}
}

// needSiteEntries asks the host for the directory peers of sp's petal.
func (n *Node) needSiteEntries(sp *sitePeer) {
	if !slices.Contains(n.entrySites, sp.site) {
		n.entrySites = append(n.entrySites, sp.site)
		if n.entriesAsked {
			n.ready.NeedEntries = true
			n.ready.EntrySites = append(n.ready.EntrySites, sp.site)
		}
	}
	n.needEntries()
}

// petalEntry returns an entry point that is a directory of sp's petal.
func (n *Node) petalEntry(sp *sitePeer) (ids.Member, bool) {
	for _, m := range n.entries {
		if n.samePetal(m.Key, sp.baseKey) {
			return m, true
		}
	}
	return ids.Member{}, false
}

// dropEntry forgets an entry point that did not answer.
func (n *Node) dropEntry(id ids.PeerID) {
	for i, m := range n.entries {
		if m.ID == id {
			n.entries = append(n.entries[:i], n.entries[i+1:]...)
			break
		}
	}
	if len(n.entries) == 0 {
		n.entriesKnown = false
	}
}

func (n *Node) request(r *request, timeout time.Duration) uint64 {
	r.id = n.newID()
	r.at = n.now
	n.reqs[r.id] = r
	n.after(timeout, timer{kind: tRequest, id: r.id})
	return r.id
}

// take removes and returns the outstanding request id of the given kind.
func (n *Node) take(id uint64, kind reqKind) *request {
	r := n.reqs[id]
	if r == nil || r.kind != kind {
		return nil
	}
	delete(n.reqs, id)
	n.observeRTT(r.peer, n.now-r.at)
	return r
}

func (n *Node) observeRTT(p ids.PeerID, d time.Duration) {
	if p.IsZero() || p == n.id || d < 0 {
		return
	}
	if len(n.rtt) > 4*n.cfg.ViewSize+64 {
		clear(n.rtt)
	}
	if old, ok := n.rtt[p]; ok {
		d = (3*old + d) / 4
	}
	n.rtt[p] = d
}

// timeoutFor is the request timeout towards p: a multiple of its RTT, or
// RequestTimeout when the RTT is unknown.
func (n *Node) timeoutFor(p ids.PeerID) time.Duration {
	r, ok := n.rtt[p]
	if !ok {
		return n.cfg.RequestTimeout
	}
	return min(max(time.Duration(float64(r)*n.cfg.RTTFactor), n.cfg.MinTimeout), n.cfg.RequestTimeout)
}

func (n *Node) requestFailed(r *request) {
	switch r.kind {
	case reqShuffle:
		n.shuffleFailed(r)
	case reqPush:
		n.pushFailed(r)
	case reqJoinFind, reqJoin:
		n.joinFailed(r)
	case reqFinger, reqDiscover, reqRingCheck:
		if r.kind == reqRingCheck {
			n.dropEntry(r.peer)
		}
	case reqGetPred:
		if p := n.position(r.key); p != nil {
			p.ring.Remove(r.peer)
		}
	case reqPingPred:
		if p := n.position(r.key); p != nil && p.ring.Pred.ID == r.peer {
			p.ring.Pred = ids.Member{}
		}
	case reqPingDir:
		n.dirDead(r)
	}
}

// Receive delivers a message from peer from.
func (n *Node) Receive(now time.Duration, from ids.PeerID, m wire.Msg) {
	n.enter(now)
	defer n.leave()
	if !n.online || m == nil {
		return
	}
	n.handle(from, m)
}

func (n *Node) handle(from ids.PeerID, m wire.Msg) {
	switch m := m.(type) {
	case *wire.Query:
		n.onQuery(from, m)
	case *wire.Miss:
		n.onMiss(from, m)
	case *wire.NotFound:
		n.onNotFound(from, m)
	case *wire.InitView:
		n.onInitView(from, m)
	case *wire.Shuffle:
		n.onShuffle(from, m)
	case *wire.Push:
		n.onPush(from, m)
	case *wire.PushAck:
		n.onPushAck(from, m)
	case *wire.DirSummary:
		n.onDirSummary(from, m)
	case *wire.FindSucc:
		n.onFindSucc(from, m)
	case *wire.FoundSucc:
		n.onFoundSucc(from, m)
	case *wire.GetPred:
		n.onGetPred(from, m)
	case *wire.PredReply:
		n.onPredReply(from, m)
	case *wire.Join:
		n.onJoin(from, m)
	case *wire.JoinReply:
		n.onJoinReply(from, m)
	case *wire.Notify:
		n.onNotify(from, m)
	case *wire.Ping:
		n.onPing(from, m)
	case *wire.Pong:
		n.onPong(from, m)
	case *wire.Promote:
		n.onPromote(from, m)
	case *wire.Served:
		n.onServed(from, m)
	}
}

// setRole is updateRole(ws, r).
func (n *Node) setRole(sp *sitePeer, r Role, key ids.Key) {
	if n.interest.UpdateRole(sp.site, r) {
		n.ready.Roles = append(n.ready.Roles, RoleChange{Site: sp.site, Role: r, Key: key})
		n.ready.Persist = true
	}
	if r == RoleContent || r == RoleDirectory {
		n.armSite(sp)
	}
}

func (n *Node) armSite(sp *sitePeer) {
	if sp.armed || !n.online {
		return
	}
	sp.armed = true
	n.after(time.Duration(n.rnd.Int64N(int64(n.cfg.GossipPeriod)))+1, timer{kind: tGossip, site: sp.site, id: sp.epoch})
	n.after(time.Duration(n.rnd.Int64N(int64(n.cfg.KeepalivePeriod)))+1, timer{kind: tKeepalive, site: sp.site, id: sp.epoch})
}

// GoOffline takes the node off the network (the user closed the browser).
// Its stored state (cache, view, dir-info) is kept for Reconnect; pending
// queries are aborted and reported as failed answers with Aborted set.
func (n *Node) GoOffline(now time.Duration) {
	n.enter(now)
	defer n.leave()
	if !n.online {
		return
	}
	for _, qid := range sortedKeys(n.queries) {
		q := n.queries[qid]
		n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: q.site, Obj: q.obj, Source: SourceOrigin, Failed: true, Aborted: true})
	}
	clear(n.queries)
	clear(n.fetching)
	for _, p := range append([]*position(nil), n.positions...) {
		sp := n.sites[p.site]
		sp.wasDir, sp.hadDir = p.key, true
		n.dropPosition(p)
		n.setRole(sp, RoleContent, 0)
	}
	clear(n.reqs)
	clear(n.shuffles)
	n.timers = n.timers[:0]
	n.selfq = n.selfq[:0]
	n.waitQueries, n.waitJoins = nil, nil
	n.entries, n.entriesKnown, n.entriesAsked = nil, false, false
	n.entrySites = nil
	n.ghosts = nil
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		sp.armed, sp.joining, sp.pushReq, sp.joinAt, sp.entriesOK = false, false, 0, 0, false
		sp.reconnecting, sp.reconnected = 0, false
		sp.epoch = n.newID()
	}
	n.online = false
}

// Reconnect brings the node back. Following the seed, each content peer
// first tries the contacts of its stored view and only rejoins as a new
// client when none answers; a former directory tries to take its position
// back (tryJoin), or learns who holds it now.
func (n *Node) Reconnect(now time.Duration) {
	n.enter(now)
	defer n.leave()
	if n.online {
		return
	}
	n.online = true
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		sp.needFull = true
		if sp.hadDir {
			sp.hadDir = false
			n.armSite(sp)
			n.tryJoin(sp, sp.wasDir)
			continue
		}
		if n.Role(site) != RoleContent {
			continue
		}
		n.armSite(sp)
		n.rejoinPetal(sp)
	}
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

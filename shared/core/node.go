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
	"maps"
	"math/rand/v2"
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
	// upSince is when the current session began (the first input, or the
	// last Reconnect): Push.Up with LeaveHandover.
	upSince time.Duration
	upKnown bool

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

	ent     entryState                   // what the bootstrap service told us, and asking it
	avoided map[ids.PeerID]time.Duration // peers that sent bad objects, until when

	restrict Restrictions // SetRestrictions

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
	site    ids.SiteID
	epoch   uint64
	cache   *content.Cache
	view    *gossip.View
	dir     wire.DirInfo // dir-info
	baseKey ids.Key      // generateKey(ws, loc), instance 0
	// armed: the gossip and keepalive timers run for this epoch.
	armed bool

	// Push state.
	needFull bool
	pushReq  uint64
	lastPush time.Duration

	// tryJoin: see joinPhase.
	join       joinPhase
	joinTarget ids.Key // the position tryJoin is for

	// After the node comes back online: see returnPhase.
	ret        returnPhase
	wasDir     ids.Key // returnReclaim: the position held before going offline
	rejoinLeft int     // returnRejoin: stored contacts still being tried

	// petal is the bootstrap service's last answer about this petal.
	petal petalEntries
	// promotedDirs are the petal's directories named by a PetalUp promotion.
	promotedDirs []ids.Member
}

// joinPhase is where a site peer stands in tryJoin(key).
type joinPhase uint8

const (
	joinIdle    joinPhase = iota // no tryJoin under way
	joinDelayed                  // a tJoin timer runs tryJoin (a lookup found the position vacant)
	joinWaiting                  // tryJoin waits for entry points from the bootstrap service
	joinRunning                  // FindSucc / Join in flight
)

// joinBusy reports whether tryJoin is under way (messages in flight or
// waiting for entry points): no second one starts, and no push is sent.
func (sp *sitePeer) joinBusy() bool { return sp.join == joinRunning || sp.join == joinWaiting }

// returnPhase is what a site peer does about its petal when the node comes
// back online (the seed's reconnection rule).
type returnPhase uint8

const (
	returnNone    returnPhase = iota
	returnReclaim             // offline, was a directory: take wasDir back on return
	returnRejoin              // back online, trying the contacts of the stored view
)

// petalEntries are the directories of a petal the bootstrap service listed.
type petalEntries struct {
	dirs []ids.Member
	at   time.Duration
	ok   bool // an answer arrived (dirs may be empty)
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
	reqEntries // an entry-point request to the host's bootstrap service
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
		ent:      entryState{reqs: make(map[ids.SiteID]uint64)},
	}, nil
}

// Stats are counters a host may report; they do not affect the protocol.
type Stats struct {
	// Origin counts origin fetches by the reason the query went there.
	Origin map[string]int
	// EntryFailures counts entry-point requests that failed or timed out.
	EntryFailures int
}

// Stats returns a copy of the node's counters.
func (n *Node) Stats() Stats {
	st := n.stats
	st.Origin = maps.Clone(n.stats.Origin)
	return st
}

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
	if !n.upKnown {
		n.upSince, n.upKnown = n.now, true // the first input starts the first session
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

// RemoteCandidates returns the other directories whose summaries say they
// may hold obj, as seen from the node's directory position for site (none
// when it holds no position).
func (n *Node) RemoteCandidates(site ids.SiteID, obj ids.ObjectID) []ids.Member {
	p := n.positionFor(site)
	if p == nil {
		return nil
	}
	return p.sums.Candidates(obj)
}

// IndexHolds reports whether the node's directory position for site
// indexes a content peer holding obj.
func (n *Node) IndexHolds(site ids.SiteID, obj ids.ObjectID) bool {
	p := n.positionFor(site)
	return p != nil && p.index.Holds(obj)
}

// CachedVersion reports whether the node caches obj of site, and which
// version (the host checks it before it stores bytes the node may refuse).
func (n *Node) CachedVersion(site ids.SiteID, obj ids.ObjectID) (uint64, bool) {
	sp := n.sites[site]
	if sp == nil || !sp.cache.Contains(obj) {
		return 0, false
	}
	return sp.cache.Version(obj), true
}

package core

import (
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

type stage uint8

const (
	stageAsk    stage = iota // step 2: petal contacts whose summary may hold the object
	stageDir                 // step 3: the petal's directory
	stageLookup              // step 3 for a new client: D-ring lookup
	stageWait                // waiting for entry points
	stageOrigin              // step 4: origin fetch under way
)

// query is a user query in progress at its originator.
type query struct {
	qid       uint64
	site      ids.SiteID
	obj       ids.ObjectID
	stage     stage
	stageSeq  uint32
	asked     []ids.PeerID
	target    ids.PeerID // the peer asked in the current stage
	sentAt    time.Duration
	tries     int
	probed    bool // stageDir: the directory was pinged after a first timeout
	redirects int  // stageDir: times a former directory named the current one
	dirAsked  ids.Member
	lookups   int
	hops      int
	receiving bool // an object is on its way (Receiving): no stage timer runs
	// waiters are peers' queries for the same object that arrived while
	// this node was fetching it from the origin: served when it arrives.
	waiters []wire.Query
}

// objKey names one object of one website.
type objKey struct {
	site ids.SiteID
	obj  ids.ObjectID
}

// maxWaiters bounds the queries one origin fetch collects.
const maxWaiters = 16

// Query is submitQuery(q) for object obj of website site. The result is
// delivered as an Answer in Ready (at once for a local hit). The node
// becomes interested in site if it was not.
func (n *Node) Query(now time.Duration, site ids.SiteID, obj ids.ObjectID) uint64 {
	n.enter(now)
	defer n.leave()
	qid := n.newID()
	sp := n.site(site)
	if sp.cache.Has(n.now, obj, n.evicted(sp)) {
		n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: site, Obj: obj, Source: SourceLocal})
		return qid
	}
	if !n.online {
		n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: site, Obj: obj, Source: SourceOrigin, Failed: true, Aborted: true})
		return qid
	}
	q := &query{qid: qid, site: site, obj: obj, stage: stageAsk}
	n.queries[qid] = q
	n.advance(q)
	return qid
}

func (n *Node) evicted(sp *sitePeer) func(ids.ObjectID) {
	return func(obj ids.ObjectID) {
		n.ready.Evicts = append(n.ready.Evicts, Evict{Site: sp.site, Obj: obj})
	}
}

func (n *Node) setStage(q *query, s stage, timeout time.Duration) {
	q.stage = s
	q.stageSeq++
	q.receiving = false
	q.sentAt = n.now
	if timeout > 0 {
		n.after(timeout, timer{kind: tQuery, id: q.qid, stage: q.stageSeq})
	}
}

// advance moves q to its next step (the seed's processQuery at the content
// protocol): petal contacts, then the directory (through D-ring for a new
// client), then the origin.
func (n *Node) advance(q *query) {
	sp := n.sites[q.site]
	role := n.Role(q.site)
	if q.stage == stageAsk && (role == RoleContent || role == RoleDirectory) && q.tries < n.cfg.QueryTries {
		cands := sp.view.MayHold(q.obj, func(p ids.PeerID) bool { return slices.Contains(q.asked, p) })
		if len(cands) > 0 {
			c := n.nearest(cands)
			q.tries++
			q.asked = append(q.asked, c)
			q.target = c
			q.hops++
			n.setStage(q, stageAsk, n.timeoutFor(c))
			n.send(c, &wire.Query{QID: q.qid, Site: q.site, Obj: q.obj, Origin: n.id, Mode: wire.QAsk, Hops: 1})
			return
		}
	}
	if q.stage <= stageDir && sp.dir.Member.ID != (ids.PeerID{}) && q.dirAsked != sp.dir.Member &&
		(role == RoleContent || role == RoleDirectory) {
		d := sp.dir.Member
		q.asked = append(q.asked, d.ID)
		q.dirAsked = d
		q.target = d.ID
		q.hops++
		q.probed = false
		n.setStage(q, stageDir, n.timeoutFor(d.ID))
		n.send(d.ID, &wire.Query{QID: q.qid, Site: q.site, Obj: q.obj, Origin: n.id, Key: d.Key, Mode: wire.QDir, Hops: 1})
		return
	}
	if q.stage <= stageWait && q.lookups <= n.cfg.LookupRetries {
		n.lookup(q, sp)
		return
	}
	n.fetchOrigin(q, "exhausted")
}

// lookup routes q over D-ring toward generateKey(ws, loc).
func (n *Node) lookup(q *query, sp *sitePeer) {
	// The bootstrap service lists the petal's directories (asked again once
	// the answer is a RingCheckPeriod old): ask one of them directly; D-ring
	// routes the query only when it lists none.
	if !sp.petal.ok || n.now-sp.petal.at > n.cfg.RingCheckPeriod {
		if n.askEntries(sp.site) {
			n.waitForEntries(q)
			return
		}
		if !sp.petal.ok {
			n.fetchOrigin(q, "no_entries")
			return
		}
		// The service is unreachable: go by what it said last.
	}
	if d, ok := n.petalEntry(sp); ok && q.lookups == 0 {
		n.sendLookup(q, sp, d.ID, d.Key, wire.QDir)
		return
	}
	via := n.id // a node on D-ring routes from its own position
	if len(n.positions) == 0 {
		e, res := n.entry()
		switch res {
		case entryRingEmpty:
			// The service said nobody holds any position: this peer
			// founds D-ring.
			n.tryJoin(sp, sp.baseKey)
			n.fetchOrigin(q, "ring_empty")
			return
		case entryWait:
			n.waitForEntries(q)
			return
		case entryUnavailable:
			n.fetchOrigin(q, "no_entries")
			return
		}
		via = e.ID
	}
	n.sendLookup(q, sp, via, sp.baseKey, wire.QLookup)
}

func (n *Node) sendLookup(q *query, sp *sitePeer, to ids.PeerID, key ids.Key, mode wire.QueryMode) {
	q.lookups++
	q.target = to
	q.hops++
	n.setStage(q, stageLookup, n.cfg.LookupTimeout)
	n.send(to, &wire.Query{QID: q.qid, Site: q.site, Obj: q.obj, Origin: n.id, Key: key, Mode: mode,
		Hops: 1, NewClient: sp.dir.Member.IsZero()})
}

func (n *Node) fetchOrigin(q *query, why string) {
	n.fetching[objKey{q.site, q.obj}] = q.qid
	n.stats.Origin[why]++
	n.setStage(q, stageOrigin, 0)
	n.ready.Fetches = append(n.ready.Fetches, Fetch{QID: q.qid, Site: q.site, Obj: q.obj})
}

// nearest is the candidate with the lowest measured RTT (unknown RTTs last,
// first in order among equals).
func (n *Node) nearest(cands []ids.PeerID) ids.PeerID {
	best := cands[0]
	bestRTT, ok := n.rtt[best]
	for _, c := range cands[1:] {
		if r, k := n.rtt[c]; k && (!ok || r < bestRTT) {
			best, bestRTT, ok = c, r, true
		}
	}
	return best
}

func (n *Node) queryTimeout(q *query) {
	sp := n.sites[q.site]
	if sp == nil {
		return // cannot happen: RemoveInterest ends the site's queries
	}
	switch q.stage {
	case stageAsk:
		// removeContact: the contact did not answer in time.
		sp.view.RemoveContact(q.target)
		n.advance(q)
	case stageDir:
		d := sp.dir.Member
		if !q.probed && d.ID == q.target {
			// No object yet: the directory may be forwarding (another
			// locality, a holder) or may be dead. Ping it and give the
			// forwarding ForwardBudget more.
			q.probed = true
			id := n.request(&request{kind: reqPingDir, site: q.site, peer: d.ID, key: d.Key, qid: q.qid}, n.timeoutFor(d.ID))
			n.send(d.ID, &wire.Ping{ReqID: id, To: d.Key})
			n.after(n.cfg.ForwardBudget, timer{kind: tQuery, id: q.qid, stage: q.stageSeq})
			return
		}
		// The directory answered the ping but no object came in time.
		n.fetchOrigin(q, "forward_timeout")
	case stageLookup:
		// The route was lost (a member on it left): this query goes to the
		// origin; the next one looks up again.
		n.dropEntry(q.target)
		n.fetchOrigin(q, "lookup_timeout")
	}
}

func (n *Node) advanceFrom(q *query, s stage) {
	q.stage = s
	if s == stageLookup && n.Role(q.site) != RoleClient {
		// A petal member whose directory failed does not look up D-ring
		// again for this query: tryJoin is under way.
		n.fetchOrigin(q, "dir_failed")
		return
	}
	n.advance(q)
}

func (n *Node) onMiss(from ids.PeerID, m *wire.Miss) {
	if n.holderMissed(from, m) {
		return // a holder this node (as directory) forwarded a query to
	}
	q := n.queries[m.QID]
	if q == nil || q.stage == stageOrigin {
		return
	}
	if from != q.target && slices.Contains(q.asked, from) {
		return // a late answer from a peer asked in an earlier step
	}
	n.observeRTT(from, n.now-q.sentAt)
	switch q.stage {
	case stageAsk:
		if from == q.target {
			n.advance(q) // false positive of the contact's summary: next
		}
	case stageLookup:
		// Either the route met a peer that left D-ring, or the holder the
		// directory chose no longer has the object: look up again.
		if from == q.target {
			n.dropEntry(from)
		}
		n.advanceFrom(q, stageLookup)
	default:
		n.fetchOrigin(q, "holder_miss") // the holder the directory chose no longer has it
	}
}

func (n *Node) onNotFound(from ids.PeerID, m *wire.NotFound) {
	sp := n.sites[m.Site]
	if sp == nil {
		return
	}
	q := n.queries[m.QID]
	switch {
	case !m.Vacant && !m.Dir.Member.IsZero() && m.Dir.Member.ID != from && m.Dir.Member.Key == m.Key &&
		m.Dir.Member.Key == sp.dir.Member.Key && n.Role(m.Site) == RoleContent:
		// Our directory gave its position up and names the holder: ask
		// that one instead.
		n.updateDirInfo(sp, m.Dir)
		if q != nil && q.stage == stageDir && q.target == from && q.redirects < 2 {
			q.redirects++
			n.advance(q)
			return
		}
	case !m.Dir.Member.IsZero():
		n.learnDir(sp, m.Dir, m.View)
	}
	if m.Vacant && m.Key == n.joinKey(sp) {
		n.joinLater(sp, m.Key)
	}
	if q == nil || q.stage == stageOrigin {
		return
	}
	why := "not_found"
	if m.Vacant {
		why = "vacant"
	} else if q.stage == stageLookup {
		why = "not_found_lookup"
	}
	n.fetchOrigin(q, why)
}

// onInitView is initializeView(v): a new client becomes a content peer.
func (n *Node) onInitView(from ids.PeerID, m *wire.InitView) {
	sp := n.sites[m.Site]
	if sp == nil {
		return
	}
	n.learnDir(sp, m.Dir, m.View)
	if !n.avoiding(from) {
		sp.view.AddContact(wire.Contact{ID: from})
	}
}

// learnDir handles a directory's (or petal peer's) answer to a new client:
// it takes dir-info and the initial view, and becomes a content peer.
func (n *Node) learnDir(sp *sitePeer, d wire.DirInfo, view []wire.Contact) {
	for _, c := range view {
		if c.ID != n.id && !n.avoiding(c.ID) {
			sp.view.AddContact(c)
		}
	}
	if d.Member.IsZero() {
		return
	}
	if n.Role(sp.site) == RoleClient {
		n.updateDirInfo(sp, d)
		n.setRole(sp, RoleContent, 0)
		return
	}
	if n.Role(sp.site) == RoleContent && (sp.dir.Member.IsZero() || (d.Member.Key == sp.dir.Member.Key && d.Gen > sp.dir.Gen)) {
		n.updateDirInfo(sp, d)
	}
}

// updateDirInfo is updateDir-info(d).
func (n *Node) updateDirInfo(sp *sitePeer, d wire.DirInfo) {
	if sp.dir.Member != d.Member {
		sp.needFull = true
	}
	sp.dir = d
	n.ready.Persist = true
}

// Delivered reports that the object of query qid arrived from peer from and
// passed verification (checkSignature): the host has the bytes in hand. obj
// says how long it stays fresh and which version it is.
func (n *Node) Delivered(now time.Duration, qid uint64, from ids.PeerID, obj Object) {
	n.enter(now)
	defer n.leave()
	q := n.queries[qid]
	if q == nil || q.stage == stageOrigin || !n.online {
		return
	}
	sp := n.sites[q.site]
	if sp == nil {
		return
	}
	if q.stage == stageAsk && from == q.target && !q.receiving {
		n.observeRTT(from, n.now-q.sentAt)
	}
	delete(n.queries, qid)
	n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: q.site, Obj: q.obj, Source: SourcePeer, Provider: from, Hops: q.hops})
	n.store(sp, q.obj, obj)
}

// Receiving reports that peer from started sending the object of query
// qid and that its signed statement checked out (the body is still on its
// way). The query's timer stops: the host's transport bounds the transfer
// and ends it with Delivered or DeliveryFailed. When from is the contact
// asked, the time to this first byte is its RTT sample, so the transfer
// time of a large object does not count as distance.
func (n *Node) Receiving(now time.Duration, qid uint64, from ids.PeerID) {
	n.enter(now)
	defer n.leave()
	q := n.queries[qid]
	if q == nil || q.stage == stageOrigin || !n.online || q.receiving {
		return
	}
	if q.stage == stageAsk && from == q.target {
		n.observeRTT(from, n.now-q.sentAt)
	}
	q.receiving = true
	q.target = from // Unreachable(from) now ends the transfer
	q.stageSeq++    // the stage's pending timer no longer fires
}

// DeliveryFailed reports that the object peer from was sending for query
// qid did not arrive: the transfer broke off (FailTransfer: the query moves
// on, to the next contact or the origin) or the bytes failed verification
// (FailBadObject: the sender is avoided and the query goes to the origin).
func (n *Node) DeliveryFailed(now time.Duration, qid uint64, from ids.PeerID, why Failure) {
	n.enter(now)
	defer n.leave()
	if !n.online {
		return
	}
	if why == FailBadObject {
		n.avoidPeer(from)
	}
	q := n.queries[qid]
	if q == nil || q.stage == stageOrigin || n.sites[q.site] == nil {
		return
	}
	if why == FailBadObject {
		n.fetchOrigin(q, "bad_object")
		return
	}
	n.transferFailed(q, from)
}

// transferFailed moves q on after the object from peer from broke off: to
// the next contact when from was the contact asked, else to the origin.
func (n *Node) transferFailed(q *query, from ids.PeerID) {
	if q.stage == stageAsk && from == q.target {
		n.queryTimeout(q) // as if the contact had not answered
		return
	}
	n.fetchOrigin(q, "transfer_failed")
}

// FetchDone reports the result of an origin fetch asked for in
// Ready.Fetches: ok with the object's freshness and version, or not ok (the
// origin failed too).
func (n *Node) FetchDone(now time.Duration, qid uint64, ok bool, obj Object) {
	n.enter(now)
	defer n.leave()
	q := n.queries[qid]
	if q == nil || q.stage != stageOrigin {
		return
	}
	delete(n.queries, qid)
	if n.fetching[objKey{q.site, q.obj}] == qid {
		delete(n.fetching, objKey{q.site, q.obj})
	}
	n.ready.Answers = append(n.ready.Answers, Answer{QID: qid, Site: q.site, Obj: q.obj, Source: SourceOrigin, Hops: q.hops, Failed: !ok})
	sp := n.sites[q.site]
	if ok && !obj.Private && n.online && sp != nil {
		n.store(sp, q.obj, obj)
	}
	// Queries that arrived while the object was on its way.
	for i := range q.waiters {
		w := &q.waiters[i]
		switch {
		case ok && !obj.Private && sp != nil && n.mayServe() && sp.cache.Contains(w.Obj):
			n.serve(sp, w)
			if w.NewClient {
				n.initialGossip(sp, w.Origin)
			}
		default:
			n.send(w.Origin, &wire.Miss{QID: w.QID, Site: w.Site, Obj: w.Obj})
		}
	}
}

// Cached adds an object the host obtained outside the node's queries to the
// cache, as a completed origin fetch would: in the browser the service
// worker fetches from the origin while no page-side peer runs, and a
// restarted peer finds objects in its store that its last saved state did
// not list yet. obj must be verified and shareable (Private objects are
// ignored). A query of the node's own waiting on the origin for the same
// object is left alone: the host completes it with FetchDone.
func (n *Node) Cached(now time.Duration, site ids.SiteID, obj ids.ObjectID, o Object) {
	n.enter(now)
	defer n.leave()
	sp := n.sites[site]
	if o.Private || !n.online || sp == nil {
		return
	}
	n.store(sp, obj, o)
}

// Invalidate drops an object from the cache: the host found it stale (a
// newer version at the origin) or lost its bytes.
func (n *Node) Invalidate(now time.Duration, site ids.SiteID, obj ids.ObjectID) {
	n.enter(now)
	defer n.leave()
	sp := n.sites[site]
	if sp == nil || !sp.cache.Remove(obj) {
		return
	}
	n.ready.Evicts = append(n.ready.Evicts, Evict{Site: site, Obj: obj})
	n.ready.Persist = true
	n.cacheChanged(sp)
}

// store caches a verified object, unless it is already stale or older than
// the version held, and runs the push behaviour.
func (n *Node) store(sp *sitePeer, id ids.ObjectID, obj Object) {
	if obj.Expires != 0 && obj.Expires <= n.now {
		return
	}
	sp.cache.PutVersion(id, obj.Size, obj.Expires, obj.Version, n.evicted(sp))
	n.ready.Persist = true // a restart must find what the store holds
	n.cacheChanged(sp)
}

// cacheChanged tells the directory about cache changes: a directory indexes
// its own cache directly, a content peer pushes once PushThreshold changes
// accumulated.
func (n *Node) cacheChanged(sp *sitePeer) {
	if sp.cache.Changes() == 0 {
		return
	}
	if p := n.positionFor(sp.site); p != nil {
		added, removed := sp.cache.TakeChanges()
		p.index.Apply(n.id, n.now, false, added, removed)
		return
	}
	if sp.cache.Changes() >= n.cfg.PushThreshold {
		n.push(sp)
	}
}

package core

import (
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// entryState is what the node knows from the bootstrap service, and its
// requests to it. The host answers each Ready.EntryReqs item with SetEntries
// or EntriesFailed; a request unanswered after EntryTimeout fails too.
type entryState struct {
	// random are live D-ring members of any website from the last answer,
	// minus those that failed us since.
	random []ids.Member
	// known: an answer arrived since random was last emptied, so an empty
	// random list means D-ring is empty. Only such an explicit answer makes
	// a node found D-ring, never a silent or unreachable service.
	known bool
	at    time.Duration // when the last answer arrived
	// reqs are the outstanding requests by website (0: random members
	// only), to their request ids.
	reqs map[ids.SiteID]uint64
	// fails counts consecutive failed requests; until retryAt the service
	// is not asked again (exponential backoff).
	fails   int
	retryAt time.Duration
	// retrySeq names the current retry timer.
	retrySeq uint64
	// waitQueries are queries waiting for an answer.
	waitQueries []uint64
	// ringCheckDue: a ring check waits for fresh entry points.
	ringCheckDue bool
}

// SetEntries answers one Ready.EntryReqs item with the bootstrap service's
// answer. An answer with no member at all, to a request for random members,
// means D-ring is empty. An answer nobody asked for (or that came after its
// request timed out) is ignored.
func (n *Node) SetEntries(now time.Duration, e Entries) {
	n.enter(now)
	defer n.leave()
	id, ok := n.ent.reqs[e.Site]
	if !n.online || !ok {
		return
	}
	delete(n.ent.reqs, e.Site)
	delete(n.reqs, id)
	n.ent.fails, n.ent.retryAt = 0, 0
	n.ent.random = n.ent.random[:0]
	for _, m := range e.Random {
		if m.ID != n.id && !m.IsZero() && !slices.Contains(n.ent.random, m) {
			n.ent.random = append(n.ent.random, m)
		}
	}
	n.ent.known = true
	n.ent.at = n.now
	if sp := n.sites[e.Site]; sp != nil && e.Site != 0 {
		var dirs []ids.Member
		for _, m := range e.Local {
			if m.ID != n.id && !m.IsZero() && n.samePetal(m.Key, sp.baseKey) {
				dirs = append(dirs, m)
			}
		}
		sp.petal = petalEntries{dirs: dirs, at: n.now, ok: true}
		// Directories of the website in other localities that a position of
		// ours did not know: start exchanging summaries with them at once
		// (without waiting for D-ring).
		for _, p := range n.positionsOf(e.Site) {
			for _, m := range e.Remote {
				if m.ID != n.id && !m.IsZero() && n.layout.SameSite(m.Key, p.site) && !n.samePetal(m.Key, p.key) && p.sums.Get(m.Key) == nil {
					p.sums.Know(m, n.now)
					n.send(m.ID, &wire.DirSummary{Site: p.site, From: p.ring.Self, Summary: p.index.Summary(),
						Dirs: []ids.Member{p.ring.Self}})
					n.pingRemote(m)
				}
			}
		}
	}
	n.entriesSettled()
}

// EntriesFailed reports that the request for site's entry points (0: random
// members only) could not be made or was not answered: the bootstrap service
// is unreachable. Queries waiting for it go to the origin, and the node backs
// off before it asks again. It never makes the node found D-ring.
func (n *Node) EntriesFailed(now time.Duration, site ids.SiteID) {
	n.enter(now)
	defer n.leave()
	id, ok := n.ent.reqs[site]
	if !n.online || !ok {
		return
	}
	delete(n.reqs, id)
	n.entryRequestFailed(site)
}

// entryRequestFailed backs off and lets every waiter move on.
func (n *Node) entryRequestFailed(site ids.SiteID) {
	delete(n.ent.reqs, site)
	n.stats.EntryFailures++
	n.ent.fails++
	back := n.cfg.EntryRetryMax
	if shift := n.ent.fails - 1; shift < 30 {
		back = min(n.cfg.EntryRetryMin<<shift, n.cfg.EntryRetryMax)
	}
	back += n.jitter(back / 2)
	n.ent.retryAt = n.now + back
	n.ent.retrySeq++
	n.after(back, timer{kind: tEntryRetry, id: n.ent.retrySeq})
	n.entriesSettled()
}

// entriesSettled runs what waited for the bootstrap service: queries, a ring
// check and tryJoins. Each re-checks what it needs; one that still waits on
// a pending request waits again, one that cannot have it moves on.
func (n *Node) entriesSettled() {
	if !n.online {
		return
	}
	qs := n.ent.waitQueries
	n.ent.waitQueries = nil
	for _, qid := range qs {
		if q := n.queries[qid]; q != nil && q.stage == stageWait {
			n.advance(q)
		}
	}
	if n.ent.ringCheckDue && n.ent.known {
		n.ent.ringCheckDue = false
		for _, p := range n.positions {
			n.ringCheck(p)
		}
	}
	for _, site := range n.interest.Sites() {
		if sp := n.sites[site]; sp != nil && sp.join == joinWaiting {
			sp.join = joinIdle
			n.tryJoin(sp, sp.joinTarget)
		}
	}
}

// entryRetry: the backoff after a failed request ended. Ask again if anything
// still needs the service.
func (n *Node) entryRetry() {
	need := n.ent.ringCheckDue
	for _, sp := range n.sites {
		need = need || sp.join == joinWaiting
	}
	if need {
		n.askEntries(0)
	}
}

// askEntries asks the host for entry points, with the directories of site's
// petal when site is not 0. It reports whether an answer is on its way (asked
// now or before); false means the service is being backed off after a
// failure and the caller must do without.
func (n *Node) askEntries(site ids.SiteID) bool {
	if _, ok := n.ent.reqs[site]; ok {
		return true
	}
	if site == 0 && len(n.ent.reqs) > 0 {
		return true // every answer carries random members
	}
	if n.now < n.ent.retryAt {
		return false
	}
	id := n.request(&request{kind: reqEntries, site: site}, n.cfg.EntryTimeout)
	n.ent.reqs[site] = id
	n.ready.EntryReqs = append(n.ready.EntryReqs, EntryRequest{Site: site, Loc: n.loc, N: n.cfg.EntryRandom})
	return true
}

// entryResult is what entry found.
type entryResult uint8

const (
	entryOK          entryResult = iota // a random live member
	entryWait                           // asked the service; wait for its answer
	entryRingEmpty                      // the service said D-ring is empty
	entryUnavailable                    // the service is unreachable (backing off)
)

// entry picks a random entry point into D-ring, asking the host for some when
// it has none.
func (n *Node) entry() (ids.Member, entryResult) {
	if len(n.ent.random) > 0 {
		return n.ent.random[n.rnd.IntN(len(n.ent.random))], entryOK
	}
	if n.ent.known {
		return ids.Member{}, entryRingEmpty
	}
	if n.askEntries(0) {
		return ids.Member{}, entryWait
	}
	return ids.Member{}, entryUnavailable
}

// petalEntry returns a directory of sp's petal the bootstrap service listed
// (the main instance first).
func (n *Node) petalEntry(sp *sitePeer) (ids.Member, bool) {
	if len(sp.petal.dirs) > 0 {
		return sp.petal.dirs[0], true
	}
	return ids.Member{}, false
}

// dropEntry forgets an entry point that did not answer.
func (n *Node) dropEntry(id ids.PeerID) {
	n.ent.random = slices.DeleteFunc(n.ent.random, func(m ids.Member) bool { return m.ID == id })
	if len(n.ent.random) == 0 {
		n.ent.known = false
	}
	for _, sp := range n.sites {
		sp.petal.dirs = slices.DeleteFunc(sp.petal.dirs, func(m ids.Member) bool { return m.ID == id })
	}
}

// waitForEntries parks q until the bootstrap service answers (or fails).
func (n *Node) waitForEntries(q *query) {
	n.setStage(q, stageWait, 0)
	n.ent.waitQueries = append(n.ent.waitQueries, q.qid)
}

// resetEntries forgets everything about the bootstrap service (going offline).
func (n *Node) resetEntries() {
	n.ent.random, n.ent.known, n.ent.at = nil, false, 0
	clear(n.ent.reqs)
	n.ent.fails, n.ent.retryAt = 0, 0
	n.ent.retrySeq++
	n.ent.waitQueries, n.ent.ringCheckDue = nil, false
	for _, sp := range n.sites {
		sp.petal = petalEntries{}
	}
}

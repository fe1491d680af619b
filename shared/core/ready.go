package core

import (
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/interest"
	"github.com/flowercdn/flower/shared/wire"
)

// Role is a node's role for one website (the interest manager's updateRole).
type Role = interest.Role

// Roles, as the seed's updateRole(ws, r).
const (
	RoleNone      = interest.None      // not interested in the website
	RoleClient    = interest.Client    // interested, not yet in a petal
	RoleContent   = interest.Content   // member of petal(ws, loc)
	RoleDirectory = interest.Directory // holds a D-ring position for (ws, loc)
)

// Source says where a query's object came from.
type Source uint8

// Sources.
const (
	SourceLocal  Source = iota // the node's own cache
	SourcePeer                 // another peer
	SourceOrigin               // the website's origin server
)

func (s Source) String() string {
	switch s {
	case SourceLocal:
		return "local"
	case SourcePeer:
		return "peer"
	}
	return "origin"
}

// Envelope is a message to send to a peer.
type Envelope struct {
	To  ids.PeerID
	Msg wire.Msg
}

// Answer reports a finished query: the object is in hand (or, for an origin
// failure, Failed is set).
type Answer struct {
	QID      uint64
	Site     ids.SiteID
	Obj      ids.ObjectID
	Source   Source
	Provider ids.PeerID // the serving peer when Source is SourcePeer
	Hops     int        // query messages this node sent for it (the provider's Serve.Hops has the overlay hops)
	Failed   bool       // the origin fetch failed too
	Aborted  bool       // the node went offline before the query finished
}

// Fetch asks the host to fetch an object from its website's origin and to
// report the result with FetchDone.
type Fetch struct {
	QID  uint64
	Site ids.SiteID
	Obj  ids.ObjectID
}

// Serve asks the host to send an object from its cache to peer To, for the
// query QID of To. The receiving host verifies it and calls Delivered.
type Serve struct {
	QID  uint64
	Site ids.SiteID
	Obj  ids.ObjectID
	To   ids.PeerID
	Hops int // hops the query took to reach this node
}

// Evict tells the host an object left the cache (quota or expiry).
type Evict struct {
	Site ids.SiteID
	Obj  ids.ObjectID
}

// RoleChange reports updateRole(ws, r): the host tells the bootstrap service.
type RoleChange struct {
	Site ids.SiteID
	Role Role
	Key  ids.Key // the D-ring key when Role is RoleDirectory
}

// Ready is the batch of outputs a node produced since the last Advance.
// The slices belong to the node: use them before calling Advance.
type Ready struct {
	Msgs    []Envelope
	Answers []Answer
	Fetches []Fetch
	Serves  []Serve
	Evicts  []Evict
	Roles   []RoleChange
	// NeedEntries asks the host for D-ring entry points (SetEntryPoints):
	// random live directory peers, plus, for each website in EntrySites,
	// the live directory peers of that website in this node's locality
	// (the bootstrap service's GET /v1/entry?site=&loc=).
	NeedEntries bool
	EntrySites  []ids.SiteID
	// Persist says the state worth persisting changed (see Node.Snapshot).
	Persist bool
}

// Empty reports whether the batch holds nothing.
func (r *Ready) Empty() bool {
	return len(r.EntrySites) == 0 && len(r.Msgs) == 0 && len(r.Answers) == 0 && len(r.Fetches) == 0 && len(r.Serves) == 0 &&
		len(r.Evicts) == 0 && len(r.Roles) == 0 && !r.NeedEntries && !r.Persist
}

func (r *Ready) reset() {
	clear(r.Msgs)
	r.Msgs = r.Msgs[:0]
	r.Answers = r.Answers[:0]
	r.Fetches = r.Fetches[:0]
	r.Serves = r.Serves[:0]
	r.Evicts = r.Evicts[:0]
	r.Roles = r.Roles[:0]
	r.NeedEntries = false
	r.EntrySites = r.EntrySites[:0]
	r.Persist = false
}

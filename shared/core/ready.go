package core

import (
	"fmt"
	"time"

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

// EntryRequest asks the host for entry points from the bootstrap service
// (GET /v1/entry?site=&loc=&n=, or an EntryReq frame on its socket). The host
// answers with Node.SetEntries, or with Node.EntriesFailed when the service
// cannot be asked or does not answer; the node also gives up by itself after
// Config.EntryTimeout.
type EntryRequest struct {
	Site ids.SiteID // the website whose directories are wanted; 0: random members only
	Loc  int        // the node's locality
	N    int        // random D-ring members wanted
}

// Entries is the bootstrap service's answer to an EntryRequest (see package
// shared/registry, which computes it).
type Entries struct {
	Site   ids.SiteID   // as in the request
	Local  []ids.Member // directories of Site in the asked locality (PetalUp instances included)
	Remote []ids.Member // directories of Site in the other localities
	Random []ids.Member // random live D-ring members of any website; none means D-ring is empty
}

// Object is what the host knows of an object it has in hand, from the origin
// or from a peer (its signed statement, or the origin's Cache-Control).
type Object struct {
	Size int64
	// Expires is when the object stops being fresh, on the node's clock
	// (the host converts the statement's Unix time); 0: never.
	Expires time.Duration
	// Version orders versions of one URL: the cache keeps the highest.
	Version uint64
	// Private: the host may hand the object to its user but must not share
	// it (a private or uncacheable response, or one the site did not
	// sign). The node answers the query without caching the object, and
	// queries of other peers waiting on the fetch get a Miss.
	Private bool
}

// Failure says why an object a peer was to send did not arrive.
type Failure uint8

// Failures reported with Node.DeliveryFailed.
const (
	// FailTransfer: the transfer broke off (the connection failed or
	// closed, the sender stalled or cancelled). The query moves on.
	FailTransfer Failure = iota + 1
	// FailBadObject: the bytes failed verification (signature, digest,
	// URL, expiry). The sender is avoided and the query goes to the origin.
	FailBadObject
)

func (f Failure) String() string {
	switch f {
	case FailTransfer:
		return "transfer"
	case FailBadObject:
		return "bad_object"
	}
	return fmt.Sprintf("failure_%d", uint8(f))
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
	// EntryReqs are requests for the bootstrap service (see EntryRequest).
	EntryReqs []EntryRequest
	// Persist says the state worth persisting changed (see Node.Snapshot).
	Persist bool
}

// Empty reports whether the batch holds nothing.
func (r *Ready) Empty() bool {
	return len(r.EntryReqs) == 0 && len(r.Msgs) == 0 && len(r.Answers) == 0 && len(r.Fetches) == 0 && len(r.Serves) == 0 &&
		len(r.Evicts) == 0 && len(r.Roles) == 0 && !r.Persist
}

func (r *Ready) reset() {
	clear(r.Msgs)
	r.Msgs = r.Msgs[:0]
	r.Answers = r.Answers[:0]
	r.Fetches = r.Fetches[:0]
	r.Serves = r.Serves[:0]
	r.Evicts = r.Evicts[:0]
	r.Roles = r.Roles[:0]
	r.EntryReqs = r.EntryReqs[:0]
	r.Persist = false
}

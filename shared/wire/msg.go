// Package wire defines the messages Flower-CDN peers exchange and their
// versioned, compact binary encoding. The protocol core produces and consumes
// these structs; hosts that cross a real network encode them with Encode and
// decode untrusted bytes with Decode, which never panics and enforces a hard
// limit on every length.
package wire

import (
	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
)

// Type identifies a message kind on the wire.
type Type uint8

// Message types. Values are part of the wire format: never renumber.
const (
	TQuery      Type = 1
	TMiss       Type = 2
	TNotFound   Type = 3
	TInitView   Type = 4
	TShuffle    Type = 5
	TPush       Type = 6
	TPushAck    Type = 7
	TDirSummary Type = 8
	TFindSucc   Type = 9
	TFoundSucc  Type = 10
	TGetPred    Type = 11
	TPredReply  Type = 12
	TJoin       Type = 13
	TJoinReply  Type = 14
	TNotify     Type = 15
	TPing       Type = 16
	TPong       Type = 17
	TPromote    Type = 18
	TServed     Type = 19
)

// Msg is any protocol message.
type Msg interface {
	Type() Type
}

// Contact is one entry of a gossip view: a content peer of the same petal and
// the age of the entry in gossip rounds.
type Contact struct {
	ID  ids.PeerID
	Age uint16
}

// DirInfo names a petal's directory: the D-ring member and a generation that
// grows each time the position changes hands, so that the freshest wins.
// A zero Member means "unknown".
type DirInfo struct {
	Member ids.Member
	Gen    uint32
}

// QueryMode says how a query travels.
type QueryMode uint8

// Query modes.
const (
	// QAsk: the originator asks a petal contact whose summary may hold the object.
	QAsk QueryMode = 0
	// QDir: the originator asks its petal's directory (Key is that directory's key).
	QDir QueryMode = 1
	// QLookup: routed over D-ring toward Key (a new client's first query).
	QLookup QueryMode = 2
	// QForward: a directory forwards to another directory of the same website
	// whose summary may hold the object; it is not forwarded further.
	QForward QueryMode = 3
	// QServe: a directory forwards to a content peer its index says holds the
	// object: serve it or answer Miss.
	QServe QueryMode = 4
)

// Query is a request for object Obj of website Site by Origin.
type Query struct {
	QID       uint64
	Site      ids.SiteID
	Obj       ids.ObjectID
	Origin    ids.PeerID
	Key       ids.Key
	Mode      QueryMode
	Hops      uint8
	NewClient bool // the originator has no petal yet: whoever serves it runs initialGossip
}

// Miss tells the originator that the asked peer does not hold the object.
type Miss struct {
	QID  uint64
	Site ids.SiteID
	Obj  ids.ObjectID
}

// NotFound is a directory's answer when no peer it knows holds the object.
// Vacant means the D-ring lookup for Key ended at a member whose key differs:
// the position is free and the originator should tryJoin it. View and Dir
// initialise a new client (initialGossip).
type NotFound struct {
	QID    uint64
	Site   ids.SiteID
	Obj    ids.ObjectID
	Key    ids.Key
	Vacant bool
	Dir    DirInfo
	View   []Contact
}

// InitView is initialGossip: a subset of the sender's view for a new client.
type InitView struct {
	Site ids.SiteID
	Dir  DirInfo
	View []Contact
}

// Shuffle is one half of a CYCLON-style gossip exchange. Summary is the
// sender's content summary, nil when unchanged since it last sent one to
// this peer.
type Shuffle struct {
	Site    ids.SiteID
	Reply   bool
	Dir     DirInfo
	View    []Contact
	Summary *bloom.BloomFilter
}

// Push carries cache changes of a content peer to its directory Key. Full
// replaces everything the directory knew of the sender. A push with no
// changes is a keepalive.
type Push struct {
	Site    ids.SiteID
	Key     ids.Key
	Full    bool
	Added   []ids.ObjectID
	Removed []ids.ObjectID
	// Up is how long the sender has been online in its current session,
	// in seconds (0: not said). A directory that hands its position over
	// names the peer up the longest (core.Config.LeaveHandover).
	Up uint32
}

// PushAck answers a Push. OK false: the receiver is not the directory of Key.
// Dir, when set, is where the content peer should push from now on (a newer
// directory, or a PetalUp instance).
type PushAck struct {
	Site ids.SiteID
	Key  ids.Key
	OK   bool
	Dir  DirInfo
}

// DirSummary is receiveSummary: a Bloom filter of the sending directory's
// index, plus the directories of the same website the sender knows. A
// summary with a nil filter is a delta: Added are the objects that entered
// the sender's index since its last summary, to add to the receiver's copy.
type DirSummary struct {
	Site    ids.SiteID
	From    ids.Member
	Summary *bloom.BloomFilter
	Dirs    []ids.Member
	Added   []ids.ObjectID
}

// FindSucc asks D-ring for the successor of Key on behalf of Origin.
type FindSucc struct {
	ReqID  uint64
	Key    ids.Key
	Origin ids.PeerID
	Hops   uint8
}

// FoundSucc answers FindSucc.
type FoundSucc struct {
	ReqID uint64
	Key   ids.Key
	Succ  ids.Member
	Hops  uint8
}

// GetPred asks the member To for its predecessor and successor list.
type GetPred struct {
	ReqID uint64
	To    ids.Key
}

// PredReply answers GetPred. OK false: the receiver does not hold To.
type PredReply struct {
	ReqID uint64
	OK    bool
	Pred  ids.Member
	Succs []ids.Member
}

// Join asks the member that succeeds Me.Key to admit Me as its predecessor.
type Join struct {
	ReqID uint64
	Me    ids.Member
}

// JoinReply answers Join. OK true: the joiner is admitted and Holder is its
// predecessor (the admitting member's former one). OK false: Holder holds
// the position already, or, with another key, is a closer successor to ask.
type JoinReply struct {
	ReqID  uint64
	OK     bool
	Holder ids.Member
	Succs  []ids.Member
}

// Notify is Chord's notify: Me may be the predecessor of the member To.
type Notify struct {
	To ids.Key
	Me ids.Member
}

// Ping checks that the receiver is alive (and, with To set, still holds To).
type Ping struct {
	ReqID uint64
	To    ids.Key
}

// Pong answers Ping.
type Pong struct {
	ReqID uint64
	OK    bool
}

// Promote (PetalUp-CDN) asks a content peer to become directory instance Key
// of its petal; Dirs are the other directories of the petal.
type Promote struct {
	Site ids.SiteID
	Key  ids.Key
	Gen  uint32
	Dirs []ids.Member
}

// Served tells the directory that forwarded query QID of Origin that the
// holder is sending the object (so the directory need not try another).
type Served struct {
	QID    uint64
	Origin ids.PeerID
}

func (*Served) Type() Type     { return TServed }
func (*Query) Type() Type      { return TQuery }
func (*Miss) Type() Type       { return TMiss }
func (*NotFound) Type() Type   { return TNotFound }
func (*InitView) Type() Type   { return TInitView }
func (*Shuffle) Type() Type    { return TShuffle }
func (*Push) Type() Type       { return TPush }
func (*PushAck) Type() Type    { return TPushAck }
func (*DirSummary) Type() Type { return TDirSummary }
func (*FindSucc) Type() Type   { return TFindSucc }
func (*FoundSucc) Type() Type  { return TFoundSucc }
func (*GetPred) Type() Type    { return TGetPred }
func (*PredReply) Type() Type  { return TPredReply }
func (*Join) Type() Type       { return TJoin }
func (*JoinReply) Type() Type  { return TJoinReply }
func (*Notify) Type() Type     { return TNotify }
func (*Ping) Type() Type       { return TPing }
func (*Pong) Type() Type       { return TPong }
func (*Promote) Type() Type    { return TPromote }

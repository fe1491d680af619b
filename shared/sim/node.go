package sim

import (
	"math/rand/v2"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Node is the protocol core as the simulator drives it: exactly the methods
// of *core.Node. Tests substitute simpler nodes to check the host.
type Node interface {
	AddInterest(now time.Duration, site ids.SiteID)
	Query(now time.Duration, site ids.SiteID, obj ids.ObjectID) uint64
	Receive(now time.Duration, from ids.PeerID, m wire.Msg)
	FetchDone(now time.Duration, qid uint64, ok bool, size int64)
	Delivered(now time.Duration, qid uint64, from ids.PeerID, ok bool, size int64)
	SetEntryPoints(now time.Duration, entries []ids.Member)
	Tick(now time.Duration)
	NextTick() time.Duration
	GoOffline(now time.Duration)
	Reconnect(now time.Duration)
	Ready() *core.Ready
	Advance()
	Role(site ids.SiteID) core.Role
	DirKeys() []ids.Key
	Successor(key ids.Key) (ids.Member, bool)
}

// NewNodeFunc builds one node: core.New's signature, returning the interface.
type NewNodeFunc func(cfg core.Config, id ids.PeerID, loc int, rnd *rand.Rand) (Node, error)

// Package host is the host driver of the Flower-CDN protocol core, in the
// role of etcd raft's RawNode: a Driver owns one core.Node, performs each of
// its Ready batches through a few small interfaces, and feeds what they
// report back into the node as inputs. Messages cross the Transport encoded
// with shared/wire and are decoded (untrusted) on the way in.
//
// A host (the simulator, a native pion peer, the browser peer) is a set of
// implementations of these interfaces plus a loop that calls the Driver's
// inputs; the drain loop itself is written once, here. The Driver does no
// I/O of its own, keeps no clock and is not safe for concurrent use: a host
// calls it from one goroutine (or under one lock). Implementations must not
// call back into the Driver from inside an interface method: they report
// results later, as new inputs (a re-entrant call panics).
package host

import (
	"slices"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Transport moves protocol messages between peers.
type Transport interface {
	// Send sends one encoded wire message to peer to; frame is the
	// transport's to keep. It must not block. Delivery is best effort: the
	// core's timeouts cover losses, and a host that learns a peer cannot
	// be reached says so with Driver.Unreachable.
	Send(to ids.PeerID, frame []byte)
}

// MsgTransport is a Transport that can also carry decoded messages, such as
// the simulator's in-memory network. The Driver hands it messages without
// encoding them unless Options.Encode is set; the receiving side then calls
// Driver.ReceiveMsg. A message handed over is shared, never modified.
type MsgTransport interface {
	Transport
	SendMsg(to ids.PeerID, m wire.Msg)
}

// Origin fetches objects from their website's origin server.
type Origin interface {
	// Fetch starts fetching f.Obj of f.Site; the host reports the result
	// with Driver.FetchDone(f.QID, ...).
	Fetch(f core.Fetch)
}

// Objects is the host's object store and the sending half of object
// transfers.
type Objects interface {
	// Serve sends a cached object, its signed statement then its body, to
	// s.To for the query s.QID of s.To. The receiving host verifies it and
	// calls Driver.Delivered, or Driver.DeliveryFailed.
	Serve(s core.Serve)
	// Evict drops the bytes of an object that left the node's cache
	// (quota, expiry or invalidation).
	Evict(e core.Evict)
}

// Registration is one line of what the node declares to the bootstrap
// service: a website of interest, the node's locality and role for it, and,
// for a directory, the D-ring key it holds (PetalUp instances included).
type Registration struct {
	Site ids.SiteID
	Loc  int
	Role core.Role
	Key  ids.Key // RoleDirectory only
}

// Bootstrap is the host's client of the bootstrap service.
type Bootstrap interface {
	// Register declares the node's full registration set, replacing the
	// previous one. An empty set means the node is offline or interested in
	// nothing: it is nobody's entry point.
	Register(regs []Registration)
	// Entries asks the service for entry points; the host answers with
	// Driver.SetEntries, or Driver.EntriesFailed when the service cannot be
	// reached.
	Entries(req core.EntryRequest)
}

// Persister keeps the node's persistent state (role, view, dir-info, cache
// metadata) across restarts; a browser host writes it to IndexedDB.
type Persister interface {
	Persist(st core.State)
}

// Answerer receives the answers of the node's queries.
type Answerer interface {
	Answer(a core.Answer)
}

// Env is a host: the implementations a Driver performs Ready batches with.
// Persister may be nil (nothing is persisted); every other field is required.
type Env struct {
	Transport Transport
	Origin    Origin
	Objects   Objects
	Bootstrap Bootstrap
	Persister Persister
	Answerer  Answerer
}

// Options tune a Driver.
type Options struct {
	// Encode sends every message through the wire codec even when the
	// Transport is a MsgTransport (tests of the simulator use it).
	Encode bool
}

// DiffDirectories calls fn for every directory position that regs withdraws
// from old (added false), then for every one it declares anew (added true):
// what a bootstrap service does with a new registration set.
func DiffDirectories(old, regs []Registration, fn func(r Registration, added bool)) {
	for _, r := range old {
		if r.Role == core.RoleDirectory && !slices.Contains(regs, r) {
			fn(r, false)
		}
	}
	for _, r := range regs {
		if r.Role == core.RoleDirectory && !slices.Contains(old, r) {
			fn(r, true)
		}
	}
}

package host

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// Driver drives one core.Node for a host. Every input method takes the
// host's clock (time since the host's epoch, never going backwards), passes
// the input to the node and performs everything the node then asks for.
type Driver struct {
	// The fields every input touches come first, in one cache line: a
	// simulator drives tens of thousands of drivers.
	busy       bool
	online     bool
	regsDirty  bool
	persistDue bool
	node       *core.Node
	msgT       MsgTransport // set when messages travel decoded

	env   Env
	regs  []Registration // the set last declared
	stats Stats
}

// Stats count what the Driver saw.
type Stats struct {
	MsgsSent     int64 // messages handed to the Transport
	BytesSent    int64 // encoded bytes handed to Transport.Send
	MsgsReceived int64 // messages given to the node
	BadFrames    int64 // frames from peers that failed to decode
	EncodeErrors int64 // messages the node made that the codec refused (a core bug)
}

// ErrReentrant is the panic value of an input called from inside an Env
// method.
var ErrReentrant = errors.New("host: Driver input called from inside a host interface method")

// New returns a Driver for node, which must be fresh or restored and not yet
// driven: whatever its Ready holds is performed by the first input.
func New(node *core.Node, env Env, opt Options) (*Driver, error) {
	switch {
	case node == nil:
		return nil, errors.New("host: nil node")
	case env.Transport == nil || env.Origin == nil || env.Objects == nil || env.Bootstrap == nil || env.Answerer == nil:
		return nil, errors.New("host: Env needs Transport, Origin, Objects, Bootstrap and Answerer")
	}
	d := &Driver{node: node, env: env, online: node.Online()}
	// A restored node holds its roles without having announced them (a
	// content peer that rejoins its petal stays content: no RoleChange);
	// the set is declared when it comes online.
	for _, ss := range node.Snapshot().Sites {
		if r := node.Role(ss.Site); r == core.RoleClient || r == core.RoleContent {
			d.regs = append(d.regs, Registration{Site: ss.Site, Loc: node.Locality(), Role: r})
		}
	}
	if mt, ok := env.Transport.(MsgTransport); ok && !opt.Encode {
		d.msgT = mt
	}
	return d, nil
}

// Node is the driven node, for reading its state (Role, DirKeys, ...).
// Calling its input methods directly bypasses the Driver: don't.
func (d *Driver) Node() *core.Node { return d.node }

// Stats returns the Driver's counters.
func (d *Driver) Stats() Stats { return d.stats }

// NextTick is when Tick must next be called (-1: no timer pending).
func (d *Driver) NextTick() time.Duration { return d.node.NextTick() }

func (d *Driver) begin() {
	if d.busy {
		panic(ErrReentrant)
	}
	d.busy = true
}

func (d *Driver) end() { d.busy = false }

// AddInterest is addInterest(ws).
func (d *Driver) AddInterest(now time.Duration, site ids.SiteID) {
	d.begin()
	defer d.end()
	d.node.AddInterest(now, site)
	d.drain()
}

// RemoveInterest is removeInterest(ws).
func (d *Driver) RemoveInterest(now time.Duration, site ids.SiteID) {
	d.begin()
	defer d.end()
	d.node.RemoveInterest(now, site)
	d.drain()
}

// SetRestrictions sets what the node may not do for other peers
// (core.Restrictions): take a directory position, serve objects.
func (d *Driver) SetRestrictions(now time.Duration, r core.Restrictions) {
	d.begin()
	defer d.end()
	d.node.SetRestrictions(now, r)
	d.drain()
}

// Query submits a query; its answer reaches the Answerer (at once for a
// local hit).
func (d *Driver) Query(now time.Duration, site ids.SiteID, obj ids.ObjectID) uint64 {
	d.begin()
	defer d.end()
	qid := d.node.Query(now, site, obj)
	d.drain()
	return qid
}

// Receive decodes one frame from peer from and gives it to the node. A frame
// that does not decode is dropped and reported (the peer is not trusted).
func (d *Driver) Receive(now time.Duration, from ids.PeerID, frame []byte) error {
	m, err := wire.Decode(frame)
	if err != nil {
		d.stats.BadFrames++
		return fmt.Errorf("host: frame from %s: %w", from.Short(), err)
	}
	d.ReceiveMsg(now, from, m)
	return nil
}

// ReceiveMsg gives a decoded message from peer from to the node (a
// MsgTransport's receiving side).
func (d *Driver) ReceiveMsg(now time.Duration, from ids.PeerID, m wire.Msg) {
	d.begin()
	defer d.end()
	d.stats.MsgsReceived++
	d.node.Receive(now, from, m)
	d.drain()
}

// FetchDone reports the result of an Origin.Fetch.
func (d *Driver) FetchDone(now time.Duration, qid uint64, ok bool, obj core.Object) {
	d.begin()
	defer d.end()
	d.node.FetchDone(now, qid, ok, obj)
	d.drain()
}

// Delivered reports a verified object from peer from for query qid.
func (d *Driver) Delivered(now time.Duration, qid uint64, from ids.PeerID, obj core.Object) {
	d.begin()
	defer d.end()
	d.node.Delivered(now, qid, from, obj)
	d.drain()
}

// Cached adds an object obtained outside the node's queries (core.Node.Cached).
func (d *Driver) Cached(now time.Duration, site ids.SiteID, obj ids.ObjectID, o core.Object) {
	d.begin()
	defer d.end()
	d.node.Cached(now, site, obj, o)
	d.drain()
}

// Receiving reports that peer from started sending the object of query qid
// and its signed statement checked out.
func (d *Driver) Receiving(now time.Duration, qid uint64, from ids.PeerID) {
	d.begin()
	defer d.end()
	d.node.Receiving(now, qid, from)
	d.drain()
}

// DeliveryFailed reports that peer from's object for query qid did not
// arrive, or failed verification.
func (d *Driver) DeliveryFailed(now time.Duration, qid uint64, from ids.PeerID, why core.Failure) {
	d.begin()
	defer d.end()
	d.node.DeliveryFailed(now, qid, from, why)
	d.drain()
}

// Unreachable reports that a connection to peer failed or closed unasked.
func (d *Driver) Unreachable(now time.Duration, peer ids.PeerID) {
	d.begin()
	defer d.end()
	d.node.Unreachable(now, peer)
	d.drain()
}

// SetEntries answers a Bootstrap.Entries request.
func (d *Driver) SetEntries(now time.Duration, e core.Entries) {
	d.begin()
	defer d.end()
	d.node.SetEntries(now, e)
	d.drain()
}

// EntriesFailed reports that a Bootstrap.Entries request failed.
func (d *Driver) EntriesFailed(now time.Duration, site ids.SiteID) {
	d.begin()
	defer d.end()
	d.node.EntriesFailed(now, site)
	d.drain()
}

// Invalidate drops an object the host found stale or lost.
func (d *Driver) Invalidate(now time.Duration, site ids.SiteID, obj ids.ObjectID) {
	d.begin()
	defer d.end()
	d.node.Invalidate(now, site, obj)
	d.drain()
}

// Tick runs the node's timers due at now.
func (d *Driver) Tick(now time.Duration) {
	d.begin()
	defer d.end()
	d.node.Tick(now)
	d.drain()
}

// GoOffline takes the node off the network; its registrations are withdrawn.
func (d *Driver) GoOffline(now time.Duration) {
	d.begin()
	defer d.end()
	d.node.GoOffline(now)
	d.drain()
}

// Reconnect brings the node back; its registrations are declared again.
func (d *Driver) Reconnect(now time.Duration) {
	d.begin()
	defer d.end()
	d.node.Reconnect(now)
	d.drain()
}

// drain performs Ready batches until the node has nothing more to say.
func (d *Driver) drain() {
	n := d.node
	for {
		r := n.Ready()
		if r.Empty() {
			break
		}
		for i := range r.Msgs {
			d.send(&r.Msgs[i])
		}
		for i := range r.Fetches {
			d.env.Origin.Fetch(r.Fetches[i])
		}
		for i := range r.Serves {
			d.env.Objects.Serve(r.Serves[i])
		}
		for i := range r.Evicts {
			d.env.Objects.Evict(r.Evicts[i])
		}
		for i := range r.Roles {
			d.role(&r.Roles[i])
		}
		for i := range r.Answers {
			d.env.Answerer.Answer(r.Answers[i])
		}
		for i := range r.EntryReqs {
			d.env.Bootstrap.Entries(r.EntryReqs[i])
		}
		d.persistDue = d.persistDue || r.Persist
		n.Advance()
	}
	if on := n.Online(); on != d.online {
		d.online, d.regsDirty = on, true
	}
	if d.regsDirty {
		d.regsDirty = false
		if d.online {
			d.env.Bootstrap.Register(slices.Clone(d.regs))
		} else {
			d.env.Bootstrap.Register(nil)
		}
	}
	if d.persistDue && d.env.Persister != nil {
		d.persistDue = false
		d.env.Persister.Persist(n.Snapshot())
	}
}

func (d *Driver) send(e *core.Envelope) {
	d.stats.MsgsSent++
	if d.msgT != nil {
		d.msgT.SendMsg(e.To, e.Msg)
		return
	}
	b, err := wire.Encode(e.Msg)
	if err != nil {
		// The core never makes a message the codec refuses; a test
		// checks it. Counted rather than sent half-formed.
		d.stats.EncodeErrors++
		return
	}
	d.stats.BytesSent += int64(len(b))
	d.env.Transport.Send(e.To, b)
}

// role keeps the registration set: one line per website of interest.
func (d *Driver) role(rc *core.RoleChange) {
	i := slices.IndexFunc(d.regs, func(r Registration) bool { return r.Site == rc.Site })
	if rc.Role == core.RoleNone {
		if i >= 0 {
			d.regs = slices.Delete(d.regs, i, i+1)
			d.regsDirty = true
		}
		return
	}
	reg := Registration{Site: rc.Site, Loc: d.node.Locality(), Role: rc.Role}
	if rc.Role == core.RoleDirectory {
		reg.Key = rc.Key
	}
	switch {
	case i < 0:
		d.regs = append(d.regs, reg)
	case d.regs[i] == reg:
		return
	default:
		d.regs[i] = reg
	}
	d.regsDirty = true
}

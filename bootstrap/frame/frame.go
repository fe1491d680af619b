// Package frame is the wire format between a peer and the bootstrap service:
// one binary WebSocket message carries one frame.
//
// Every frame starts with two bytes, the format version (Version) and the
// frame type; the rest is type specific, fixed-width big-endian integers and
// length-prefixed byte strings. Signalling payloads (SDP offers, answers, ICE
// candidates) are opaque bytes to the service, bounded by MaxSignal.
//
// Decode never panics on any input and rejects trailing bytes, unknown types,
// unsupported versions and every length that exceeds a limit, so a decoded
// frame re-encodes to exactly the bytes it came from.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/registry"
)

// Version is the frame format version this package speaks. Version 2: the
// Challenge carries the key layout's instance bits, a registration carries
// the D-ring key a directory holds, Entries carries keyed members in three
// lists.
const Version = 2

// Limits that are part of the format.
const (
	// MaxFrame is the largest frame (one WebSocket message) in bytes.
	MaxFrame = 20 << 10
	// MaxSignal is the largest opaque signalling payload in bytes.
	MaxSignal = 16 << 10
	// MaxRegs is the largest number of (site, locality, role) registrations.
	MaxRegs = 64
	// MaxLocal, MaxRemote and MaxRandom bound the three lists of an Entries
	// frame; they are the registry's limits on one answer.
	MaxLocal  = registry.MaxLocal
	MaxRemote = registry.MaxRemote
	MaxRandom = registry.MaxRandom
	// MaxURLs is the largest number of alternate URLs in a GoAway frame.
	MaxURLs = 8
	// MaxText is the longest text (error message, reason, URL) in bytes.
	MaxText = 255
	// NonceLen is the length of the server challenge.
	NonceLen = 32
	// MaxReportSites is the most sites one Report frame carries.
	MaxReportSites = 32
	// MaxReportCount bounds every count of one site in one Report frame
	// (requests, verification failures, histogram buckets): a report
	// carries what happened since the previous one, seconds to minutes.
	MaxReportCount = 1 << 20
	// MaxReportBytes bounds the bytes of one source of one site in one
	// Report frame (1 TiB).
	MaxReportBytes = 1 << 40
	// PubKeyLen and SigLen are the Ed25519 sizes.
	PubKeyLen = 32
	SigLen    = 64
)

// Type is a frame type. Values are part of the wire format: never renumber.
type Type uint8

// Server to peer.
const (
	TChallenge Type = 0x01 // Nonce, MaxFrame (server's limit), Localities, InstanceBits
	TWelcome   Type = 0x02 // Peer (the authenticated id), PingInterval (seconds)
	TError     Type = 0x03 // Code, Ref (frame type it answers), Peer, ReqID, Text
	TDeliver   Type = 0x04 // Peer (sender, stamped by the server), Payload
	TEntries   Type = 0x05 // ReqID, Local, Remote, Random
	TGoAway    Type = 0x06 // RetryMs, URLs, Text (reason)
	TPong      Type = 0x07 // ReqID
)

// Peer to server.
const (
	THello    Type = 0x10 // PubKey, Sig
	TRegister Type = 0x11 // Regs: the full set, replacing the previous one
	TSignal   Type = 0x12 // Peer (target), Payload
	TEntryReq Type = 0x13 // ReqID, Site (0: random members only), Loc, N
	TPing     Type = 0x14 // ReqID
	TReport   Type = 0x15 // Report: per-site counter deltas (docs/operator-metrics.md)
)

func (t Type) String() string {
	switch t {
	case TChallenge:
		return "challenge"
	case TWelcome:
		return "welcome"
	case TError:
		return "error"
	case TDeliver:
		return "deliver"
	case TEntries:
		return "entries"
	case TGoAway:
		return "goaway"
	case TPong:
		return "pong"
	case THello:
		return "hello"
	case TRegister:
		return "register"
	case TSignal:
		return "signal"
	case TEntryReq:
		return "entry_req"
	case TPing:
		return "ping"
	case TReport:
		return "report"
	}
	return fmt.Sprintf("type_%#02x", uint8(t))
}

// Role of a peer for one website.
type Role uint8

// Roles, as in the protocol: a client has not joined a petal yet, a content
// peer caches and serves, a directory peer indexes its petal and is a D-ring
// member (and so an entry point).
const (
	RoleClient    Role = 1
	RoleContent   Role = 2
	RoleDirectory Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleContent:
		return "content"
	case RoleDirectory:
		return "directory"
	}
	return fmt.Sprintf("role_%d", uint8(r))
}

// Reg is one registration: the peer serves Site in locality Loc with Role.
// A directory peer also names the D-ring key it holds for the site (its
// PetalUp instance's key): the key must belong to Site in the server's key
// layout and carry Loc in its locality bits. Other roles send Key 0.
type Reg struct {
	Site ids.SiteID
	Loc  uint16
	Role Role
	Key  ids.Key
}

// SiteReport is one site's part of a Report frame: what the peer counted for
// the site since its previous report. Origin is the site's origin
// (scheme://host[:port]) or empty; when set, ids.SiteOf(Origin) is Site.
type SiteReport struct {
	Site     ids.SiteID
	Origin   string
	Counters opmetrics.SiteCounters
}

// regLen is the encoded size of a Reg: site u64, loc u16, role u8, key u64.
const regLen = 8 + 2 + 1 + 8

// memberLen is the encoded size of a keyed member: key u64, peer id.
const memberLen = 8 + ids.PeerIDLen

// Code is an error code carried by an Error frame.
type Code uint16

// Error codes. Values are part of the wire format: never renumber.
const (
	CodeMalformed     Code = 1  // the frame does not decode
	CodeUnknownType   Code = 2  // a frame type this server does not know
	CodeOutOfOrder    Code = 3  // a valid frame at the wrong time (e.g. before Hello)
	CodeTooLarge      Code = 4  // the frame exceeds the server's MaxFrame
	CodeAuthFailed    Code = 5  // bad signature or key
	CodeUnknownTarget Code = 6  // no connected peer has that id
	CodeRateLimited   Code = 7  // the frame was dropped by a rate limit
	CodeBadRegister   Code = 8  // site not allowed, locality out of range, bad role
	CodeServerFull    Code = 9  // maximum peers reached
	CodeSlowReader    Code = 10 // the peer's send queue overflowed
	CodeShuttingDown  Code = 11 // the server stops: reconnect elsewhere
	CodeBadVersion    Code = 12 // unsupported frame version
	CodeInternal      Code = 13 // a server-side failure
	CodeReplaced      Code = 14 // the same peer id connected again
	CodeIdle          Code = 15 // nothing received for too long
	CodeTargetBusy    Code = 16 // the target's queue has no room for this sender's signal: dropped, retry later
	CodeBadReport     Code = 17 // a counter report refused: malformed, oversized, a site not registered; nothing of it counted
)

func (c Code) String() string {
	switch c {
	case CodeMalformed:
		return "malformed"
	case CodeUnknownType:
		return "unknown_type"
	case CodeOutOfOrder:
		return "out_of_order"
	case CodeTooLarge:
		return "too_large"
	case CodeAuthFailed:
		return "auth_failed"
	case CodeUnknownTarget:
		return "unknown_target"
	case CodeRateLimited:
		return "rate_limited"
	case CodeBadRegister:
		return "bad_register"
	case CodeServerFull:
		return "server_full"
	case CodeSlowReader:
		return "slow_reader"
	case CodeShuttingDown:
		return "shutting_down"
	case CodeBadVersion:
		return "bad_version"
	case CodeInternal:
		return "internal"
	case CodeReplaced:
		return "replaced"
	case CodeIdle:
		return "idle"
	case CodeTargetBusy:
		return "target_busy"
	case CodeBadReport:
		return "bad_report"
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Frame is the decoded form of every frame type; only the fields named in the
// comment of its Type are meaningful. Payload, and nothing else, aliases the
// decoded buffer: copy it to keep it beyond the buffer's lifetime.
type Frame struct {
	Type Type

	Peer    ids.PeerID // Welcome, Error, Deliver, Signal
	Payload []byte     // Deliver, Signal

	Nonce        [NonceLen]byte // Challenge
	MaxFrame     uint32         // Challenge
	Localities   uint16         // Challenge
	InstanceBits uint8          // Challenge: the key layout is keymgr.NewLayout(Localities, InstanceBits)

	PingInterval uint16 // Welcome, in seconds

	Code Code   // Error
	Ref  Type   // Error: the type of the frame it answers (0: none)
	Text string // Error message, GoAway reason

	ReqID  uint32          // Error, Entries, EntryReq, Ping, Pong
	Local  []ids.Member    // Entries: the site's directories in the asker's locality
	Remote []ids.Member    // Entries: the site's directories in other localities
	Random []ids.Member    // Entries: random D-ring members of any site
	Site   ids.SiteID      // EntryReq
	Loc    uint16          // EntryReq
	N      uint8           // EntryReq
	Regs   []Reg           // Register
	Report []SiteReport    // Report
	URLs   []string        // GoAway
	Retry  uint32          // GoAway: milliseconds to wait before reconnecting
	Key    [PubKeyLen]byte // Hello
	Sig    [SigLen]byte    // Hello
}

// Errors returned by Decode. They are wrapped with detail; test with errors.Is.
var (
	ErrShort       = errors.New("frame truncated")
	ErrTrailing    = errors.New("trailing bytes after frame")
	ErrVersion     = errors.New("unsupported frame version")
	ErrUnknownType = errors.New("unknown frame type")
	ErrLimit       = errors.New("frame field exceeds limit")
	ErrInvalid     = errors.New("invalid frame field")
)

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(ErrShort)
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) peer() (id ids.PeerID) {
	copy(id[:], r.take(ids.PeerIDLen))
	return id
}

// members reads a one-byte count (at most max) and that many keyed members.
func (r *reader) members(what string, max int) []ids.Member {
	n := int(r.u8())
	if r.err != nil || n == 0 {
		return nil
	}
	if n > max {
		r.fail(fmt.Errorf("%w: %d %s members > %d", ErrLimit, n, what, max))
		return nil
	}
	if len(r.b) < n*memberLen {
		r.fail(ErrShort)
		return nil
	}
	ms := make([]ids.Member, n)
	for i := range ms {
		ms[i].Key = ids.Key(r.u64())
		ms[i].ID = r.peer()
	}
	return ms
}

// text reads a one-byte length and that many bytes (<= MaxText by design).
func (r *reader) text() string {
	n := int(r.u8())
	return string(r.take(n))
}

// Decode parses one frame. It never panics; every error wraps one of the Err
// values above.
func Decode(b []byte) (Frame, error) {
	var f Frame
	if len(b) > MaxFrame {
		return f, fmt.Errorf("%w: %d bytes > %d", ErrLimit, len(b), MaxFrame)
	}
	if len(b) < 2 {
		return f, fmt.Errorf("%w: %d bytes, need a 2-byte header", ErrShort, len(b))
	}
	if b[0] != Version {
		return f, fmt.Errorf("%w: %d (speaks %d)", ErrVersion, b[0], Version)
	}
	f.Type = Type(b[1])
	r := reader{b: b[2:]}
	switch f.Type {
	case TChallenge:
		copy(f.Nonce[:], r.take(NonceLen))
		f.MaxFrame = r.u32()
		f.Localities = r.u16()
		f.InstanceBits = r.u8()
	case TWelcome:
		f.Peer = r.peer()
		f.PingInterval = r.u16()
	case TError:
		f.Code = Code(r.u16())
		f.Ref = Type(r.u8())
		f.Peer = r.peer()
		f.ReqID = r.u32()
		f.Text = r.text()
	case TDeliver, TSignal:
		f.Peer = r.peer()
		if r.err == nil {
			if len(r.b) > MaxSignal {
				return f, fmt.Errorf("%w: signal payload %d bytes > %d", ErrLimit, len(r.b), MaxSignal)
			}
			f.Payload = r.b
			r.b = nil
		}
	case TEntries:
		f.ReqID = r.u32()
		f.Local = r.members("local", MaxLocal)
		f.Remote = r.members("remote", MaxRemote)
		f.Random = r.members("random", MaxRandom)
	case TGoAway:
		f.Retry = r.u32()
		n := int(r.u8())
		if n > MaxURLs {
			return f, fmt.Errorf("%w: %d urls > %d", ErrLimit, n, MaxURLs)
		}
		for i := 0; i < n && r.err == nil; i++ {
			f.URLs = append(f.URLs, r.text())
		}
		f.Text = r.text()
	case TPong, TPing:
		f.ReqID = r.u32()
	case THello:
		copy(f.Key[:], r.take(PubKeyLen))
		copy(f.Sig[:], r.take(SigLen))
	case TRegister:
		n := int(r.u8())
		if n > MaxRegs {
			return f, fmt.Errorf("%w: %d registrations > %d", ErrLimit, n, MaxRegs)
		}
		if r.err == nil && len(r.b) >= n*regLen && n > 0 {
			f.Regs = make([]Reg, n)
			for i := range f.Regs {
				f.Regs[i] = Reg{Site: ids.SiteID(r.u64()), Loc: r.u16(), Role: Role(r.u8()), Key: ids.Key(r.u64())}
				if f.Regs[i].Role < RoleClient || f.Regs[i].Role > RoleDirectory {
					return f, fmt.Errorf("%w: role %d", ErrInvalid, f.Regs[i].Role)
				}
			}
		} else if n > 0 {
			r.fail(ErrShort)
		}
	case TEntryReq:
		f.ReqID = r.u32()
		f.Site = ids.SiteID(r.u64())
		f.Loc = r.u16()
		f.N = r.u8()
	case TReport:
		rep, err := r.report()
		if err != nil {
			return f, fmt.Errorf("%s frame: %w", f.Type, err)
		}
		f.Report = rep
	default:
		return f, fmt.Errorf("%w: %#02x", ErrUnknownType, uint8(f.Type))
	}
	if r.err != nil {
		return f, fmt.Errorf("%s frame: %w", f.Type, r.err)
	}
	if len(r.b) != 0 {
		return f, fmt.Errorf("%s frame: %w (%d)", f.Type, ErrTrailing, len(r.b))
	}
	return f, nil
}

func appendText(b []byte, s string) []byte {
	if len(s) > MaxText {
		s = s[:MaxText]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// Append encodes f after dst. Fields beyond a limit are truncated (texts, lists)
// so that the result always decodes; payloads over MaxSignal are the caller's
// error and are truncated too.
func (f *Frame) Append(dst []byte) []byte {
	b := append(dst, Version, byte(f.Type))
	switch f.Type {
	case TChallenge:
		b = append(b, f.Nonce[:]...)
		b = binary.BigEndian.AppendUint32(b, f.MaxFrame)
		b = binary.BigEndian.AppendUint16(b, f.Localities)
		b = append(b, f.InstanceBits)
	case TWelcome:
		b = append(b, f.Peer[:]...)
		b = binary.BigEndian.AppendUint16(b, f.PingInterval)
	case TError:
		b = binary.BigEndian.AppendUint16(b, uint16(f.Code))
		b = append(b, byte(f.Ref))
		b = append(b, f.Peer[:]...)
		b = binary.BigEndian.AppendUint32(b, f.ReqID)
		b = appendText(b, f.Text)
	case TDeliver, TSignal:
		b = append(b, f.Peer[:]...)
		p := f.Payload
		if len(p) > MaxSignal {
			p = p[:MaxSignal]
		}
		b = append(b, p...)
	case TEntries:
		b = binary.BigEndian.AppendUint32(b, f.ReqID)
		b = appendMembers(b, f.Local, MaxLocal)
		b = appendMembers(b, f.Remote, MaxRemote)
		b = appendMembers(b, f.Random, MaxRandom)
	case TGoAway:
		b = binary.BigEndian.AppendUint32(b, f.Retry)
		us := f.URLs
		if len(us) > MaxURLs {
			us = us[:MaxURLs]
		}
		b = append(b, byte(len(us)))
		for _, u := range us {
			b = appendText(b, u)
		}
		b = appendText(b, f.Text)
	case TPong, TPing:
		b = binary.BigEndian.AppendUint32(b, f.ReqID)
	case THello:
		b = append(b, f.Key[:]...)
		b = append(b, f.Sig[:]...)
	case TRegister:
		rs := f.Regs
		if len(rs) > MaxRegs {
			rs = rs[:MaxRegs]
		}
		b = append(b, byte(len(rs)))
		for _, r := range rs {
			b = binary.BigEndian.AppendUint64(b, uint64(r.Site))
			b = binary.BigEndian.AppendUint16(b, r.Loc)
			b = append(b, byte(r.Role))
			b = binary.BigEndian.AppendUint64(b, uint64(r.Key))
		}
	case TEntryReq:
		b = binary.BigEndian.AppendUint32(b, f.ReqID)
		b = binary.BigEndian.AppendUint64(b, uint64(f.Site))
		b = binary.BigEndian.AppendUint16(b, f.Loc)
		b = append(b, f.N)
	case TReport:
		b = appendReport(b, f.Report)
	}
	return b
}

// appendMembers appends a one-byte count and up to max keyed members.
func appendMembers(b []byte, ms []ids.Member, max int) []byte {
	if len(ms) > max {
		ms = ms[:max]
	}
	b = append(b, byte(len(ms)))
	for _, m := range ms {
		b = binary.BigEndian.AppendUint64(b, uint64(m.Key))
		b = append(b, m.ID[:]...)
	}
	return b
}

// AppendDeliver encodes a Deliver frame without building a Frame; the server's
// hot path.
func AppendDeliver(dst []byte, from ids.PeerID, payload []byte) []byte {
	b := append(dst, Version, byte(TDeliver))
	b = append(b, from[:]...)
	return append(b, payload...)
}

// AppendSignal encodes a Signal frame; the peer's hot path.
func AppendSignal(dst []byte, to ids.PeerID, payload []byte) []byte {
	b := append(dst, Version, byte(TSignal))
	b = append(b, to[:]...)
	return append(b, payload...)
}

// AuthContext is the domain separation prefix of the Hello signature.
const AuthContext = "flower-cdn bootstrap auth v1"

// AuthMessage is what a peer signs to answer a challenge: the domain prefix,
// the name of the service it dialled (host[:port] of its WebSocket URL, in
// lower case) and the server nonce. The service checks the signature against
// its own configured public names, never against the Host header a client
// sends, so a signature a hostile service obtains for its own name cannot be
// relayed to the real one.
func AuthMessage(host string, nonce [NonceLen]byte) []byte {
	b := make([]byte, 0, len(AuthContext)+1+len(host)+1+NonceLen)
	b = append(b, AuthContext...)
	b = append(b, 0)
	b = append(b, host...)
	b = append(b, 0)
	return append(b, nonce[:]...)
}

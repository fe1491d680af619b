// Package dirmsg is the encoding of the directory messages bootstrap
// instances exchange over NATS (subject <prefix>.dir): the D-ring members
// (key, peer id) that registered with one instance. It is pure: Append
// encodes, Decode parses untrusted bytes, never panics, and rejects every
// malformed input (unknown magic or op, lengths, counts, trailing bytes), so
// that whatever decodes re-encodes to the same bytes.
//
// Layout, big-endian:
//
//	magic u8 (0xD2) | op u8 | loc bits u8 | instance bits u8 |
//	instance length u8 | instance (1..MaxInstance bytes) |
//	count u16 (<= MaxItems) | count x (key u64 | peer id [16])
//
// The key layout (loc bits, instance bits) lets a receiver ignore an
// instance configured with another layout, whose keys it cannot interpret.
// The magic is not a valid op of the first, unversioned format, whose
// instances ignore these messages.
package dirmsg

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flowercdn/flower/shared/ids"
)

// Magic starts every message of this format.
const Magic = 0xD2

// Op is what a message says about its items.
type Op uint8

// Ops. Values are part of the format: never renumber.
const (
	OpAdd      Op = 1 // the instance's peers registered these members
	OpRemove   Op = 2 // ... withdrew these members
	OpSnapshot Op = 3 // periodic refresh: all (a chunk) of the instance's members
	OpBye      Op = 4 // the instance stops: drop all its members (no items)
)

func (o Op) String() string {
	switch o {
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	case OpSnapshot:
		return "snapshot"
	case OpBye:
		return "bye"
	}
	return fmt.Sprintf("op_%d", uint8(o))
}

// Limits of the format.
const (
	// MaxInstance is the longest instance name in bytes.
	MaxInstance = 64
	// MaxItems is the most members in one message (a snapshot is sent in
	// chunks of at most this many).
	MaxItems = 2000
	// ItemLen is the encoded size of one member.
	ItemLen = 8 + ids.PeerIDLen
	// headerLen is the size before the instance name.
	headerLen = 5
)

// Msg is one directory message.
type Msg struct {
	Op       Op
	LocBits  uint8
	InstBits uint8
	Instance string // the sending instance's id (non-empty)
	Items    []ids.Member
}

// Errors returned by Decode (wrapped with detail).
var (
	ErrShort    = errors.New("directory message truncated")
	ErrTrailing = errors.New("trailing bytes after directory message")
	ErrInvalid  = errors.New("invalid directory message")
)

// Append encodes m after dst. It returns an error for a message Decode
// would reject, so that nothing unreadable is ever published.
func Append(dst []byte, m Msg) ([]byte, error) {
	if err := m.check(); err != nil {
		return dst, err
	}
	b := append(dst, Magic, byte(m.Op), m.LocBits, m.InstBits, byte(len(m.Instance)))
	b = append(b, m.Instance...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Items)))
	for _, it := range m.Items {
		b = binary.BigEndian.AppendUint64(b, uint64(it.Key))
		b = append(b, it.ID[:]...)
	}
	return b, nil
}

func (m Msg) check() error {
	switch {
	case m.Op < OpAdd || m.Op > OpBye:
		return fmt.Errorf("%w: %s", ErrInvalid, m.Op)
	case len(m.Instance) == 0 || len(m.Instance) > MaxInstance:
		return fmt.Errorf("%w: instance name of %d bytes, want 1..%d", ErrInvalid, len(m.Instance), MaxInstance)
	case len(m.Items) > MaxItems:
		return fmt.Errorf("%w: %d items > %d", ErrInvalid, len(m.Items), MaxItems)
	case m.Op == OpBye && len(m.Items) != 0:
		return fmt.Errorf("%w: bye with %d items", ErrInvalid, len(m.Items))
	case int(m.LocBits)+int(m.InstBits) > 64:
		return fmt.Errorf("%w: key layout of %d+%d bits", ErrInvalid, m.LocBits, m.InstBits)
	}
	for _, it := range m.Items {
		if it.ID.IsZero() {
			return fmt.Errorf("%w: member %s without a peer id", ErrInvalid, it)
		}
	}
	return nil
}

// Decode parses one message. It never panics; errors wrap ErrShort,
// ErrTrailing or ErrInvalid.
func Decode(b []byte) (Msg, error) {
	var m Msg
	if len(b) < headerLen {
		return m, fmt.Errorf("%w: %d bytes, header is %d", ErrShort, len(b), headerLen)
	}
	if b[0] != Magic {
		return m, fmt.Errorf("%w: magic %#02x, want %#02x", ErrInvalid, b[0], Magic)
	}
	m.Op, m.LocBits, m.InstBits = Op(b[1]), b[2], b[3]
	n := int(b[4])
	b = b[headerLen:]
	if len(b) < n+2 {
		return Msg{}, fmt.Errorf("%w: instance name of %d bytes and count", ErrShort, n)
	}
	m.Instance = string(b[:n])
	count := int(binary.BigEndian.Uint16(b[n:]))
	b = b[n+2:]
	if count > MaxItems {
		return Msg{}, fmt.Errorf("%w: %d items > %d", ErrInvalid, count, MaxItems)
	}
	switch {
	case len(b) < count*ItemLen:
		return Msg{}, fmt.Errorf("%w: %d items need %d bytes, have %d", ErrShort, count, count*ItemLen, len(b))
	case len(b) > count*ItemLen:
		return Msg{}, fmt.Errorf("%w: %d bytes", ErrTrailing, len(b)-count*ItemLen)
	}
	if count > 0 {
		m.Items = make([]ids.Member, count)
		for i := range m.Items {
			e := b[i*ItemLen:]
			m.Items[i].Key = ids.Key(binary.BigEndian.Uint64(e))
			copy(m.Items[i].ID[:], e[8:ItemLen])
		}
	}
	if err := m.check(); err != nil {
		return Msg{}, err
	}
	return m, nil
}

package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
)

// Version is the wire format version, the first byte of every frame.
const Version = 1

// Hard limits of the wire format. Append refuses to encode a message that
// exceeds one of them and Decode refuses to decode one, before it allocates
// anything for the offending field. Every message that respects the
// per-field limits encodes to at most MaxFrame bytes (the largest, a
// DirSummary with a filter of MaxBloomBits and MaxDirs directories, takes
// 286762 bytes).
const (
	// MaxFrame is the largest encoded frame, version and type bytes
	// included. A transport may need to split frames into smaller chunks
	// (browsers' WebRTC data channels carry at most 256 KiB per message).
	MaxFrame = 512 << 10
	// MaxView is the largest number of contacts in a View (NotFound,
	// InitView, Shuffle). It covers the largest view size core.Config
	// accepts (1000).
	MaxView = 1024
	// MaxIDs is the largest number of object ids in each list of a Push
	// (Added and Removed): a Full push describes a cache of at most MaxIDs
	// objects.
	MaxIDs = 16384
	// MaxMembers is the largest successor list (PredReply.Succs,
	// JoinReply.Succs). It equals the largest successor list length
	// core.Config accepts.
	MaxMembers = 32
	// MaxDirs is the largest list of directories (DirSummary.Dirs,
	// Promote.Dirs). Promote names at most 2^InstanceBits <= 256 instances.
	MaxDirs = 1024
	// MaxBloomBits is the largest Bloom filter, in bits (256 KiB of words):
	// about 220 000 elements at a 1% false-positive rate.
	MaxBloomBits = 1 << 21
	// MaxBloomK is the largest number of hash functions of a Bloom filter.
	MaxBloomK = 32
)

// Sentinel errors. Every error Append, Encode and Decode return wraps exactly
// one of them, with the message and field at fault; test with errors.Is.
var (
	// ErrTruncated: the input ends before the message does.
	ErrTruncated = errors.New("wire: truncated")
	// ErrTooLarge: a length exceeds one of the Max limits.
	ErrTooLarge = errors.New("wire: too large")
	// ErrUnknownType: the message type is not one this version knows.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrVersion: the frame has a version other than Version.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrMalformed: a value is out of range (a bool other than 0 or 1, an
	// unknown QueryMode, a non-minimal varint, a Bloom filter with bits set
	// beyond its length, ...), trailing bytes follow the message, or the
	// message to encode is nil.
	ErrMalformed = errors.New("wire: malformed")
)

// Fixed field sizes in bytes.
const (
	headerLen  = 2                     // version, type
	u64Len     = 8                     // ids.Key, ids.SiteID, ids.ObjectID
	peerLen    = ids.PeerIDLen         // ids.PeerID
	memberLen  = u64Len + peerLen      // ids.Member
	minContact = peerLen + 1           // Contact with a one-byte age
	_          = uint(255 - MaxBloomK) // compile-time check: MaxBloomK fits in one byte
)

var typeNames = [...]string{
	TQuery:      "Query",
	TMiss:       "Miss",
	TNotFound:   "NotFound",
	TInitView:   "InitView",
	TShuffle:    "Shuffle",
	TPush:       "Push",
	TPushAck:    "PushAck",
	TDirSummary: "DirSummary",
	TFindSucc:   "FindSucc",
	TFoundSucc:  "FoundSucc",
	TGetPred:    "GetPred",
	TPredReply:  "PredReply",
	TJoin:       "Join",
	TJoinReply:  "JoinReply",
	TNotify:     "Notify",
	TPing:       "Ping",
	TPong:       "Pong",
	TPromote:    "Promote",
	TServed:     "Served",
}

// String is the name of the message type, such as "Query", or "Type(n)" for
// a type this version does not know.
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Encode returns the frame of m. See Append.
func Encode(m Msg) ([]byte, error) {
	b, err := Append(nil, m)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Append appends the frame of m to dst and returns the extended slice. It
// returns an error wrapping ErrTooLarge when m exceeds a limit, ErrMalformed
// when m is nil or holds an unencodable value (an unknown QueryMode, an empty
// or inconsistent Bloom filter) and ErrUnknownType when m is not one of this
// package's messages. On error Append returns dst itself.
// Append never truncates a message to make it fit.
func Append(dst []byte, m Msg) ([]byte, error) {
	start := len(dst)
	buf := dst
	if n := Size(m); n > 0 && n <= MaxFrame {
		buf = slices.Grow(buf, n)
	}
	out, err := appendMsg(buf, m)
	if err != nil {
		return dst, err
	}
	if n := len(out) - start; n > MaxFrame {
		return dst, fmt.Errorf("wire: encode %s: frame of %d bytes exceeds MaxFrame %d: %w",
			m.Type(), n, MaxFrame, ErrTooLarge)
	}
	return out, nil
}

func encErr(t Type, field string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("wire: encode %s.%s: %s: %w", t, field, fmt.Sprintf(format, args...), sentinel)
}

func errNil(m Msg) error {
	if m == nil {
		return fmt.Errorf("wire: encode: nil message: %w", ErrMalformed)
	}
	return fmt.Errorf("wire: encode %s: nil %T: %w", m.Type(), m, ErrMalformed)
}

func appendMsg(b []byte, m Msg) ([]byte, error) {
	var err error
	switch v := m.(type) {
	case nil:
		return b, errNil(m)
	case *Query:
		if v == nil {
			return b, errNil(m)
		}
		if v.Mode > QServe {
			return b, encErr(TQuery, "Mode", ErrMalformed, "unknown query mode %d", v.Mode)
		}
		b = append(b, Version, byte(TQuery))
		b = binary.AppendUvarint(b, v.QID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Obj))
		b = append(b, v.Origin[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = append(b, byte(v.Mode))
		b = binary.AppendUvarint(b, uint64(v.Hops))
		b = appendBool(b, v.NewClient)
	case *Miss:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TMiss))
		b = binary.AppendUvarint(b, v.QID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Obj))
	case *NotFound:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TNotFound, "View", len(v.View), MaxView, "MaxView"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TNotFound))
		b = binary.AppendUvarint(b, v.QID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Obj))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = appendBool(b, v.Vacant)
		b = appendDir(b, v.Dir)
		b = appendView(b, v.View)
	case *InitView:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TInitView, "View", len(v.View), MaxView, "MaxView"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TInitView))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = appendDir(b, v.Dir)
		b = appendView(b, v.View)
	case *Shuffle:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TShuffle, "View", len(v.View), MaxView, "MaxView"); err != nil {
			return b, err
		}
		if err := checkBloom(TShuffle, "Summary", v.Summary); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TShuffle))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = appendBool(b, v.Reply)
		b = appendDir(b, v.Dir)
		b = appendView(b, v.View)
		b = appendBloom(b, v.Summary)
	case *Push:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TPush, "Added", len(v.Added), MaxIDs, "MaxIDs"); err != nil {
			return b, err
		}
		if err := checkLen(TPush, "Removed", len(v.Removed), MaxIDs, "MaxIDs"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TPush))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = appendBool(b, v.Full)
		b = appendObjects(b, v.Added)
		b = appendObjects(b, v.Removed)
		b = binary.AppendUvarint(b, uint64(v.Up))
	case *PushAck:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TPushAck))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = appendBool(b, v.OK)
		b = appendDir(b, v.Dir)
	case *DirSummary:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkBloom(TDirSummary, "Summary", v.Summary); err != nil {
			return b, err
		}
		if err := checkLen(TDirSummary, "Dirs", len(v.Dirs), MaxDirs, "MaxDirs"); err != nil {
			return b, err
		}
		if err := checkLen(TDirSummary, "Added", len(v.Added), MaxIDs, "MaxIDs"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TDirSummary))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = appendMember(b, v.From)
		b = appendBloom(b, v.Summary)
		b = appendMembers(b, v.Dirs)
		b = appendObjects(b, v.Added)
	case *FindSucc:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TFindSucc))
		b = binary.AppendUvarint(b, v.ReqID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = append(b, v.Origin[:]...)
		b = binary.AppendUvarint(b, uint64(v.Hops))
	case *FoundSucc:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TFoundSucc))
		b = binary.AppendUvarint(b, v.ReqID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = appendMember(b, v.Succ)
		b = binary.AppendUvarint(b, uint64(v.Hops))
	case *GetPred:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TGetPred))
		b = binary.AppendUvarint(b, v.ReqID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.To))
	case *PredReply:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TPredReply, "Succs", len(v.Succs), MaxMembers, "MaxMembers"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TPredReply))
		b = binary.AppendUvarint(b, v.ReqID)
		b = appendBool(b, v.OK)
		b = appendMember(b, v.Pred)
		b = appendMembers(b, v.Succs)
	case *Join:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TJoin))
		b = binary.AppendUvarint(b, v.ReqID)
		b = appendMember(b, v.Me)
	case *JoinReply:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TJoinReply, "Succs", len(v.Succs), MaxMembers, "MaxMembers"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TJoinReply))
		b = binary.AppendUvarint(b, v.ReqID)
		b = appendBool(b, v.OK)
		b = appendMember(b, v.Holder)
		b = appendMembers(b, v.Succs)
	case *Notify:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TNotify))
		b = binary.BigEndian.AppendUint64(b, uint64(v.To))
		b = appendMember(b, v.Me)
	case *Ping:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TPing))
		b = binary.AppendUvarint(b, v.ReqID)
		b = binary.BigEndian.AppendUint64(b, uint64(v.To))
	case *Pong:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TPong))
		b = binary.AppendUvarint(b, v.ReqID)
		b = appendBool(b, v.OK)
	case *Promote:
		if v == nil {
			return b, errNil(m)
		}
		if err := checkLen(TPromote, "Dirs", len(v.Dirs), MaxDirs, "MaxDirs"); err != nil {
			return b, err
		}
		b = append(b, Version, byte(TPromote))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Site))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Key))
		b = binary.AppendUvarint(b, uint64(v.Gen))
		b = appendMembers(b, v.Dirs)
	case *Served:
		if v == nil {
			return b, errNil(m)
		}
		b = append(b, Version, byte(TServed))
		b = binary.AppendUvarint(b, v.QID)
		b = append(b, v.Origin[:]...)
	default:
		err = fmt.Errorf("wire: encode: %T is not a message of package wire: %w", m, ErrUnknownType)
	}
	return b, err
}

func checkLen(t Type, field string, n, limit int, limitName string) error {
	if n > limit {
		return encErr(t, field, ErrTooLarge, "%d entries exceed %s (%d)", n, limitName, limit)
	}
	return nil
}

// checkBloom reports whether f (nil allowed) can be encoded.
func checkBloom(t Type, field string, f *bloom.BloomFilter) error {
	if f == nil {
		return nil
	}
	m, k := f.Cap(), f.K()
	switch {
	case m == 0:
		return encErr(t, field, ErrMalformed, "Bloom filter of 0 bits")
	case m > MaxBloomBits:
		return encErr(t, field, ErrTooLarge, "Bloom filter of %d bits exceeds MaxBloomBits (%d)", m, MaxBloomBits)
	case k == 0:
		return encErr(t, field, ErrMalformed, "Bloom filter with 0 hash functions")
	case k > MaxBloomK:
		return encErr(t, field, ErrTooLarge, "Bloom filter with %d hash functions exceeds MaxBloomK (%d)", k, MaxBloomK)
	}
	words := bloomWords(f)
	nw := int((m + 63) / 64)
	for i := nw; i < len(words); i++ {
		if words[i] != 0 {
			return encErr(t, field, ErrMalformed, "Bloom filter of %d bits has bits set in word %d", m, i)
		}
	}
	if r := m % 64; r != 0 && nw <= len(words) && words[nw-1]>>r != 0 {
		return encErr(t, field, ErrMalformed, "Bloom filter of %d bits has bits set beyond its length", m)
	}
	return nil
}

func bloomWords(f *bloom.BloomFilter) []uint64 {
	if bs := f.BitSet(); bs != nil {
		return bs.Words()
	}
	return nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendMember(b []byte, m ids.Member) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(m.Key))
	return append(b, m.ID[:]...)
}

func appendDir(b []byte, d DirInfo) []byte {
	b = appendMember(b, d.Member)
	return binary.AppendUvarint(b, uint64(d.Gen))
}

func appendView(b []byte, view []Contact) []byte {
	b = binary.AppendUvarint(b, uint64(len(view)))
	for i := range view {
		b = append(b, view[i].ID[:]...)
		b = binary.AppendUvarint(b, uint64(view[i].Age))
	}
	return b
}

func appendMembers(b []byte, ms []ids.Member) []byte {
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		b = appendMember(b, m)
	}
	return b
}

func appendObjects(b []byte, objs []ids.ObjectID) []byte {
	b = binary.AppendUvarint(b, uint64(len(objs)))
	for _, o := range objs {
		b = binary.BigEndian.AppendUint64(b, uint64(o))
	}
	return b
}

// appendBloom appends f, which checkBloom accepted.
func appendBloom(b []byte, f *bloom.BloomFilter) []byte {
	if f == nil {
		return append(b, 0)
	}
	m := f.Cap()
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(m))
	b = append(b, byte(f.K()))
	words := bloomWords(f)
	nw := int((m + 63) / 64)
	n := min(nw, len(words))
	for _, w := range words[:n] {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	for range nw - n { // a filter whose bitset is shorter than m: missing words are zero
		b = binary.LittleEndian.AppendUint64(b, 0)
	}
	return b
}

// uvarintLen is the length of the unsigned varint encoding of x.
func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
)

// Decode parses one frame. It accepts exactly the frames Append produces, so
// a decoded message re-encodes to the same bytes. b is untrusted: Decode
// never panics, checks every length against its limit before it allocates
// (and against what the rest of b can hold), and returns an error wrapping
// ErrTruncated, ErrTooLarge, ErrUnknownType, ErrVersion or ErrMalformed that
// names the message and field at fault. Trailing bytes are an error. Empty
// lists decode as nil slices. The message does not alias b.
func Decode(b []byte) (Msg, error) {
	switch {
	case len(b) > MaxFrame:
		return nil, fmt.Errorf("wire: decode: frame of %d bytes exceeds MaxFrame (%d): %w", len(b), MaxFrame, ErrTooLarge)
	case len(b) == 0:
		return nil, fmt.Errorf("wire: decode: empty frame: %w", ErrTruncated)
	case b[0] != Version:
		return nil, fmt.Errorf("wire: decode: version %d, want %d: %w", b[0], Version, ErrVersion)
	case len(b) == 1:
		return nil, fmt.Errorf("wire: decode: frame ends before the message type: %w", ErrTruncated)
	}
	t := Type(b[1])
	d := decoder{b: b[headerLen:], t: t}
	var m Msg
	switch t {
	case TQuery:
		m = d.query()
	case TMiss:
		m = &Miss{QID: d.uvarint("QID"), Site: ids.SiteID(d.u64("Site")), Obj: ids.ObjectID(d.u64("Obj"))}
	case TNotFound:
		m = &NotFound{
			QID:    d.uvarint("QID"),
			Site:   ids.SiteID(d.u64("Site")),
			Obj:    ids.ObjectID(d.u64("Obj")),
			Key:    ids.Key(d.u64("Key")),
			Vacant: d.bool("Vacant"),
			Dir:    d.dir("Dir"),
			View:   d.view("View"),
		}
	case TInitView:
		m = &InitView{Site: ids.SiteID(d.u64("Site")), Dir: d.dir("Dir"), View: d.view("View")}
	case TShuffle:
		m = &Shuffle{
			Site:    ids.SiteID(d.u64("Site")),
			Reply:   d.bool("Reply"),
			Dir:     d.dir("Dir"),
			View:    d.view("View"),
			Summary: d.bloom("Summary"),
		}
	case TPush:
		m = d.push()
	case TPushAck:
		m = &PushAck{
			Site: ids.SiteID(d.u64("Site")),
			Key:  ids.Key(d.u64("Key")),
			OK:   d.bool("OK"),
			Dir:  d.dir("Dir"),
		}
	case TDirSummary:
		m = &DirSummary{
			Site:    ids.SiteID(d.u64("Site")),
			From:    d.member("From"),
			Summary: d.bloom("Summary"),
			Dirs:    d.members("Dirs", MaxDirs, "MaxDirs"),
			Added:   d.objects("Added", MaxIDs, "MaxIDs"),
		}
	case TFindSucc:
		m = &FindSucc{
			ReqID:  d.uvarint("ReqID"),
			Key:    ids.Key(d.u64("Key")),
			Origin: d.peer("Origin"),
			Hops:   uint8(d.uvarintMax("Hops", math.MaxUint8)),
		}
	case TFoundSucc:
		m = &FoundSucc{
			ReqID: d.uvarint("ReqID"),
			Key:   ids.Key(d.u64("Key")),
			Succ:  d.member("Succ"),
			Hops:  uint8(d.uvarintMax("Hops", math.MaxUint8)),
		}
	case TGetPred:
		m = &GetPred{ReqID: d.uvarint("ReqID"), To: ids.Key(d.u64("To"))}
	case TPredReply:
		m = &PredReply{
			ReqID: d.uvarint("ReqID"),
			OK:    d.bool("OK"),
			Pred:  d.member("Pred"),
			Succs: d.members("Succs", MaxMembers, "MaxMembers"),
		}
	case TJoin:
		m = &Join{ReqID: d.uvarint("ReqID"), Me: d.member("Me")}
	case TJoinReply:
		m = &JoinReply{
			ReqID:  d.uvarint("ReqID"),
			OK:     d.bool("OK"),
			Holder: d.member("Holder"),
			Succs:  d.members("Succs", MaxMembers, "MaxMembers"),
		}
	case TNotify:
		m = &Notify{To: ids.Key(d.u64("To")), Me: d.member("Me")}
	case TPing:
		m = &Ping{ReqID: d.uvarint("ReqID"), To: ids.Key(d.u64("To"))}
	case TPong:
		m = &Pong{ReqID: d.uvarint("ReqID"), OK: d.bool("OK")}
	case TPromote:
		m = &Promote{
			Site: ids.SiteID(d.u64("Site")),
			Key:  ids.Key(d.u64("Key")),
			Gen:  uint32(d.uvarintMax("Gen", math.MaxUint32)),
			Dirs: d.members("Dirs", MaxDirs, "MaxDirs"),
		}
	case TServed:
		m = &Served{
			QID:    d.uvarint("QID"),
			Origin: d.peer("Origin"),
		}
	default:
		return nil, fmt.Errorf("wire: decode: message type %d: %w", uint8(t), ErrUnknownType)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("wire: decode %s: %d trailing bytes: %w", t, len(d.b), ErrMalformed)
	}
	return m, nil
}

// decoder reads the fields of one message from b. The first failure is
// recorded in err; every later read returns a zero value, so a message's
// fields can be read in one expression and the error checked once. Go
// evaluates the fields of a composite literal in order, which is the wire
// order.
type decoder struct {
	b   []byte
	t   Type
	err error
}

func (d *decoder) fail(field string, sentinel error, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("wire: decode %s.%s: %s: %w", d.t, field, fmt.Sprintf(format, args...), sentinel)
	}
}

// need reports whether n more bytes are available, failing otherwise.
func (d *decoder) need(field string, n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.fail(field, ErrTruncated, "need %d bytes, have %d", n, len(d.b))
		return false
	}
	return true
}

func (d *decoder) byte(field string) byte {
	if !d.need(field, 1) {
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool(field string) bool {
	switch c := d.byte(field); c {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(field, ErrMalformed, "bool byte %d", c)
		return false
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail(field, ErrTruncated, "varint cut short")
		return 0
	case n < 0:
		d.fail(field, ErrMalformed, "varint overflows 64 bits")
		return 0
	case n != uvarintLen(x):
		d.fail(field, ErrMalformed, "non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// uvarintMax reads a varint that must not exceed max (the range of the
// field's type).
func (d *decoder) uvarintMax(field string, max uint64) uint64 {
	x := d.uvarint(field)
	if x > max {
		d.fail(field, ErrMalformed, "value %d exceeds %d", x, max)
		return 0
	}
	return x
}

func (d *decoder) u64(field string) uint64 {
	if !d.need(field, u64Len) {
		return 0
	}
	x := binary.BigEndian.Uint64(d.b)
	d.b = d.b[u64Len:]
	return x
}

func (d *decoder) peer(field string) ids.PeerID {
	var p ids.PeerID
	if d.need(field, peerLen) {
		copy(p[:], d.b)
		d.b = d.b[peerLen:]
	}
	return p
}

func (d *decoder) member(field string) ids.Member {
	if !d.need(field, memberLen) {
		return ids.Member{}
	}
	return ids.Member{Key: ids.Key(d.u64(field)), ID: d.peer(field)}
}

func (d *decoder) dir(field string) DirInfo {
	return DirInfo{Member: d.member(field), Gen: uint32(d.uvarintMax(field+".Gen", math.MaxUint32))}
}

// count reads a list length, checks it against limit and then against the
// bytes left, elements taking at least elem bytes each. Only then may the
// caller allocate.
func (d *decoder) count(field string, limit int, limitName string, elem int) int {
	x := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if x > uint64(limit) {
		d.fail(field, ErrTooLarge, "%d entries exceed %s (%d)", x, limitName, limit)
		return 0
	}
	n := int(x)
	if n*elem > len(d.b) {
		d.fail(field, ErrTruncated, "%d entries need at least %d bytes, have %d", n, n*elem, len(d.b))
		return 0
	}
	return n
}

func (d *decoder) view(field string) []Contact {
	n := d.count(field, MaxView, "MaxView", minContact)
	if n == 0 {
		return nil
	}
	view := make([]Contact, n)
	for i := range view {
		view[i] = Contact{ID: d.peer(field), Age: uint16(d.uvarintMax(field+".Age", math.MaxUint16))}
	}
	if d.err != nil {
		return nil
	}
	return view
}

func (d *decoder) members(field string, limit int, limitName string) []ids.Member {
	n := d.count(field, limit, limitName, memberLen)
	if n == 0 {
		return nil
	}
	ms := make([]ids.Member, n)
	for i := range ms {
		ms[i] = d.member(field)
	}
	return ms
}

func (d *decoder) objects(field string, limit int, limitName string) []ids.ObjectID {
	n := d.count(field, limit, limitName, u64Len)
	if n == 0 {
		return nil
	}
	objs := make([]ids.ObjectID, n)
	for i := range objs {
		objs[i] = ids.ObjectID(d.u64(field))
	}
	return objs
}

func (d *decoder) query() *Query {
	q := &Query{
		QID:    d.uvarint("QID"),
		Site:   ids.SiteID(d.u64("Site")),
		Obj:    ids.ObjectID(d.u64("Obj")),
		Origin: d.peer("Origin"),
		Key:    ids.Key(d.u64("Key")),
	}
	if mode := d.byte("Mode"); mode > byte(QServe) {
		d.fail("Mode", ErrMalformed, "unknown query mode %d", mode)
	} else {
		q.Mode = QueryMode(mode)
	}
	q.Hops = uint8(d.uvarintMax("Hops", math.MaxUint8))
	q.NewClient = d.bool("NewClient")
	return q
}

func (d *decoder) push() *Push {
	p := &Push{
		Site: ids.SiteID(d.u64("Site")),
		Key:  ids.Key(d.u64("Key")),
		Full: d.bool("Full"),
	}
	p.Added = d.objects("Added", MaxIDs, "MaxIDs")
	p.Removed = d.objects("Removed", MaxIDs, "MaxIDs")
	p.Up = uint32(d.uvarintMax("Up", math.MaxUint32))
	return p
}

// bloom reads an optional Bloom filter: a presence byte, then m as a varint,
// k as one byte and ceil(m/64) little-endian words.
func (d *decoder) bloom(field string) *bloom.BloomFilter {
	switch c := d.byte(field); {
	case d.err != nil:
		return nil
	case c == 0:
		return nil
	case c != 1:
		d.fail(field, ErrMalformed, "Bloom filter presence byte %d", c)
		return nil
	}
	m := d.uvarint(field + ".m")
	switch {
	case d.err != nil:
		return nil
	case m == 0:
		d.fail(field+".m", ErrMalformed, "Bloom filter of 0 bits")
		return nil
	case m > MaxBloomBits:
		d.fail(field+".m", ErrTooLarge, "Bloom filter of %d bits exceeds MaxBloomBits (%d)", m, MaxBloomBits)
		return nil
	}
	k := d.byte(field + ".k")
	switch {
	case d.err != nil:
		return nil
	case k == 0:
		d.fail(field+".k", ErrMalformed, "Bloom filter with 0 hash functions")
		return nil
	case k > MaxBloomK:
		d.fail(field+".k", ErrTooLarge, "Bloom filter with %d hash functions exceeds MaxBloomK (%d)", k, MaxBloomK)
		return nil
	}
	nw := int((m + 63) / 64)
	if !d.need(field+".words", nw*u64Len) {
		return nil
	}
	if r := m % 64; r != 0 && binary.LittleEndian.Uint64(d.b[(nw-1)*u64Len:])>>r != 0 {
		d.fail(field+".words", ErrMalformed, "Bloom filter of %d bits has bits set beyond its length", m)
		return nil
	}
	// bloom.New gives the filter exactly the shape of one the sender built
	// with New (a bitset of m bits in ceil(m/64) words), so that Equal and
	// reflect.DeepEqual hold between the two; bloom.FromWithM would round
	// the bitset length up to a multiple of 64.
	f := bloom.New(uint(m), uint(k))
	words := f.BitSet().Words()
	if len(words) != nw {
		words = make([]uint64, nw)
		f = bloom.FromWithM(words, uint(m), uint(k))
	}
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(d.b[i*u64Len:])
	}
	d.b = d.b[nw*u64Len:]
	return f
}

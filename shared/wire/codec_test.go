package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
)

// sample is a named message for table-driven tests.
type sample struct {
	name string
	msg  Msg
	// added lists the elements added to the message's Bloom filter, if any.
	added []string
}

func rng() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func peerID(r *rand.Rand) ids.PeerID {
	var p ids.PeerID
	binary.LittleEndian.PutUint64(p[:8], r.Uint64())
	binary.LittleEndian.PutUint64(p[8:], r.Uint64())
	return p
}

func member(r *rand.Rand) ids.Member {
	return ids.Member{Key: ids.Key(r.Uint64()), ID: peerID(r)}
}

func members(r *rand.Rand, n int) []ids.Member {
	ms := make([]ids.Member, n)
	for i := range ms {
		ms[i] = member(r)
	}
	return ms
}

func view(r *rand.Rand, n int) []Contact {
	v := make([]Contact, n)
	ages := []uint16{0, 1, 127, 128, 16383, 16384, math.MaxUint16}
	for i := range v {
		v[i] = Contact{ID: peerID(r), Age: ages[i%len(ages)]}
	}
	return v
}

func objects(r *rand.Rand, n int) []ids.ObjectID {
	o := make([]ids.ObjectID, n)
	for i := range o {
		o[i] = ids.ObjectID(r.Uint64())
	}
	return o
}

// filter returns a Bloom filter of m bits and k hash functions holding n
// elements, and the elements.
func filter(m, k uint, n int, prefix string) (*bloom.BloomFilter, []string) {
	f := bloom.New(m, k)
	var added []string
	for i := range n {
		s := fmt.Sprintf("%s/object/%d", prefix, i)
		f.AddString(s)
		added = append(added, s)
	}
	return f, added
}

// samples returns messages of every type: a zero one and ones with
// non-trivial values, small enough to test every prefix.
func samples() []sample {
	r := rng()
	estM, estK := bloom.EstimateParameters(200, 0.01) // m is not a multiple of 64
	est, estAdded := filter(estM, estK, 200, "https://a.example")
	f64, f64Added := filter(640, 5, 40, "https://b.example")
	tiny, tinyAdded := filter(1, 1, 1, "t") // one bit
	odd, oddAdded := filter(65, 3, 5, "odd")
	s := []sample{
		{name: "Query/full", msg: &Query{QID: 1<<63 + 12345, Site: ids.SiteOf("https://a.example"),
			Obj: ids.ObjectOf("https://a.example/x.js"), Origin: peerID(r), Key: ids.Key(r.Uint64()),
			Mode: QLookup, Hops: 200, NewClient: true}},
		{name: "Query/serve", msg: &Query{QID: 300, Site: 1, Obj: 2, Origin: peerID(r), Key: 3, Mode: QServe, Hops: 127}},
		{name: "Query/forward", msg: &Query{QID: 1, Mode: QForward, Hops: 128}},
		{name: "Miss", msg: &Miss{QID: math.MaxUint64, Site: ids.SiteID(r.Uint64()), Obj: ids.ObjectID(r.Uint64())}},
		{name: "NotFound/vacant", msg: &NotFound{QID: 77, Site: ids.SiteID(r.Uint64()), Obj: ids.ObjectID(r.Uint64()),
			Key: ids.Key(r.Uint64()), Vacant: true, Dir: DirInfo{Member: member(r), Gen: math.MaxUint32}, View: view(r, 9)}},
		{name: "NotFound/noview", msg: &NotFound{QID: 5, Dir: DirInfo{Gen: 1}}},
		{name: "InitView", msg: &InitView{Site: ids.SiteID(r.Uint64()), Dir: DirInfo{Member: member(r), Gen: 128},
			View: view(r, 20)}},
		{name: "Shuffle/estimates", msg: &Shuffle{Site: ids.SiteID(r.Uint64()), Reply: true,
			Dir: DirInfo{Member: member(r), Gen: 1 << 20}, View: view(r, 8), Summary: est}, added: estAdded},
		{name: "Shuffle/odd", msg: &Shuffle{Site: 9, Dir: DirInfo{Member: member(r)}, View: view(r, 1), Summary: odd},
			added: oddAdded},
		{name: "Shuffle/nosummary", msg: &Shuffle{Site: ids.SiteID(r.Uint64()), View: view(r, 3)}},
		{name: "Push/full", msg: &Push{Site: ids.SiteID(r.Uint64()), Key: ids.Key(r.Uint64()), Full: true,
			Added: objects(r, 100), Up: 3600}},
		{name: "Push/up-max", msg: &Push{Site: 1, Key: 2, Up: math.MaxUint32}},
		{name: "Push/delta", msg: &Push{Site: ids.SiteID(r.Uint64()), Key: ids.Key(r.Uint64()),
			Added: objects(r, 3), Removed: objects(r, 130)}},
		{name: "Push/keepalive", msg: &Push{Site: 1, Key: 2, Added: []ids.ObjectID{}, Removed: []ids.ObjectID{}}},
		{name: "PushAck", msg: &PushAck{Site: ids.SiteID(r.Uint64()), Key: ids.Key(r.Uint64()), OK: true,
			Dir: DirInfo{Member: member(r), Gen: 99999}}},
		{name: "DirSummary/full", msg: &DirSummary{Site: ids.SiteID(r.Uint64()), From: member(r), Summary: f64,
			Dirs: members(r, 7)}, added: f64Added},
		{name: "DirSummary/tiny", msg: &DirSummary{Site: 3, From: member(r), Summary: tiny}, added: tinyAdded},
		{name: "DirSummary/delta", msg: &DirSummary{Site: 3, From: member(r), Added: objects(r, 5)}},
		{name: "Served", msg: &Served{QID: 1 << 40, Origin: peerID(r)}},
		{name: "FindSucc", msg: &FindSucc{ReqID: 1 << 35, Key: ids.Key(r.Uint64()), Origin: peerID(r), Hops: 255}},
		{name: "FoundSucc", msg: &FoundSucc{ReqID: 42, Key: ids.Key(r.Uint64()), Succ: member(r), Hops: 3}},
		{name: "GetPred", msg: &GetPred{ReqID: 1 << 14, To: ids.Key(r.Uint64())}},
		{name: "PredReply", msg: &PredReply{ReqID: 8, OK: true, Pred: member(r), Succs: members(r, 4)}},
		{name: "Join", msg: &Join{ReqID: 123456789, Me: member(r)}},
		{name: "JoinReply/refused", msg: &JoinReply{ReqID: 2, Holder: member(r), Succs: members(r, 1)}},
		{name: "Notify", msg: &Notify{To: ids.Key(r.Uint64()), Me: member(r)}},
		{name: "Ping", msg: &Ping{ReqID: 1<<62 + 1, To: ids.Key(r.Uint64())}},
		{name: "Pong", msg: &Pong{ReqID: 1<<62 + 1, OK: true}},
		{name: "Promote", msg: &Promote{Site: ids.SiteID(r.Uint64()), Key: ids.Key(r.Uint64()), Gen: 70000,
			Dirs: members(r, 7)}},
	}
	for _, m := range []Msg{&Query{}, &Miss{}, &NotFound{}, &InitView{}, &Shuffle{}, &Push{}, &PushAck{},
		&DirSummary{}, &Served{}, &FindSucc{}, &FoundSucc{}, &GetPred{}, &PredReply{}, &Join{}, &JoinReply{},
		&Notify{}, &Ping{}, &Pong{}, &Promote{}} {
		s = append(s, sample{name: m.Type().String() + "/zero", msg: m})
	}
	return s
}

// maxSamples returns messages with every list and filter at its limit and
// every varint at its longest: the largest frames of each type.
func maxSamples() []sample {
	r := rng()
	big, bigAdded := filter(MaxBloomBits, MaxBloomK, 5000, "max")
	view := func(r *rand.Rand, n int) []Contact {
		v := view(r, n)
		for i := range v {
			v[i].Age = math.MaxUint16
		}
		return v
	}
	return []sample{
		{name: "NotFound/max", msg: &NotFound{QID: math.MaxUint64, Dir: DirInfo{Gen: math.MaxUint32},
			View: view(r, MaxView)}},
		{name: "InitView/max", msg: &InitView{Dir: DirInfo{Gen: math.MaxUint32}, View: view(r, MaxView)}},
		{name: "Shuffle/max", msg: &Shuffle{Dir: DirInfo{Gen: math.MaxUint32}, View: view(r, MaxView),
			Summary: big}, added: bigAdded},
		{name: "Push/max-added", msg: &Push{Added: objects(r, MaxIDs)}},
		{name: "Push/max-both", msg: &Push{Added: objects(r, MaxIDs), Removed: objects(r, MaxIDs)}},
		{name: "DirSummary/max", msg: &DirSummary{Summary: big, Dirs: members(r, MaxDirs), Added: objects(r, MaxIDs)},
			added: bigAdded},
		{name: "PredReply/max", msg: &PredReply{ReqID: math.MaxUint64, Succs: members(r, MaxMembers)}},
		{name: "JoinReply/max", msg: &JoinReply{ReqID: math.MaxUint64, Succs: members(r, MaxMembers)}},
		{name: "Promote/max", msg: &Promote{Gen: math.MaxUint32, Dirs: members(r, MaxDirs)}},
	}
}

// bloomState is the content of a Bloom filter: its length m, its number of
// hash functions k and its ceil(m/64) words (missing words are zero).
type bloomState struct {
	M, K  uint
	Words []uint64
}

func stateOf(f *bloom.BloomFilter) *bloomState {
	if f == nil {
		return nil
	}
	s := &bloomState{M: f.Cap(), K: f.K(), Words: make([]uint64, (f.Cap()+63)/64)}
	if bs := f.BitSet(); bs != nil {
		copy(s.Words, bs.Words())
	}
	return s
}

// normalised is a message made comparable with reflect.DeepEqual: empty
// slices are nil and Bloom filters are replaced by their state.
type normalised struct {
	Msg    Msg
	Blooms []*bloomState
}

func normalise(m Msg) normalised {
	if m == nil {
		return normalised{}
	}
	src := reflect.ValueOf(m).Elem()
	cp := reflect.New(src.Type())
	cp.Elem().Set(src)
	n := normalised{Msg: cp.Interface().(Msg)}
	bloomType := reflect.TypeFor[*bloom.BloomFilter]()
	for i := range cp.Elem().NumField() {
		f := cp.Elem().Field(i)
		switch {
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.Set(reflect.Zero(f.Type()))
		case f.Type() == bloomType:
			n.Blooms = append(n.Blooms, stateOf(f.Interface().(*bloom.BloomFilter)))
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return n
}

func summaryOf(m Msg) *bloom.BloomFilter {
	switch v := m.(type) {
	case *Shuffle:
		return v.Summary
	case *DirSummary:
		return v.Summary
	}
	return nil
}

func checkRoundTrip(t *testing.T, s sample) []byte {
	t.Helper()
	b, err := Encode(s.msg)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if got := Size(s.msg); got != len(b) {
		t.Errorf("Size = %d, len(Encode) = %d", got, len(b))
	}
	if len(b) > MaxFrame {
		t.Errorf("frame of %d bytes exceeds MaxFrame", len(b))
	}
	if b[0] != Version || Type(b[1]) != s.msg.Type() {
		t.Errorf("header % x, want version %d type %d", b[:2], Version, s.msg.Type())
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if want, have := normalise(s.msg), normalise(got); !reflect.DeepEqual(want, have) {
		t.Fatalf("round trip mismatch:\nsent %+v\ngot  %+v", want, have)
	}
	if f := summaryOf(got); f != nil {
		for _, e := range s.added {
			if !f.TestString(e) {
				t.Fatalf("decoded filter lacks %q", e)
			}
		}
		// A filter built with bloom.New has a bitset of exactly m bits, and
		// so has the decoded one: they are Equal.
		if orig := summaryOf(s.msg); orig.BitSet() != nil && orig.BitSet().Len() == orig.Cap() && !f.Equal(orig) {
			t.Errorf("decoded filter not Equal to the original")
		}
	}
	again, err := Encode(got)
	if err != nil {
		t.Fatalf("re-Encode: %v", err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs")
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			checkRoundTrip(t, s)
			seen[s.msg.Type()] = true
		})
	}
	for typ := TQuery; typ <= TPromote; typ++ {
		if !seen[typ] {
			t.Errorf("no sample of type %v", typ)
		}
	}
}

func TestRoundTripAtLimits(t *testing.T) {
	for _, s := range maxSamples() {
		t.Run(s.name, func(t *testing.T) {
			b := checkRoundTrip(t, s)
			t.Logf("%d bytes", len(b))
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	prefix := []byte("prefix")
	var want []byte
	for _, s := range samples() {
		b, err := Encode(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	got := append([]byte(nil), prefix...)
	for _, s := range samples() {
		var err error
		if got, err = Append(got, s.msg); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatal("Append output differs from concatenated Encode outputs")
	}
	// On error Append returns dst with its length unchanged.
	out, err := Append(prefix, &Query{Mode: 99})
	if err == nil || string(out) != "prefix" {
		t.Fatalf("Append on error = %q, %v", out, err)
	}
}

func TestEmptyListsDecodeNil(t *testing.T) {
	b, err := Encode(&Push{Added: []ids.ObjectID{}, Removed: []ids.ObjectID{}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.(*Push); p.Added != nil || p.Removed != nil {
		t.Fatalf("empty lists decoded as %#v, %#v", p.Added, p.Removed)
	}
}

func TestTruncation(t *testing.T) {
	for _, s := range samples() {
		b, err := Encode(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			m, err := Decode(b[:n])
			if !errors.Is(err, ErrTruncated) || m != nil {
				t.Fatalf("%s: Decode(first %d of %d bytes) = %v, %v; want ErrTruncated", s.name, n, len(b), m, err)
			}
		}
	}
}

func TestTrailingBytes(t *testing.T) {
	for _, s := range samples() {
		b, err := Encode(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tail := range [][]byte{{0}, {1, 2, 3}, b} {
			m, err := Decode(append(b[:len(b):len(b)], tail...))
			if !errors.Is(err, ErrMalformed) || m != nil || !strings.Contains(err.Error(), "trailing") {
				t.Fatalf("%s + % x: Decode = %v, %v; want trailing-bytes ErrMalformed", s.name, tail, m, err)
			}
		}
	}
}

// frame encodes m and replaces its last cut bytes by tail, to build a frame
// that claims whatever tail says.
func frame(t *testing.T, m Msg, cut int, tail ...byte) []byte {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(b[:len(b)-cut:len(b)-cut], tail...)
}

func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestEncodeErrors(t *testing.T) {
	r := rng()
	type foreign struct{ Msg }
	tests := []struct {
		name  string
		msg   Msg
		want  error
		field string
	}{
		{"NotFound.View", &NotFound{View: view(r, MaxView+1)}, ErrTooLarge, "NotFound.View"},
		{"InitView.View", &InitView{View: view(r, MaxView+1)}, ErrTooLarge, "InitView.View"},
		{"Shuffle.View", &Shuffle{View: view(r, MaxView+1)}, ErrTooLarge, "Shuffle.View"},
		{"Push.Added", &Push{Added: objects(r, MaxIDs+1)}, ErrTooLarge, "Push.Added"},
		{"Push.Removed", &Push{Removed: objects(r, MaxIDs+1)}, ErrTooLarge, "Push.Removed"},
		{"Push.Removed after full Added", &Push{Added: objects(r, MaxIDs), Removed: objects(r, MaxIDs+1)}, ErrTooLarge, "Push.Removed"},
		{"DirSummary.Dirs", &DirSummary{Dirs: members(r, MaxDirs+1)}, ErrTooLarge, "DirSummary.Dirs"},
		{"Promote.Dirs", &Promote{Dirs: members(r, MaxDirs+1)}, ErrTooLarge, "Promote.Dirs"},
		{"PredReply.Succs", &PredReply{Succs: members(r, MaxMembers+1)}, ErrTooLarge, "PredReply.Succs"},
		{"JoinReply.Succs", &JoinReply{Succs: members(r, MaxMembers+1)}, ErrTooLarge, "JoinReply.Succs"},
		{"bloom m", &Shuffle{Summary: bloom.New(MaxBloomBits+1, 3)}, ErrTooLarge, "Shuffle.Summary"},
		{"bloom k", &DirSummary{Summary: bloom.New(64, MaxBloomK+1)}, ErrTooLarge, "DirSummary.Summary"},
		{"bloom m=0", &Shuffle{Summary: bloom.FromWithM(nil, 0, 3)}, ErrMalformed, "Shuffle.Summary"},
		{"bloom k=0", &Shuffle{Summary: bloom.FromWithM([]uint64{0}, 64, 0)}, ErrMalformed, "Shuffle.Summary"},
		{"bloom padding", &Shuffle{Summary: bloom.FromWithM([]uint64{1 << 10}, 10, 3)}, ErrMalformed, "Shuffle.Summary"},
		{"bloom extra word", &DirSummary{Summary: bloom.FromWithM([]uint64{0, 1}, 64, 3)}, ErrMalformed, "DirSummary.Summary"},
		{"Query.Mode", &Query{Mode: QServe + 1}, ErrMalformed, "Query.Mode"},
		{"nil", nil, ErrMalformed, "nil message"},
		{"typed nil", (*Push)(nil), ErrMalformed, "nil *wire.Push"},
		{"foreign", foreign{}, ErrUnknownType, "wire.foreign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.msg)
			if !errors.Is(err, tt.want) || b != nil {
				t.Fatalf("Encode = %d bytes, %v; want %v", len(b), err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestEncodeBloomShapes(t *testing.T) {
	// A filter whose bitset holds fewer words than m needs encodes the
	// missing words as zeros; zero words beyond m are dropped.
	for _, f := range []*bloom.BloomFilter{
		bloom.New(0, 0), // m and k are raised to 1, but the bitset has no word
		bloom.FromWithM(nil, 130, 2),
		bloom.FromWithM([]uint64{5, 0, 0}, 64, 2),
		bloom.From([]uint64{1, 2, 3}, 4),
	} {
		m := &Shuffle{Summary: f}
		checkRoundTrip(t, sample{name: "shape", msg: m})
	}
}

func TestDecodeErrors(t *testing.T) {
	objs := make([]ids.ObjectID, MaxIDs)
	tests := []struct {
		name  string
		in    []byte
		want  error
		field string
	}{
		{"empty", nil, ErrTruncated, "empty"},
		{"version 0", []byte{0, byte(TPing), 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrVersion, "version 0"},
		{"version 2", []byte{2, byte(TPing)}, ErrVersion, "version 2"},
		{"type 0", []byte{Version, 0}, ErrUnknownType, "type 0"},
		{"type 20", []byte{Version, 20, 0}, ErrUnknownType, "type 20"},
		{"type 255", []byte{Version, 255}, ErrUnknownType, "type 255"},
		{"MaxFrame", append([]byte{Version, byte(TPush)}, make([]byte, MaxFrame-1)...), ErrTooLarge, "MaxFrame"},
		{"exactly MaxFrame", append([]byte{Version, byte(TPush)}, make([]byte, MaxFrame-2)...), ErrMalformed, "trailing"},

		{"NotFound.View", frame(t, &NotFound{}, 1, uv(MaxView+1)...), ErrTooLarge, "NotFound.View"},
		{"InitView.View", frame(t, &InitView{}, 1, uv(MaxView+1)...), ErrTooLarge, "InitView.View"},
		{"Shuffle.View", frame(t, &Shuffle{}, 2, cat(uv(MaxView+1), []byte{0})...), ErrTooLarge, "Shuffle.View"},
		{"Push.Added", frame(t, &Push{}, 3, cat(uv(MaxIDs+1), uv(0), uv(0))...), ErrTooLarge, "Push.Added"},
		{"Push.Removed", frame(t, &Push{}, 2, cat(uv(MaxIDs+1), uv(0))...), ErrTooLarge, "Push.Removed"},
		{"Push.Removed after full Added", frame(t, &Push{Added: objs}, 2, cat(uv(MaxIDs+1), uv(0))...), ErrTooLarge, "Push.Removed"},
		{"Push.Up", frame(t, &Push{}, 1, uv(math.MaxUint32+1)...), ErrMalformed, "Push.Up"},
		{"DirSummary.Dirs", frame(t, &DirSummary{}, 2, uv(MaxDirs+1)...), ErrTooLarge, "DirSummary.Dirs"},
		{"Promote.Dirs", frame(t, &Promote{}, 1, uv(MaxDirs+1)...), ErrTooLarge, "Promote.Dirs"},
		{"PredReply.Succs", frame(t, &PredReply{}, 1, uv(MaxMembers+1)...), ErrTooLarge, "PredReply.Succs"},
		{"JoinReply.Succs", frame(t, &JoinReply{}, 1, uv(MaxMembers+1)...), ErrTooLarge, "JoinReply.Succs"},
		{"huge count", frame(t, &Promote{}, 1, uv(math.MaxUint64)...), ErrTooLarge, "Promote.Dirs"},
		{"bloom m", frame(t, &DirSummary{}, 3, cat([]byte{1}, uv(MaxBloomBits+1), []byte{3})...), ErrTooLarge, "DirSummary.Summary.m"},
		{"bloom k", frame(t, &DirSummary{}, 3, cat([]byte{1}, uv(64), []byte{MaxBloomK + 1})...), ErrTooLarge, "DirSummary.Summary.k"},

		{"count beyond input", frame(t, &Push{}, 2, uv(MaxIDs/2)...), ErrTruncated, "Push.Removed"},
		{"bloom beyond input", frame(t, &DirSummary{}, 3, cat([]byte{1}, uv(MaxBloomBits), []byte{3})...), ErrTruncated, "DirSummary.Summary.words"},

		{"bool", frame(t, &Pong{}, 1, 2), ErrMalformed, "Pong.OK"},
		{"bool 255", frame(t, &Query{}, 1, 255), ErrMalformed, "Query.NewClient"},
		{"mode", frame(t, &Query{}, 3, byte(QServe+1), 0, 0), ErrMalformed, "Query.Mode"},
		{"hops", frame(t, &FindSucc{}, 1, uv(256)...), ErrMalformed, "FindSucc.Hops"},
		{"age", frame(t, &InitView{}, 1, cat(uv(1), make([]byte, peerLen), uv(1<<16))...), ErrMalformed, "InitView.View.Age"},
		{"gen", frame(t, &Promote{}, 2, cat(uv(1<<32), uv(0))...), ErrMalformed, "Promote.Gen"},
		{"dir gen", frame(t, &PushAck{}, 1, uv(1<<32)...), ErrMalformed, "PushAck.Dir.Gen"},
		{"non-minimal varint", []byte{Version, byte(TPong), 0x80, 0x00, 0}, ErrMalformed, "Pong.ReqID"},
		{"non-minimal zero count", frame(t, &Promote{}, 1, 0x80, 0x00), ErrMalformed, "Promote.Dirs"},
		{"varint overflow", cat([]byte{Version, byte(TPing)}, bytes.Repeat([]byte{0xff}, 10), []byte{1}), ErrMalformed, "Ping.ReqID"},
		{"bloom presence", frame(t, &Shuffle{}, 1, 2), ErrMalformed, "Shuffle.Summary"},
		{"bloom m=0", frame(t, &Shuffle{}, 1, 1, 0, 3), ErrMalformed, "Shuffle.Summary.m"},
		{"bloom k=0", frame(t, &Shuffle{}, 1, cat([]byte{1}, uv(64), []byte{0}, make([]byte, 8))...), ErrMalformed, "Shuffle.Summary.k"},
		{"bloom padding", frame(t, &Shuffle{}, 1, cat([]byte{1}, uv(10), []byte{3, 0, 4}, make([]byte, 6))...), ErrMalformed, "Shuffle.Summary.words"},
		{"bloom padding word 2", frame(t, &Shuffle{}, 1, cat([]byte{1}, uv(65), []byte{3}, make([]byte, 8), []byte{2}, make([]byte, 7))...), ErrMalformed, "Shuffle.Summary.words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.in)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("Decode = %v, %v; want %v", m, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

// TestDecodeAllocationBounded checks that a frame claiming a long list or a
// large Bloom filter it does not hold makes Decode allocate little.
func TestDecodeAllocationBounded(t *testing.T) {
	inputs := [][]byte{
		frame(t, &DirSummary{}, 3, cat([]byte{1}, uv(MaxBloomBits), []byte{3})...),
		frame(t, &Push{}, 2, cat(uv(MaxIDs), uv(0))...),
		frame(t, &InitView{}, 1, uv(MaxView)...),
		frame(t, &Promote{}, 1, uv(MaxDirs)...),
	}
	for i, in := range inputs {
		const runs = 100
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			if _, err := Decode(in); !errors.Is(err, ErrTruncated) {
				t.Fatalf("input %d: %v", i, err)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 2048 {
			t.Errorf("input %d: Decode allocated %d bytes per call", i, per)
		}
	}
}

func TestSize(t *testing.T) {
	for _, s := range append(samples(), maxSamples()...) {
		b, err := Encode(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		if Size(s.msg) != len(b) {
			t.Errorf("%s: Size = %d, encoded %d", s.name, Size(s.msg), len(b))
		}
	}
	for _, m := range []Msg{nil, (*Query)(nil), (*Promote)(nil), struct{ Msg }{}} {
		if n := Size(m); n != 0 {
			t.Errorf("Size(%#v) = %d, want 0", m, n)
		}
	}
	// Size counts what a message over the limits would take.
	over := &Push{Added: make([]ids.ObjectID, MaxIDs+1)}
	if want := 2 + 8 + 8 + 1 + uvarintLen(MaxIDs+1) + 8*(MaxIDs+1) + 1 + 1; Size(over) != want {
		t.Errorf("Size(over-limit Push) = %d, want %d", Size(over), want)
	}
	// Every Age and varint length boundary.
	for _, age := range []uint16{0, 127, 128, 16383, 16384, math.MaxUint16} {
		m := &InitView{View: []Contact{{Age: age}}}
		if b, _ := Encode(m); Size(m) != len(b) {
			t.Errorf("age %d: Size = %d, encoded %d", age, Size(m), len(b))
		}
	}
	for shift := range 64 {
		for _, x := range []uint64{1<<shift - 1, 1 << shift, 1<<shift + 1} {
			if got, want := uvarintLen(x), len(uv(x)); got != want {
				t.Errorf("uvarintLen(%d) = %d, want %d", x, got, want)
			}
		}
	}
}

func TestSizeDoesNotAllocate(t *testing.T) {
	ss := append(samples(), maxSamples()...)
	total := 0
	if n := testing.AllocsPerRun(100, func() {
		for _, s := range ss {
			total += Size(s.msg)
		}
	}); n != 0 {
		t.Fatalf("Size allocates: %v allocs per run", n)
	}
}

func TestTypeString(t *testing.T) {
	if TDirSummary.String() != "DirSummary" || Type(0).String() != "Type(0)" || Type(200).String() != "Type(200)" {
		t.Fatal("Type.String")
	}
}

func BenchmarkSize(b *testing.B) {
	ss := samples()
	msgs := make([]Msg, len(ss))
	for i, s := range ss {
		msgs[i] = s.msg
	}
	b.ReportAllocs()
	total, i := 0, 0
	for b.Loop() {
		total += Size(msgs[i])
		if i++; i == len(msgs) {
			i = 0
		}
	}
	if total < 0 {
		b.Fatal(total)
	}
}

func BenchmarkEncode(b *testing.B) {
	ss := samples()
	b.ReportAllocs()
	var buf []byte
	i := 0
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], ss[i].msg); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ss) {
			i = 0
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	var frames [][]byte
	for _, s := range samples() {
		f, err := Encode(s.msg)
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, f)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Decode(frames[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(frames) {
			i = 0
		}
	}
}

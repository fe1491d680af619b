package dirmsg

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

func sampleMsgs() []Msg {
	p := ids.PeerID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []Msg{
		{Op: OpAdd, LocBits: 3, InstBits: 3, Instance: "0123456789abcdef", Items: []ids.Member{{Key: 0x2a00000000000019, ID: p}}},
		{Op: OpRemove, LocBits: 3, InstBits: 3, Instance: "0123456789abcdef", Items: []ids.Member{{Key: 0x2a00000000000019, ID: p}}},
		{Op: OpSnapshot, LocBits: 2, InstBits: 0, Instance: "x", Items: []ids.Member{{Key: 1, ID: p}, {Key: 2, ID: ids.PeerID{9}}, {Key: 3, ID: ids.PeerID{0: 1, 15: 1}}}},
		{Op: OpSnapshot, LocBits: 3, InstBits: 3, Instance: "0123456789abcdef"},
		{Op: OpBye, LocBits: 3, InstBits: 8, Instance: "0123456789abcdef"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMsgs() {
		b, err := Append(nil, m)
		if err != nil {
			t.Fatalf("%s: append: %v", m.Op, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", m.Op, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", m.Op, got, m)
		}
		for i := range len(b) {
			if _, err := Decode(b[:i]); err == nil {
				t.Fatalf("%s: prefix %d/%d decoded", m.Op, i, len(b))
			}
		}
		if _, err := Decode(append(b, 0)); !errors.Is(err, ErrTrailing) && !errors.Is(err, ErrShort) {
			t.Fatalf("%s: trailing byte: %v", m.Op, err)
		}
	}
}

func TestRejects(t *testing.T) {
	good, _ := Append(nil, sampleMsgs()[0])
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"first format (op first)", mutate(func(b []byte) []byte { b[0] = 1; return b }), ErrInvalid},
		{"unknown op", mutate(func(b []byte) []byte { b[1] = 9; return b }), ErrInvalid},
		{"op zero", mutate(func(b []byte) []byte { b[1] = 0; return b }), ErrInvalid},
		{"empty instance", []byte{Magic, byte(OpAdd), 3, 3, 0, 0, 0}, ErrInvalid},
		{"instance too long", append(append([]byte{Magic, byte(OpAdd), 3, 3, MaxInstance + 1}, bytes.Repeat([]byte("i"), MaxInstance+1)...), 0, 0), ErrInvalid},
		{"instance past the end", []byte{Magic, byte(OpAdd), 3, 3, 9, 'a'}, ErrShort},
		{"count over the limit", []byte{Magic, byte(OpAdd), 3, 3, 1, 'a', 0xff, 0xff}, ErrInvalid},
		{"count past the end", mutate(func(b []byte) []byte { b[len(b)-ItemLen-1] = 2; return b }), ErrShort},
		{"count short of the end", mutate(func(b []byte) []byte { b[len(b)-ItemLen-1] = 0; return b }), ErrTrailing},
		{"zero peer id", append([]byte{Magic, byte(OpAdd), 3, 3, 1, 'a', 0, 1}, make([]byte, ItemLen)...), ErrInvalid},
		{"bye with items", mutate(func(b []byte) []byte { b[1] = byte(OpBye); return b }), ErrInvalid},
		{"layout over 64 bits", mutate(func(b []byte) []byte { b[2], b[3] = 60, 8; return b }), ErrInvalid},
	}
	for _, c := range cases {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	for _, m := range []Msg{
		{Op: 0, Instance: "a"},
		{Op: OpAdd},
		{Op: OpBye, Instance: "a", Items: []ids.Member{{Key: 1, ID: ids.PeerID{1}}}},
		{Op: OpAdd, Instance: "a", Items: []ids.Member{{Key: 1}}},
		{Op: OpAdd, Instance: "a", Items: make([]ids.Member, MaxItems+1)},
	} {
		if _, err := Append(nil, m); !errors.Is(err, ErrInvalid) {
			t.Errorf("append %+v: got %v, want ErrInvalid", m.Op, err)
		}
	}
}

// FuzzDirMsg checks that Decode never panics, rejects with one of its
// errors, and that whatever it accepts re-encodes to the same bytes. The
// seed corpus is in testdata/fuzz/FuzzDirMsg.
func FuzzDirMsg(f *testing.F) {
	for _, m := range sampleMsgs() {
		b, err := Append(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrTrailing) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v wraps none of the package's errors", err)
			}
			return
		}
		out, err := Append(nil, m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
		}
	})
}

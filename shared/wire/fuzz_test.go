package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode feeds Decode arbitrary bytes. Decode must not panic; an error
// must wrap one of the sentinels; a decoded message must re-encode, with the
// size Size announces, to exactly the input (the format is canonical) and
// decode again to an equal message.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b, err := Encode(s.msg)
		if err != nil {
			f.Fatalf("%s: %v", s.name, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %T and error %v", m, err)
			}
			for _, sentinel := range []error{ErrTruncated, ErrTooLarge, ErrUnknownType, ErrVersion, ErrMalformed} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(Decode(b)): %v", err)
		}
		if Size(m) != len(enc) {
			t.Fatalf("Size = %d, encoded %d bytes", Size(m), len(enc))
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\nin  % x\nout % x", b, enc)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(b))): %v", err)
		}
		if a, z := normalise(m), normalise(m2); !reflect.DeepEqual(a, z) {
			t.Fatalf("second decoding differs:\n%+v\n%+v", a, z)
		}
	})
}

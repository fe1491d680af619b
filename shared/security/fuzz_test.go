package security

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeSigned feeds DecodeSigned untrusted bytes. It must never panic;
// every error must wrap exactly one decode sentinel; every accepted input must
// re-encode to the same bytes (the encoding is canonical) and go through
// Verify without panicking. Seeds: testdata/fuzz/FuzzDecodeSigned plus the
// ones added here.
func FuzzDecodeSigned(f *testing.F) {
	k := mustKey(f, 5)
	good, err := Sign(k, testStatement()).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(encodeRaw(1, 15, "https://e.org/x", 10, "text/plain", 0))
	f.Add(encodeRaw(1, 0xffffffff, "", 0, "", 0))
	f.Add([]byte{})
	pub := k.Public()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSigned(b)
		if err != nil {
			if n := decodeSentinels(err); n != 1 {
				t.Fatalf("error %v wraps %d decode sentinels, want 1", err, n)
			}
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, enc)
		}
		_ = Verify(pub, s, s.URL, nil, testNow)
	})
}

// decodeSentinels counts the decode sentinels err wraps: a decoder's error
// wraps exactly one.
func decodeSentinels(err error) int {
	n := 0
	for _, e := range []error{ErrTruncated, ErrTooLarge, ErrMalformed, ErrVersion} {
		if errors.Is(err, e) {
			n++
		}
	}
	return n
}

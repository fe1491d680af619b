package peer

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/flowercdn/flower/shared/security"
)

func testStatement(t testing.TB) []byte {
	key, err := security.GenerateSiteKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := security.Sign(key, security.Statement{URL: "https://a.example/x", ContentType: "text/plain", Version: 3}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMetaRoundTrip(t *testing.T) {
	st := testStatement(t)
	loc, signed, raw, err := decodeMeta(encodeMeta(5, st))
	if err != nil || loc != 5 || !bytes.Equal(raw, st) || signed.URL != "https://a.example/x" {
		t.Fatalf("decode: loc %d url %q err %v", loc, signed.URL, err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     {metaFormat, 0},
		"format":    append([]byte{2, 0, 0}, st...),
		"statement": {metaFormat, 0, 1, 1, 2, 3},
		"trailing":  append(encodeMeta(1, st), 0),
	} {
		if _, _, _, err := decodeMeta(b); !errors.Is(err, ErrBadMeta) {
			t.Errorf("%s: err %v, want ErrBadMeta", name, err)
		}
	}
}

// FuzzDecodeMeta: the meta of a transfer comes from another peer; decoding
// never panics, and what decodes re-encodes to the same bytes.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(0, testStatement(f)))
	f.Add(encodeMeta(65535, testStatement(f)))
	f.Add([]byte{metaFormat, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, _, raw, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		if got := encodeMeta(loc, raw); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}

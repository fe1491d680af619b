package security

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseWellKnown feeds ParseWellKnown untrusted documents. It must never
// panic; every error must wrap one of the sentinels the package documents;
// an accepted document must pass Validate, marshal, and parse back to the
// same document; matching with it must not panic. Seeds:
// testdata/fuzz/FuzzParseWellKnown plus the ones added here.
func FuzzParseWellKnown(f *testing.F) {
	f.Add([]byte(`{"site":"https://example.org","public_key":"` + rfc8410Public + `","share":["/static/*","/img/*.png"]}`))
	f.Add([]byte(`{"site":"http://127.0.0.1:8080","public_key":"` + rfc8410Public + `","future":{"a":[1,2]}}`))
	f.Add([]byte(`{"site":"https://e.org","public_key":"` + rfc8410Public + `","share":["/a/../b"]}`))
	f.Add([]byte(`{"site":"https://E.org","public_key":"` + rfc8410Public + `"}`))
	f.Add([]byte(`{"site":"https://e.org","public_key":"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"site":"https://e.org","public_key":"` + rfc8410Public + `"} {}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	sentinels := []error{ErrTooLarge, ErrMalformed, ErrInvalidKey, ErrBadPattern}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWellKnown(b)
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("error %v wraps none of the documented sentinels", err)
			}
			if !strings.HasPrefix(err.Error(), "security: parse well-known document: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("parsed document does not validate: %v", err)
		}
		out, err := w.Marshal()
		if err != nil {
			t.Fatalf("parsed document does not marshal: %v", err)
		}
		back, err := ParseWellKnown(out)
		switch {
		case err != nil:
			t.Fatalf("re-parse of %s: %v", out, err)
		case back.Site != w.Site || back.PublicKey != w.PublicKey || !slices.Equal(back.Share, w.Share):
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, w)
		}
		for _, p := range append([]string{"/", "/static/x", ""}, w.Share...) {
			_ = w.Matches(p)
			_ = w.Shares(w.Site + p)
		}
	})
}

// FuzzParsePublicKey feeds ParsePublicKey untrusted text. It must never
// panic; errors wrap ErrInvalidKey; an accepted key is never zero and has
// exactly one text form, the input (String, MarshalText and UnmarshalText
// agree with it). Seeds: testdata/fuzz/FuzzParsePublicKey plus the ones
// added here.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(rfc8410Public)
	f.Add(mustKey(f, 7).Public().String())
	f.Add("ed25519:")
	f.Add("ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("ed25519:" + strings.Repeat("_", 43))
	f.Add("ED25519:" + strings.TrimPrefix(rfc8410Public, PublicKeyPrefix))
	f.Add(rfc8410Public + "=")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		if k.IsZero() {
			t.Fatal("accepted the all-zero key")
		}
		if k.String() != s {
			t.Fatalf("text form not canonical: parsed %q, prints %q", s, k.String())
		}
		txt, err := k.MarshalText()
		if err != nil || string(txt) != s {
			t.Fatalf("MarshalText = %q, %v", txt, err)
		}
		var u PublicKey
		if err := u.UnmarshalText(txt); err != nil || u != k {
			t.Fatalf("UnmarshalText: %x, %v", u[:], err)
		}
	})
}

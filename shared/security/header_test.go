package security

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestStatementHeaderRoundTrip(t *testing.T) {
	k := mustKey(t, 3)
	s := Sign(k, testStatement())
	v, err := EncodeStatementHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(enc); v != want {
		t.Fatalf("header value %q, want the unpadded base64url of Encode %q", v, want)
	}
	back, err := DecodeStatementHeader(v)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if back != s {
		t.Fatalf("round trip: got %+v, want %+v", back, s)
	}
	if err := Verify(k.Public(), back, s.URL, testBody, testNow); err != nil {
		t.Fatalf("verify decoded statement: %v", err)
	}

	// A statement at every limit encodes to exactly MaxStatementHeaderLen.
	big := Statement{
		URL:         "https://e.org/" + strings.Repeat("a", MaxURLLen-len("https://e.org/")),
		ContentType: strings.Repeat("t", MaxContentTypeLen),
	}
	v, err = EncodeStatementHeader(Sign(k, big))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != MaxStatementHeaderLen {
		t.Fatalf("largest header value is %d characters, MaxStatementHeaderLen is %d", len(v), MaxStatementHeaderLen)
	}
	if _, err := DecodeStatementHeader(v); err != nil {
		t.Fatalf("decode largest: %v", err)
	}
	// The smallest encoding is minStatementHeaderLen characters.
	small := Statement{URL: "http://a", Digest: BodyDigest(nil)}
	v, err = EncodeStatementHeader(Sign(k, small))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) < minStatementHeaderLen || len(v) > minStatementHeaderLen+len(small.URL)*4/3+2 {
		t.Fatalf("small header value is %d characters, minimum %d", len(v), minStatementHeaderLen)
	}
}

func TestEncodeStatementHeaderRejectsInvalid(t *testing.T) {
	k := mustKey(t, 3)
	st := testStatement()
	st.URL = "/relative"
	if _, err := EncodeStatementHeader(Sign(k, st)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("relative URL: %v, want ErrMalformed", err)
	}
	st = testStatement()
	st.ContentType = strings.Repeat("x", MaxContentTypeLen+1)
	if _, err := EncodeStatementHeader(Sign(k, st)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long content type: %v, want ErrTooLarge", err)
	}
}

func TestDecodeStatementHeaderErrors(t *testing.T) {
	k := mustKey(t, 3)
	good, err := EncodeStatementHeader(Sign(k, testStatement()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := Sign(k, testStatement()).Encode()
	b64raw := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	badVersion := append([]byte{2}, raw[1:]...)
	// Flip the last character so its unused low bits are set: same bytes
	// under a lenient decoder, rejected by the strict one.
	odd := testStatement()
	odd.URL += "3"
	oddRaw, err := Sign(k, odd).Encode()
	if err != nil || len(oddRaw)%3 == 0 {
		t.Fatalf("test needs an encoding with a partial final group: %d bytes, %v", len(oddRaw), err)
	}
	nonCanonical := []byte(b64raw(oddRaw))
	last := strings.IndexByte(b64Alphabet, nonCanonical[len(nonCanonical)-1])
	nonCanonical[len(nonCanonical)-1] = b64Alphabet[last|1]
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrTruncated},
		{"short", good[:minStatementHeaderLen-1], ErrTruncated},
		{"truncated statement", b64raw(raw[:len(raw)-1]), ErrTruncated},
		{"too long", good + strings.Repeat("A", MaxStatementHeaderLen), ErrTooLarge},
		{"padded", base64.URLEncoding.EncodeToString(oddRaw), ErrMalformed},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+", ErrMalformed},
		{"line break", good[:40] + "\r\n" + good[40:], ErrMalformed},
		{"space", " " + good, ErrMalformed},
		{"non-canonical tail", string(nonCanonical), ErrMalformed},
		{"length 1 mod 4", good + "A", ErrMalformed},
		{"trailing statement byte", b64raw(append(append([]byte{}, raw...), 0)), ErrMalformed},
		{"bad version", b64raw(badVersion), ErrVersion},
	}
	for _, c := range cases {
		_, err := DecodeStatementHeader(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		if n := decodeSentinels(err); n != 1 || !strings.HasPrefix(err.Error(), "security: decode statement header: ") {
			t.Errorf("%s: error %q wraps %d sentinels or lacks context", c.name, err, n)
		}
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

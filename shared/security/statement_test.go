package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testBody = []byte("body { color: #333 }\n")
	testNow  = time.Unix(1_800_000_000, 0)
)

func testStatement() Statement {
	return Statement{
		URL:         "https://example.org/static/site.css?v=3",
		Digest:      BodyDigest(testBody),
		ContentType: "text/css; charset=utf-8",
		Version:     42,
		Expires:     testNow.Add(time.Hour).Unix(),
	}
}

func TestSignVerify(t *testing.T) {
	k := mustKey(t, 1)
	st := testStatement()
	s := Sign(k, st)
	if s.Statement != st {
		t.Fatal("Sign changed the statement")
	}
	if err := Verify(k.Public(), s, st.URL, testBody, testNow); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := CheckSignature(k.Public(), s, st.URL, testBody, testNow); err != nil {
		t.Fatalf("CheckSignature: %v", err)
	}
	if again := Sign(k, st); again != s {
		t.Fatal("Ed25519 signing is not deterministic")
	}
	// Empty body and no expiry.
	st2 := Statement{URL: "http://127.0.0.1:8080/", Digest: BodyDigest(nil)}
	if err := Verify(k.Public(), Sign(k, st2), st2.URL, nil, testNow.AddDate(1000, 0, 0)); err != nil {
		t.Fatalf("empty body, no expiry: %v", err)
	}
}

// TestSigningMessageFormat builds the signed message by hand from the
// documented format (docs/integrity.md) and checks the signature against it.
func TestSigningMessageFormat(t *testing.T) {
	k := mustKey(t, 1)
	st := testStatement()
	var m []byte
	m = append(m, "flower-cdn/v1 statement\x00"...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(st.URL)))
	m = append(m, st.URL...)
	m = append(m, st.Digest[:]...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(st.ContentType)))
	m = append(m, st.ContentType...)
	m = binary.BigEndian.AppendUint64(m, st.Version)
	m = binary.BigEndian.AppendUint64(m, uint64(st.Expires))
	s := Sign(k, st)
	pub := k.Public()
	if !ed25519.Verify(pub[:], m, s.Sig[:]) {
		t.Fatal("signature is not over the documented message")
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{1}, m[len("flower-cdn/v1 statement\x00"):]...), s.Sig[:]...)
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding\n got %x\nwant %x", enc, want)
	}
}

// TestGoldenEncoding pins the wire form of one statement so that a format
// change cannot go unnoticed.
func TestGoldenEncoding(t *testing.T) {
	k, err := ParsePrivateKey([]byte(rfc8410Private))
	if err != nil {
		t.Fatal(err)
	}
	st := Statement{URL: "https://a.example/x", Digest: BodyDigest([]byte("x")), ContentType: "text/plain", Version: 1, Expires: 0}
	enc, err := Sign(k, st).Encode()
	if err != nil {
		t.Fatal(err)
	}
	const golden = "01" + "00000013" + "68747470733a2f2f612e6578616d706c652f78" +
		"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" +
		"0000000a" + "746578742f706c61696e" + "0000000000000001" + "0000000000000000"
	if got := hex.EncodeToString(enc[:len(enc)-64]); got != golden {
		t.Fatalf("encoding\n got %s\nwant %s", got, golden)
	}
	pub := k.Public()
	if !ed25519.Verify(pub[:], append([]byte("flower-cdn/v1 statement\x00"), enc[1:len(enc)-64]...), enc[len(enc)-64:]) {
		t.Fatal("golden signature does not verify")
	}
}

func TestVerifyFailures(t *testing.T) {
	k, other := mustKey(t, 1), mustKey(t, 2)
	pub := k.Public()
	st := testStatement()
	good := Sign(k, st)

	tamper := func(f func(*Signed)) Signed { s := good; f(&s); return s }
	tamperedBody := append([]byte(nil), testBody...)
	tamperedBody[0] ^= 1

	for _, c := range []struct {
		name string
		pub  PublicKey
		s    Signed
		url  string
		body []byte
		now  time.Time
		want error
	}{
		{"tampered body", pub, good, st.URL, tamperedBody, testNow, ErrDigestMismatch},
		{"truncated body", pub, good, st.URL, testBody[:len(testBody)-1], testNow, ErrDigestMismatch},
		{"extended body", pub, good, st.URL, append(append([]byte(nil), testBody...), '\n'), testNow, ErrDigestMismatch},
		{"other url requested", pub, good, "https://example.org/static/other.css", testBody, testNow, ErrURLMismatch},
		{"query differs", pub, good, "https://example.org/static/site.css?v=4", testBody, testNow, ErrURLMismatch},
		{"tampered url", pub, tamper(func(s *Signed) { s.URL = "https://example.org/static/evil.css" }), "https://example.org/static/evil.css", testBody, testNow, ErrBadSignature},
		{"tampered digest", pub, tamper(func(s *Signed) { s.Digest = BodyDigest(tamperedBody) }), st.URL, tamperedBody, testNow, ErrBadSignature},
		{"tampered content type", pub, tamper(func(s *Signed) { s.ContentType = "text/html" }), st.URL, testBody, testNow, ErrBadSignature},
		{"tampered version", pub, tamper(func(s *Signed) { s.Version++ }), st.URL, testBody, testNow, ErrBadSignature},
		{"tampered expiry", pub, tamper(func(s *Signed) { s.Expires = 0 }), st.URL, testBody, testNow, ErrBadSignature},
		{"tampered signature", pub, tamper(func(s *Signed) { s.Sig[10] ^= 0x80 }), st.URL, testBody, testNow, ErrBadSignature},
		{"zero signature", pub, tamper(func(s *Signed) { s.Sig = [64]byte{} }), st.URL, testBody, testNow, ErrBadSignature},
		{"wrong key", other.Public(), good, st.URL, testBody, testNow, ErrBadSignature},
		{"signed by another key", pub, Sign(other, st), st.URL, testBody, testNow, ErrBadSignature},
		{"zero key", PublicKey{}, good, st.URL, testBody, testNow, ErrInvalidKey},
		{"expired exactly", pub, good, st.URL, testBody, time.Unix(st.Expires, 0), ErrExpired},
		{"expired later", pub, good, st.URL, testBody, testNow.Add(48 * time.Hour), ErrExpired},
		{"invalid url", pub, Sign(k, Statement{URL: "ftp://example.org/x", Digest: st.Digest}), "ftp://example.org/x", testBody, testNow, ErrMalformed},
		{"oversize url", pub, Sign(k, Statement{URL: "https://e.org/" + strings.Repeat("a", MaxURLLen), Digest: st.Digest}), "", testBody, testNow, ErrTooLarge},
		{"negative expiry", pub, Sign(k, Statement{URL: st.URL, Digest: st.Digest, Expires: -1}), st.URL, testBody, testNow, ErrMalformed},
	} {
		// VerifyDigest agrees with Verify; VerifyStatement with both, but for
		// the body.
		if err := VerifyDigest(c.pub, c.s, c.url, BodyDigest(c.body), len(c.body), c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: VerifyDigest error = %v, want %v", c.name, err, c.want)
		}
		stErr := VerifyStatement(c.pub, c.s, c.url, c.now)
		if c.want == ErrDigestMismatch && stErr != nil || c.want != ErrDigestMismatch && !errors.Is(stErr, c.want) {
			t.Errorf("%s: VerifyStatement error = %v", c.name, stErr)
		}
		err := Verify(c.pub, c.s, c.url, c.body, c.now)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Verify error = %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "security: verify ") {
			t.Errorf("%s: error without context: %v", c.name, err)
		}
		for _, other := range []error{ErrBadSignature, ErrURLMismatch, ErrDigestMismatch, ErrExpired, ErrInvalidKey} {
			if other != c.want && errors.Is(err, other) {
				t.Errorf("%s: error %v also wraps %v", c.name, err, other)
			}
		}
	}

	// Just before expiry is still valid.
	if err := Verify(pub, good, st.URL, testBody, time.Unix(st.Expires, 0).Add(-time.Nanosecond)); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
}

func TestExpired(t *testing.T) {
	st := Statement{Expires: 100}
	for _, c := range []struct {
		now  time.Time
		want bool
	}{
		{time.Unix(99, 999_999_999), false},
		{time.Unix(100, 0), true},
		{time.Unix(101, 0), true},
	} {
		if got := st.Expired(c.now); got != c.want {
			t.Errorf("Expired(%v) = %v", c.now, got)
		}
	}
	if (Statement{}).Expired(time.Unix(1<<40, 0)) {
		t.Error("Expires 0 expired")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	k := mustKey(t, 9)
	for _, st := range []Statement{
		testStatement(),
		{URL: "http://localhost/", Digest: BodyDigest(nil)},
		{URL: "https://e.org/" + strings.Repeat("p", MaxURLLen-len("https://e.org/")), ContentType: strings.Repeat("t", MaxContentTypeLen), Version: ^uint64(0), Expires: 1<<63 - 1},
	} {
		s := Sign(k, st)
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("Encode(%q): %v", st.URL, err)
		}
		if len(enc) > MaxEncodedLen {
			t.Fatalf("encoding of %d bytes exceeds MaxEncodedLen %d", len(enc), MaxEncodedLen)
		}
		got, err := DecodeSigned(enc)
		if err != nil {
			t.Fatalf("DecodeSigned: %v", err)
		}
		if got != s {
			t.Fatalf("round trip changed the value:\n got %+v\nwant %+v", got, s)
		}
		if len(st.URL) == MaxURLLen && len(enc) != MaxEncodedLen {
			t.Fatalf("largest statement encodes to %d bytes, MaxEncodedLen is %d", len(enc), MaxEncodedLen)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	st := testStatement()
	for _, c := range []struct {
		name string
		f    func(*Statement)
		want error
	}{
		{"empty url", func(s *Statement) { s.URL = "" }, ErrMalformed},
		{"relative url", func(s *Statement) { s.URL = "/static/site.css" }, ErrMalformed},
		{"url with space", func(s *Statement) { s.URL = "https://e.org/a b" }, ErrMalformed},
		{"url with fragment", func(s *Statement) { s.URL = "https://e.org/a#b" }, ErrMalformed},
		{"url with user", func(s *Statement) { s.URL = "https://u:p@e.org/a" }, ErrMalformed},
		{"url without host", func(s *Statement) { s.URL = "https:///a" }, ErrMalformed},
		{"url non-ascii", func(s *Statement) { s.URL = "https://e.org/é" }, ErrMalformed},
		{"upper-case scheme", func(s *Statement) { s.URL = "HTTPS://e.org/a" }, ErrMalformed},
		{"url too long", func(s *Statement) { s.URL = "https://e.org/" + strings.Repeat("a", MaxURLLen) }, ErrTooLarge},
		{"content type control byte", func(s *Statement) { s.ContentType = "text/plain\n" }, ErrMalformed},
		{"content type non-ascii", func(s *Statement) { s.ContentType = "text/é" }, ErrMalformed},
		{"content type too long", func(s *Statement) { s.ContentType = strings.Repeat("a", MaxContentTypeLen+1) }, ErrTooLarge},
		{"negative expiry", func(s *Statement) { s.Expires = -5 }, ErrMalformed},
	} {
		s := st
		c.f(&s)
		if err := s.Validate(); !errors.Is(err, c.want) {
			t.Errorf("%s: Validate = %v, want %v", c.name, err, c.want)
		}
		if _, err := (Signed{Statement: s}).Encode(); !errors.Is(err, c.want) {
			t.Errorf("%s: Encode = %v, want %v", c.name, err, c.want)
		}
	}
}

// encodeRaw builds an encoding field by field, bypassing Encode's checks.
func encodeRaw(version byte, urlLen uint32, u string, ctLen uint32, ct string, expires uint64) []byte {
	b := []byte{version}
	b = binary.BigEndian.AppendUint32(b, urlLen)
	b = append(b, u...)
	b = append(b, make([]byte, sha256.Size)...)
	b = binary.BigEndian.AppendUint32(b, ctLen)
	b = append(b, ct...)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint64(b, expires)
	return append(b, make([]byte, 64)...)
}

func TestDecodeLimits(t *testing.T) {
	const u, ct = "https://e.org/x", "text/plain"
	raw := func(u string, ct string) []byte {
		return encodeRaw(1, uint32(len(u)), u, uint32(len(ct)), ct, 0)
	}
	if _, err := DecodeSigned(raw(u, ct)); err != nil {
		t.Fatalf("well-formed raw encoding: %v", err)
	}
	maxURL := "https://e.org/" + strings.Repeat("a", MaxURLLen-len("https://e.org/"))
	maxCT := strings.Repeat("a", MaxContentTypeLen)
	if _, err := DecodeSigned(raw(maxURL, maxCT)); err != nil {
		t.Fatalf("limits exactly: %v", err)
	}
	sentinels := []error{ErrTruncated, ErrTooLarge, ErrMalformed, ErrVersion}
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrTruncated},
		{"version only", []byte{1}, ErrTruncated},
		{"version 0", encodeRaw(0, 15, u, 10, ct, 0), ErrVersion},
		{"version 2", encodeRaw(2, 15, u, 10, ct, 0), ErrVersion},
		{"version 255 short", []byte{255}, ErrVersion},
		{"url length over limit", encodeRaw(1, MaxURLLen+1, u, 10, ct, 0), ErrTooLarge},
		{"url length huge", encodeRaw(1, 0xffffffff, u, 10, ct, 0), ErrTooLarge},
		{"url too long", raw(maxURL+"a", ct), ErrTooLarge},
		{"content type length over limit", encodeRaw(1, 15, u, MaxContentTypeLen+1, ct, 0), ErrTooLarge},
		{"content type too long", raw(u, maxCT+"a"), ErrTooLarge},
		{"input over MaxEncodedLen", append(raw(maxURL, maxCT), 0), ErrTooLarge},
		{"input far over MaxEncodedLen", append([]byte{1}, make([]byte, 1<<20)...), ErrTooLarge},
		{"trailing byte", append(raw(u, ct), 0), ErrMalformed},
		{"url length past end", encodeRaw(1, 100, u, 10, ct, 0), ErrTruncated},
		{"content type length past end", encodeRaw(1, 15, u, 100, ct, 0), ErrTruncated},
		{"url length short", encodeRaw(1, 14, u, 10, ct, 0), ErrMalformed},
		{"empty url", raw("", ct), ErrMalformed},
		{"relative url", raw("/x", ct), ErrMalformed},
		{"url with NUL", raw("https://e.org/\x00", ct), ErrMalformed},
		{"url invalid utf-8", raw("https://e.org/\xff", ct), ErrMalformed},
		{"content type with CR", raw(u, "text/plain\r"), ErrMalformed},
		{"negative expiry", encodeRaw(1, 15, u, 10, ct, 1<<63), ErrMalformed},
	} {
		_, err := DecodeSigned(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error = %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "security: decode signed: ") {
			t.Errorf("%s: error without context: %v", c.name, err)
		}
		for _, s := range sentinels {
			if s != c.want && errors.Is(err, s) {
				t.Errorf("%s: error %v also wraps %v", c.name, err, s)
			}
		}
	}

	// Every strict prefix of a valid encoding is truncated.
	enc := raw(u, ct)
	for i := range len(enc) {
		if _, err := DecodeSigned(enc[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d/%d bytes: error = %v, want ErrTruncated", i, len(enc), err)
		}
	}
}

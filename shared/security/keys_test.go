package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// seedReader returns a deterministic reader for key generation.
func seedReader(b byte) *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, 64)) }

func mustKey(t testing.TB, b byte) SiteKey {
	t.Helper()
	k, err := GenerateSiteKey(seedReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateSiteKey(t *testing.T) {
	a, b := mustKey(t, 1), mustKey(t, 1)
	if a.Public() != b.Public() {
		t.Fatal("same seed gave different keys")
	}
	if c := mustKey(t, 2); c.Public() == a.Public() {
		t.Fatal("different seeds gave the same key")
	}
	r, err := GenerateSiteKey(nil)
	if err != nil || r.IsZero() || r.Public().IsZero() {
		t.Fatalf("GenerateSiteKey(nil) = %v, %v", r.Public(), err)
	}
	if _, err := GenerateSiteKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("short reader: no error")
	}
	var zero SiteKey
	if !zero.IsZero() || !zero.Public().IsZero() {
		t.Fatal("zero SiteKey is not zero")
	}
}

func TestPublicKeyText(t *testing.T) {
	pub := mustKey(t, 7).Public()
	s := pub.String()
	if !strings.HasPrefix(s, "ed25519:") || len(s) != len("ed25519:")+43 {
		t.Fatalf("text form %q", s)
	}
	got, err := ParsePublicKey(s)
	if err != nil || got != pub {
		t.Fatalf("ParsePublicKey(%q) = %v, %v", s, got, err)
	}
	body := s[len("ed25519:"):]
	// The last base64 character carries 4 spare bits; flipping one of them
	// gives a non-canonical encoding of the same bytes.
	last := body[len(body)-1]
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	idx := strings.IndexByte(alphabet, last)
	nonCanonical := "ed25519:" + body[:len(body)-1] + string(alphabet[idx^1])
	zero := "ed25519:" + strings.Repeat("A", 43)
	for _, bad := range []string{
		"", body, "ED25519:" + body, "ed448:" + body, s + "=", s[:len(s)-1], s + "A",
		"ed25519:" + strings.Replace(body, body[:1], "+", 1), nonCanonical, zero,
	} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKey(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}

	// JSON goes through the text form.
	j, err := json.Marshal(struct{ K PublicKey }{pub})
	if err != nil || !bytes.Contains(j, []byte(s)) {
		t.Fatalf("json %s, %v", j, err)
	}
	var back struct{ K PublicKey }
	if err := json.Unmarshal(j, &back); err != nil || back.K != pub {
		t.Fatalf("json round trip: %v, %v", back.K, err)
	}
	if _, err := json.Marshal(struct{ K PublicKey }{}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("marshal zero key: %v", err)
	}
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	k := mustKey(t, 3)
	pemBytes, err := MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("PEM form:\n%s", pemBytes)
	}
	back, err := ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if back.Public() != k.Public() {
		t.Fatal("public key changed in the round trip")
	}
	st := testStatement()
	if err := Verify(k.Public(), Sign(back, st), st.URL, testBody, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := MarshalPrivateKey(SiteKey{}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("marshal zero key: %v", err)
	}
}

// rfc8410Private is the private key example of RFC 8410 section 10.3, as
// openssl writes it; rfc8410Public is its public key (section 10.1).
const (
	rfc8410Private = "-----BEGIN PRIVATE KEY-----\n" +
		"MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n" +
		"-----END PRIVATE KEY-----\n"
	rfc8410Public = "ed25519:Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"
)

func TestParsePrivateKeyRFC8410(t *testing.T) {
	k, err := ParsePrivateKey([]byte("\n" + rfc8410Private + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public().String(); got != rfc8410Public {
		t.Fatalf("public key %s, want %s", got, rfc8410Public)
	}
	out, err := MarshalPrivateKey(k)
	if err != nil || string(out) != rfc8410Private {
		t.Fatalf("MarshalPrivateKey = %q, %v; want the RFC's form", out, err)
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	good := rfc8410Private
	for name, in := range map[string]string{
		"empty":      "",
		"no pem":     "hello",
		"wrong type": strings.ReplaceAll(good, "PRIVATE KEY", "PUBLIC KEY"),
		"ec type":    strings.ReplaceAll(good, "PRIVATE KEY", "EC PRIVATE KEY"),
		"trailing":   good + "junk",
		"two blocks": good + good,
		"headers":    strings.Replace(good, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1),
		"wrong oid":  strings.Replace(good, "MC4CAQAwBQYDK2Vw", "MC4CAQAwBQYDK2Vx", 1),
		"short der":  "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTu\n-----END PRIVATE KEY-----\n",
		"x25519 oid": strings.Replace(good, "MC4CAQAwBQYDK2Vw", "MC4CAQAwBQYDK2Vu", 1),
	} {
		if _, err := ParsePrivateKey([]byte(in)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: error = %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestSignPanicsOnZeroKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Sign with the zero key did not panic")
		}
	}()
	Sign(SiteKey{}, testStatement())
}

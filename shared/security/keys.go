// Package security is Flower-CDN's security manager (the seed's
// checkSignature): Ed25519 site keys, signed statements that bind one object
// (URL, content digest, content type, version, expiry) to the site's key, their
// versioned binary encoding, the verification a peer runs before it uses or
// caches anything received from another peer, the well-known document through
// which the origin publishes its public key and shared URL patterns, and the
// rule that decides whether an HTTP response may be shared at all.
//
// Everything here is pure: no I/O, no clock (callers pass the time), and all
// randomness comes from a reader the caller supplies. docs/integrity.md
// describes the formats.
package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PublicKeyPrefix starts the text form of a PublicKey.
const PublicKeyPrefix = "ed25519:"

// PrivateKeyPEMType is the PEM block type written by MarshalPrivateKey and
// accepted by ParsePrivateKey. The block holds a PKCS #8 Ed25519 key (RFC 8410),
// the same form `openssl genpkey -algorithm ed25519` writes.
const PrivateKeyPEMType = "PRIVATE KEY"

// ErrInvalidKey reports a public or private key that cannot be used: a bad
// text form, a wrong length, an all-zero public key or a zero SiteKey.
var ErrInvalidKey = errors.New("invalid key")

// b64 is the strict unpadded base64url encoding of key text forms: non-canonical
// trailing bits are rejected so that every key has exactly one text form.
var b64 = base64.RawURLEncoding.Strict()

// PublicKey is a site's Ed25519 public key. Peers obtain it from the origin
// (the script tag attribute or the well-known document), never from a peer.
// Its text form is "ed25519:" followed by the unpadded base64url encoding of
// the 32 key bytes.
type PublicKey [ed25519.PublicKeySize]byte

// String returns the text form of k: "ed25519:" + base64url (no padding).
func (k PublicKey) String() string { return PublicKeyPrefix + b64.EncodeToString(k[:]) }

// IsZero reports whether k is the all-zero key, which never verifies anything.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// MarshalText implements encoding.TextMarshaler with the text form of k, so a
// PublicKey is a JSON string. The zero key has no text form.
func (k PublicKey) MarshalText() ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("security: marshal public key: all-zero key: %w", ErrInvalidKey)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePublicKey.
func (k *PublicKey) UnmarshalText(text []byte) error {
	p, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParsePublicKey parses the text form produced by PublicKey.String. It rejects
// any other prefix, padding, non-canonical base64, a length other than 32 bytes,
// and the all-zero key; errors wrap ErrInvalidKey.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return k, fmt.Errorf("security: parse public key: missing %q prefix: %w", PublicKeyPrefix, ErrInvalidKey)
	}
	if want := b64.EncodedLen(len(k)); len(rest) != want {
		return k, fmt.Errorf("security: parse public key: %d base64 characters, want %d: %w", len(rest), want, ErrInvalidKey)
	}
	// The decoder skips CR and LF: a key must decode to exactly 32 bytes
	// from exactly its own text form.
	n, err := b64.Decode(k[:], []byte(rest))
	if err != nil {
		return PublicKey{}, fmt.Errorf("security: parse public key: bad base64url (%v): %w", err, ErrInvalidKey)
	}
	if n != len(k) || b64.EncodeToString(k[:]) != rest {
		return PublicKey{}, fmt.Errorf("security: parse public key: not the canonical base64url of 32 bytes: %w", ErrInvalidKey)
	}
	if k.IsZero() {
		return k, fmt.Errorf("security: parse public key: all-zero key: %w", ErrInvalidKey)
	}
	return k, nil
}

// SiteKey is a site's Ed25519 private key, used by `flower sign` and by origin
// middleware to sign statements. The zero SiteKey holds no key.
type SiteKey struct {
	priv ed25519.PrivateKey
}

// GenerateSiteKey makes a new site key from 32 bytes read from r. A nil r means
// crypto/rand.Reader; a deterministic reader gives a deterministic key (tests,
// the simulator).
func GenerateSiteKey(r io.Reader) (SiteKey, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return SiteKey{}, fmt.Errorf("security: generate site key: read seed: %w", err)
	}
	return SiteKey{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// IsZero reports whether k holds no key.
func (k SiteKey) IsZero() bool { return len(k.priv) != ed25519.PrivateKeySize }

// Public returns the public half of k. It returns the zero PublicKey for the
// zero SiteKey.
func (k SiteKey) Public() PublicKey {
	var p PublicKey
	if !k.IsZero() {
		copy(p[:], k.priv[ed25519.SeedSize:])
	}
	return p
}

// pkcs8Prefix is the fixed DER header of a PKCS #8 OneAsymmetricKey holding an
// Ed25519 private key (RFC 8410 section 7): SEQUENCE { INTEGER 0,
// SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }.
// The 32-byte seed follows it. Writing it by hand keeps crypto/x509 (and its
// weight) out of the browser builds that import this package.
var pkcs8Prefix = []byte{
	0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
	0x04, 0x22, 0x04, 0x20,
}

// MarshalPrivateKey encodes k as a PEM block of type "PRIVATE KEY" holding a
// PKCS #8 Ed25519 key, the form openssl reads and writes. Keep the result secret.
func MarshalPrivateKey(k SiteKey) ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("security: marshal private key: zero SiteKey: %w", ErrInvalidKey)
	}
	der := make([]byte, 0, len(pkcs8Prefix)+ed25519.SeedSize)
	der = append(der, pkcs8Prefix...)
	der = append(der, k.priv.Seed()...)
	return pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEMType, Bytes: der}), nil
}

// ParsePrivateKey decodes a key written by MarshalPrivateKey (or by
// `openssl genpkey -algorithm ed25519`): exactly one PEM block of type
// "PRIVATE KEY" holding a PKCS #8 Ed25519 key without optional attributes, with
// nothing but white space around it. Errors wrap ErrInvalidKey.
func ParsePrivateKey(data []byte) (SiteKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return SiteKey{}, fmt.Errorf("security: parse private key: no PEM block: %w", ErrInvalidKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return SiteKey{}, fmt.Errorf("security: parse private key: data after the PEM block: %w", ErrInvalidKey)
	}
	if block.Type != PrivateKeyPEMType {
		return SiteKey{}, fmt.Errorf("security: parse private key: PEM type %q, want %q: %w", block.Type, PrivateKeyPEMType, ErrInvalidKey)
	}
	if len(block.Headers) != 0 {
		return SiteKey{}, fmt.Errorf("security: parse private key: unexpected PEM headers (encrypted keys are not supported): %w", ErrInvalidKey)
	}
	der := block.Bytes
	if len(der) != len(pkcs8Prefix)+ed25519.SeedSize || !bytes.Equal(der[:len(pkcs8Prefix)], pkcs8Prefix) {
		return SiteKey{}, fmt.Errorf("security: parse private key: not a PKCS #8 Ed25519 key: %w", ErrInvalidKey)
	}
	return SiteKey{priv: ed25519.NewKeyFromSeed(der[len(pkcs8Prefix):])}, nil
}

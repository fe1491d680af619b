package security

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"
)

// FormatVersion is the first byte of an encoded Signed. Decode rejects any
// other value with ErrVersion.
const FormatVersion = 1

// Hard limits of a statement; Encode, Decode and Verify enforce them.
const (
	// MaxURLLen is the longest Statement.URL, in bytes.
	MaxURLLen = 2048
	// MaxContentTypeLen is the longest Statement.ContentType, in bytes.
	MaxContentTypeLen = 256
	// MaxEncodedLen is the longest encoded Signed, in bytes.
	MaxEncodedLen = 1 + 4 + MaxURLLen + sha256.Size + 4 + MaxContentTypeLen + 8 + 8 + ed25519.SignatureSize
	// minEncodedLen is the shortest encoded Signed (empty strings).
	minEncodedLen = 1 + 4 + sha256.Size + 4 + 8 + 8 + ed25519.SignatureSize
)

// signingDomain starts every signed message, so that a statement signature can
// never be taken for a signature over anything else made with the same key.
// The NUL ends the domain string, keeping it prefix-free.
const signingDomain = "flower-cdn/v1 statement\x00"

// Decode errors. Every error DecodeSigned returns wraps exactly one of them.
var (
	// ErrTruncated: the input ends before the encoding does.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge: a length or the whole input is over its hard limit.
	ErrTooLarge = errors.New("too large")
	// ErrMalformed: the input has the right shape but a field is invalid
	// (bad URL, bad content type, negative expiry) or bytes trail the encoding.
	ErrMalformed = errors.New("malformed")
	// ErrVersion: the format version byte is not FormatVersion.
	ErrVersion = errors.New("unsupported format version")
)

// Verification errors. Every error Verify returns wraps one of them, or
// ErrInvalidKey, or (for a statement that breaks the limits) ErrTooLarge or
// ErrMalformed.
var (
	// ErrBadSignature: the signature does not match the statement and key.
	ErrBadSignature = errors.New("bad signature")
	// ErrURLMismatch: the statement is about another URL.
	ErrURLMismatch = errors.New("url mismatch")
	// ErrDigestMismatch: the body is not the one the statement names.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrExpired: the statement's expiry has passed.
	ErrExpired = errors.New("expired")
)

// Statement is what the site signs about one object.
type Statement struct {
	// URL is the absolute http or https URL of the object, exactly as the
	// browser requests it (printable ASCII, no fragment, at most MaxURLLen bytes).
	URL string
	// Digest is the SHA-256 of the response body (see BodyDigest).
	Digest [sha256.Size]byte
	// ContentType is the Content-Type to serve the body with (printable ASCII,
	// at most MaxContentTypeLen bytes; empty means none).
	ContentType string
	// Version orders statements about the same URL: a cache keeps the highest.
	Version uint64
	// Expires is the Unix time in seconds from which the statement is no longer
	// valid; 0 means never. Negative values are invalid.
	Expires int64
}

// Signed is a Statement with the site's Ed25519 signature over it.
type Signed struct {
	Statement
	Sig [ed25519.SignatureSize]byte
}

// BodyDigest returns the SHA-256 of body, the value of Statement.Digest.
func BodyDigest(body []byte) [sha256.Size]byte { return sha256.Sum256(body) }

// Validate checks the statement against the format's limits: errors wrap
// ErrTooLarge (a field over its limit) or ErrMalformed.
func (st Statement) Validate() error {
	if err := st.validate(); err != nil {
		return fmt.Errorf("security: invalid statement: %w", err)
	}
	return nil
}

func (st Statement) validate() error {
	if len(st.URL) > MaxURLLen {
		return fmt.Errorf("url is %d bytes, limit %d: %w", len(st.URL), MaxURLLen, ErrTooLarge)
	}
	if err := checkURL(st.URL); err != nil {
		return fmt.Errorf("url %s: %v: %w", clip(st.URL), err, ErrMalformed)
	}
	if err := CheckContentType(st.ContentType); err != nil {
		return err
	}
	if st.Expires < 0 {
		return fmt.Errorf("negative expiry %d: %w", st.Expires, ErrMalformed)
	}
	return nil
}

// CheckContentType accepts what a statement may carry as its content type:
// printable ASCII, at most MaxContentTypeLen bytes (errors wrap ErrTooLarge
// or ErrMalformed).
func CheckContentType(t string) error {
	if len(t) > MaxContentTypeLen {
		return fmt.Errorf("content type is %d bytes, limit %d: %w", len(t), MaxContentTypeLen, ErrTooLarge)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("content type %s: byte 0x%02x at %d is not printable ASCII: %w", clip(t), c, i, ErrMalformed)
		}
	}
	return nil
}

// checkURL accepts an absolute http(s) URL made of printable ASCII without
// space, with a host, no user info and no fragment.
func checkURL(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c > 0x7e {
			return fmt.Errorf("byte 0x%02x at %d is not printable ASCII", c, i)
		}
	}
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return errors.New("not an absolute http or https URL")
	}
	if strings.IndexByte(s, '#') >= 0 {
		return errors.New("has a fragment")
	}
	u, err := neturl.Parse(s)
	if err != nil {
		return errors.New("does not parse")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	if u.User != nil {
		return errors.New("has user info")
	}
	return nil
}

// Expired reports whether the statement is no longer valid at now: Expires is
// set and now is at or after it.
func (st Statement) Expired(now time.Time) bool {
	return st.Expires != 0 && !now.Before(time.Unix(st.Expires, 0))
}

// appendStatement appends the canonical encoding of st, shared by the signed
// message and the wire format: every variable-length field is preceded by its
// length (4 bytes), integers are big-endian.
//
//	u32 len(URL) | URL | Digest (32) | u32 len(ContentType) | ContentType |
//	u64 Version | u64 Expires
func appendStatement(b []byte, st Statement) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.URL)))
	b = append(b, st.URL...)
	b = append(b, st.Digest[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.ContentType)))
	b = append(b, st.ContentType...)
	b = binary.BigEndian.AppendUint64(b, st.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(st.Expires))
	return b
}

// signingMessage is the exact byte string the site signs: the domain string
// followed by the canonical encoding of st.
func signingMessage(st Statement) []byte {
	b := make([]byte, 0, len(signingDomain)+4+len(st.URL)+sha256.Size+4+len(st.ContentType)+16)
	b = append(b, signingDomain...)
	return appendStatement(b, st)
}

// Sign signs st with key. It does not check st against the limits: Encode and
// Verify do, so sign only statements that pass Statement.Validate. Sign panics
// if key is the zero SiteKey (a programming error, as with ed25519.Sign).
func Sign(key SiteKey, st Statement) Signed {
	if key.IsZero() {
		panic("security: Sign with the zero SiteKey")
	}
	s := Signed{Statement: st}
	copy(s.Sig[:], ed25519.Sign(key.priv, signingMessage(st)))
	return s
}

// Encode returns the binary form of s: the FormatVersion byte, the canonical
// statement encoding, then the 64-byte signature. It fails, wrapping
// ErrTooLarge or ErrMalformed, if the statement breaks the limits, so that
// everything Encode produces DecodeSigned accepts.
func (s Signed) Encode() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("security: encode signed: %w", err)
	}
	b := make([]byte, 0, minEncodedLen+len(s.URL)+len(s.ContentType))
	b = append(b, FormatVersion)
	b = appendStatement(b, s.Statement)
	b = append(b, s.Sig[:]...)
	return b, nil
}

// DecodeSigned parses the binary form written by Signed.Encode from untrusted
// bytes. It never panics, reads no length it has not bounded first, and
// rejects trailing bytes. Errors wrap ErrTruncated, ErrTooLarge, ErrMalformed
// or ErrVersion. It does not verify the signature: use Verify.
func DecodeSigned(b []byte) (Signed, error) {
	const op = "security: decode signed"
	var s Signed
	if len(b) == 0 {
		return s, fmt.Errorf("%s: empty input: %w", op, ErrTruncated)
	}
	if b[0] != FormatVersion {
		return s, fmt.Errorf("%s: format version %d, want %d: %w", op, b[0], FormatVersion, ErrVersion)
	}
	if len(b) > MaxEncodedLen {
		return s, fmt.Errorf("%s: %d bytes, limit %d: %w", op, len(b), MaxEncodedLen, ErrTooLarge)
	}
	d := decoder{b: b[1:]}
	s.URL = d.str("url", MaxURLLen)
	d.fixed("digest", s.Digest[:])
	s.ContentType = d.str("content type", MaxContentTypeLen)
	s.Version = d.u64("version")
	s.Expires = int64(d.u64("expires"))
	d.fixed("signature", s.Sig[:])
	if d.err != nil {
		return Signed{}, fmt.Errorf("%s: %w", op, d.err)
	}
	if len(d.b) != 0 {
		return Signed{}, fmt.Errorf("%s: %d trailing bytes: %w", op, len(d.b), ErrMalformed)
	}
	if err := s.validate(); err != nil {
		return Signed{}, fmt.Errorf("%s: %w", op, err)
	}
	return s, nil
}

// decoder reads fields from b, remembering the first error; after an error
// every read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%s: need %d bytes, have %d: %w", field, n, len(d.b), ErrTruncated)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32(field string) uint32 {
	if v := d.take(field, 4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if v := d.take(field, 8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) fixed(field string, dst []byte) {
	copy(dst, d.take(field, len(dst)))
}

func (d *decoder) str(field string, limit int) string {
	n := d.u32(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint32(limit) {
		d.err = fmt.Errorf("%s is %d bytes, limit %d: %w", field, n, limit, ErrTooLarge)
		return ""
	}
	return string(d.take(field, int(n)))
}

// Verify is the check a peer runs before it uses or caches an object received
// from another peer, for the request url and the received body, with the
// site's public key obtained from the origin. In order, it checks that the key
// is usable (ErrInvalidKey), that the statement is within the limits
// (ErrTooLarge, ErrMalformed), the signature (ErrBadSignature), that the
// statement is about url (ErrURLMismatch, exact string comparison), that the
// body's SHA-256 is the statement's digest (ErrDigestMismatch), and that the
// statement has not expired at now (ErrExpired). The returned error wraps the
// sentinel with context. On any error the object must be dropped, the sender
// reported, and the request sent to the origin.
//
// Verify does not compare versions: a cache that already holds a newer
// statement for url keeps it.
func Verify(pub PublicKey, s Signed, url string, body []byte, now time.Time) error {
	return VerifyDigest(pub, s, url, BodyDigest(body), len(body), now)
}

// VerifyDigest is Verify for a body whose SHA-256 the caller computed as the
// bytes arrived (n is the body's length, for messages): the same checks in
// the same order.
func VerifyDigest(pub PublicKey, s Signed, url string, digest [sha256.Size]byte, n int, now time.Time) error {
	const op = "security: verify"
	if err := verifyStatement(op, pub, s, url); err != nil {
		return err
	}
	if digest != s.Digest {
		return fmt.Errorf("%s %s: body of %d bytes does not match the signed SHA-256: %w", op, clip(url), n, ErrDigestMismatch)
	}
	return checkExpiry(op, s, url, now)
}

// VerifyStatement checks everything Verify checks except the body: a
// receiver calls it as soon as the statement arrives, so that a bad one
// gets no byte of body in, then VerifyDigest when the body is complete.
func VerifyStatement(pub PublicKey, s Signed, url string, now time.Time) error {
	const op = "security: verify statement"
	if err := verifyStatement(op, pub, s, url); err != nil {
		return err
	}
	return checkExpiry(op, s, url, now)
}

func verifyStatement(op string, pub PublicKey, s Signed, url string) error {
	if pub.IsZero() {
		return fmt.Errorf("%s %s: all-zero public key: %w", op, clip(url), ErrInvalidKey)
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("%s %s: %w", op, clip(url), err)
	}
	if !ed25519.Verify(pub[:], signingMessage(s.Statement), s.Sig[:]) {
		return fmt.Errorf("%s %s: statement not signed by %s: %w", op, clip(url), pub, ErrBadSignature)
	}
	if s.URL != url {
		return fmt.Errorf("%s %s: statement is about %s: %w", op, clip(url), clip(s.URL), ErrURLMismatch)
	}
	return nil
}

func checkExpiry(op string, s Signed, url string, now time.Time) error {
	if s.Expired(now) {
		return fmt.Errorf("%s %s: expired at %s (now %s): %w", op, clip(url),
			time.Unix(s.Expires, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// CheckSignature is the seed's name for Verify (the security manager's
// checkSignature(object, ws), invoked by the content protocol upon downloading
// an object): the website is represented by its public key pub, the object by
// its url, body and signed statement s.
func CheckSignature(pub PublicKey, s Signed, url string, body []byte, now time.Time) error {
	return Verify(pub, s, url, body, now)
}

// clip quotes s for an error message, shortened to keep messages readable.
func clip(s string) string {
	const limit = 120
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

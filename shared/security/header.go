package security

import (
	"fmt"
)

// StatementHeader is the HTTP response header through which a dynamic origin
// hands out the signed statement of a response (see EncodeStatementHeader).
// Static sites publish their statements in a Manifest instead.
const StatementHeader = "Flower-Statement"

// MaxStatementHeaderLen is the longest StatementHeader value: the unpadded
// base64url form of an encoding of MaxEncodedLen bytes.
const MaxStatementHeaderLen = (MaxEncodedLen*8 + 5) / 6

// minStatementHeaderLen is the shortest value that can decode: the base64url
// form of the smallest encoding.
const minStatementHeaderLen = (minEncodedLen*8 + 5) / 6

// EncodeStatementHeader returns the value of the StatementHeader for s: the
// unpadded base64url (RFC 4648 section 5, no '=') encoding of s.Encode(). It
// fails, wrapping ErrTooLarge or ErrMalformed, if s breaks the statement
// limits. The signature is not checked.
func EncodeStatementHeader(s Signed) (string, error) {
	b, err := s.Encode()
	if err != nil {
		return "", fmt.Errorf("security: encode statement header: %w", err)
	}
	return b64.EncodeToString(b), nil
}

// DecodeStatementHeader parses a StatementHeader value from untrusted input.
// It accepts only the canonical form EncodeStatementHeader writes: unpadded
// base64url without white space, line breaks or non-zero trailing bits, at
// most MaxStatementHeaderLen characters, holding exactly one encoded Signed.
// It never panics. Every error wraps exactly one of ErrTruncated (empty or too
// short), ErrTooLarge, ErrMalformed (not canonical base64url) or ErrVersion.
// It does not verify the signature: the peer calls Verify with the site's key.
func DecodeStatementHeader(v string) (Signed, error) {
	const op = "security: decode statement header"
	if len(v) > MaxStatementHeaderLen {
		return Signed{}, fmt.Errorf("%s: %d characters, limit %d: %w", op, len(v), MaxStatementHeaderLen, ErrTooLarge)
	}
	if len(v) < minStatementHeaderLen {
		return Signed{}, fmt.Errorf("%s: %d characters, need at least %d: %w", op, len(v), minStatementHeaderLen, ErrTruncated)
	}
	// The decoder silently skips CR and LF: check every byte first, so that
	// exactly one text form decodes to a given statement.
	for i := 0; i < len(v); i++ {
		if !isBase64URL(v[i]) {
			return Signed{}, fmt.Errorf("%s: byte 0x%02x at %d is not in the unpadded base64url alphabet: %w", op, v[i], i, ErrMalformed)
		}
	}
	b, err := b64.DecodeString(v)
	if err != nil {
		// Only a length of 1 mod 4 or non-zero trailing bits remain.
		return Signed{}, fmt.Errorf("%s: not canonical base64url (%v): %w", op, err, ErrMalformed)
	}
	s, err := DecodeSigned(b)
	if err != nil {
		return Signed{}, fmt.Errorf("%s: %w", op, err)
	}
	return s, nil
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

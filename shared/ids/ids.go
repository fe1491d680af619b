// Package ids holds the identifiers every part of Flower-CDN shares: peer ids
// (derived from an Ed25519 public key), website ids, object ids and D-ring keys.
package ids

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// PeerIDLen is the length in bytes of a PeerID.
const PeerIDLen = 16

// PeerID names a peer (a browser or a native peer). It is the first 16 bytes
// of SHA-256 over the peer's Ed25519 public key, so a peer can prove it owns
// its id by signing a challenge.
type PeerID [PeerIDLen]byte

// FromPublicKey derives the PeerID of an Ed25519 public key.
func FromPublicKey(pub ed25519.PublicKey) PeerID {
	sum := sha256.Sum256(pub)
	var id PeerID
	copy(id[:], sum[:PeerIDLen])
	return id
}

// String is the lower-case hex form of the id.
func (p PeerID) String() string { return hex.EncodeToString(p[:]) }

// Short is the first 8 hex digits, for logs.
func (p PeerID) Short() string { return hex.EncodeToString(p[:4]) }

// IsZero reports whether p is the zero id (no peer).
func (p PeerID) IsZero() bool { return p == PeerID{} }

// Less orders peer ids bytewise; used for deterministic tie-breaks.
func (p PeerID) Less(q PeerID) bool {
	for i := range p {
		if p[i] != q[i] {
			return p[i] < q[i]
		}
	}
	return false
}

// ParsePeerID parses the hex form produced by String.
func ParsePeerID(s string) (PeerID, error) {
	var id PeerID
	if len(s) != 2*PeerIDLen {
		return id, fmt.Errorf("peer id %q: want %d hex digits, got %d", s, 2*PeerIDLen, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("peer id %q: %w", s, err)
	}
	return id, nil
}

// SiteID names a website (an origin: scheme://host[:port]). It is the first
// 8 bytes of SHA-256 over the canonical origin string.
type SiteID uint64

// SiteOf returns the SiteID of a canonical origin string.
func SiteOf(origin string) SiteID {
	return SiteID(Hash64(origin))
}

// ObjectID names one object (one URL) of a website: the first 8 bytes of
// SHA-256 over the absolute URL. Objects are always verified against their
// URL, so a collision can never make a peer accept the wrong content.
type ObjectID uint64

// ObjectOf returns the ObjectID of an absolute URL.
func ObjectOf(url string) ObjectID { return ObjectID(Hash64(url)) }

// Hash64 is SHA-256 truncated to its first 64 bits, big-endian.
func Hash64(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// Key is a position on the D-ring (m <= 64 bits).
type Key uint64

// Member is a D-ring member: a directory position held by a peer.
type Member struct {
	Key Key
	ID  PeerID
}

// IsZero reports whether m names no member.
func (m Member) IsZero() bool { return m.ID.IsZero() }

func (m Member) String() string { return fmt.Sprintf("%016x@%s", uint64(m.Key), m.ID.Short()) }

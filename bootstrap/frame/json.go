package frame

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/flowercdn/flower/shared/ids"
)

// EntriesJSON is the JSON form of an Entries answer, as GET /v1/entry
// serves it: the same three lists of keyed D-ring members as the frame.
type EntriesJSON struct {
	Site   string       `json:"site,omitempty"` // 16 hex digits; absent when no site was asked
	Loc    int          `json:"loc"`
	Local  []MemberJSON `json:"local"`
	Remote []MemberJSON `json:"remote"`
	Random []MemberJSON `json:"random"`
}

// MemberJSON is one D-ring member in JSON.
type MemberJSON struct {
	Key  string `json:"key"`  // 16 hex digits
	Peer string `json:"peer"` // 32 hex digits
}

// MembersJSON converts members to their JSON form (never nil).
func MembersJSON(ms []ids.Member) []MemberJSON {
	out := make([]MemberJSON, len(ms))
	for i, m := range ms {
		out[i] = MemberJSON{Key: fmt.Sprintf("%016x", uint64(m.Key)), Peer: m.ID.String()}
	}
	return out
}

// ParseMembersJSON converts the JSON form back (nil for an empty list).
func ParseMembersJSON(js []MemberJSON) ([]ids.Member, error) {
	if len(js) == 0 {
		return nil, nil
	}
	out := make([]ids.Member, len(js))
	for i, m := range js {
		k, err := ParseHex64(m.Key)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		id, err := ids.ParsePeerID(m.Peer)
		if err != nil {
			return nil, err
		}
		out[i] = ids.Member{Key: ids.Key(k), ID: id}
	}
	return out, nil
}

// ParseHex64 parses exactly 16 hex digits (a site id or a D-ring key).
func ParseHex64(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%q: want 16 hex digits", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return v, nil
}

package frame

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzEntriesJSON: the JSON answer of GET /v1/entry comes from the network.
// Parsing never panics, and what parses converts back and forth unchanged.
func FuzzEntriesJSON(f *testing.F) {
	f.Add([]byte(`{"site":"38612c965a9c4c35","loc":1,"local":[{"key":"38612c965a9c4c30","peer":"5372a341000000000000000000000000"}],"remote":[],"random":[]}`))
	f.Add([]byte(`{"loc":0,"local":[],"remote":[{"key":"38612C965A9C4C30","peer":"00"}],"random":null}`))
	f.Add([]byte(`{"random":[{"key":"+0000000000000001","peer":"5372a341000000000000000000000000"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j EntriesJSON
		if json.Unmarshal(b, &j) != nil {
			return
		}
		for _, list := range [][]MemberJSON{j.Local, j.Remote, j.Random} {
			ms, err := ParseMembersJSON(list)
			if err != nil {
				continue
			}
			back, err := ParseMembersJSON(MembersJSON(ms))
			if err != nil || !slices.Equal(back, ms) {
				t.Fatalf("round trip of %v: %v, %v", ms, back, err)
			}
		}
	})
}

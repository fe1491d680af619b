package directory

import (
	"cmp"
	"slices"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
)

// Remote is another directory of the same website, with its last summary.
type Remote struct {
	Member   ids.Member
	Summary  *bloom.BloomFilter
	LastSeen time.Duration
	owned    bool // Summary is our own copy (deltas were applied to it)
}

// Summaries is directory-summaries: what the other directories of the same
// website (other localities, other PetalUp instances) hold.
type Summaries struct {
	byKey   map[ids.Key]*Remote
	members []ids.Member // byKey's members in key order, nil when stale
}

// NewSummaries returns an empty set.
func NewSummaries() *Summaries { return &Summaries{byKey: make(map[ids.Key]*Remote)} }

// Know records that m is a directory of the website (discovered, not yet
// summarised); it keeps an existing entry's summary if the holder is the same.
func (s *Summaries) Know(m ids.Member, now time.Duration) {
	r := s.byKey[m.Key]
	if r == nil || r.Member.ID != m.ID {
		s.byKey[m.Key] = &Remote{Member: m, LastSeen: now}
		s.members = nil
		return
	}
	r.LastSeen = max(r.LastSeen, now)
}

// Receive is receiveSummary(d, s).
func (s *Summaries) Receive(m ids.Member, f *bloom.BloomFilter, now time.Duration) {
	if r := s.byKey[m.Key]; r == nil || r.Member != m {
		s.members = nil
	}
	s.byKey[m.Key] = &Remote{Member: m, Summary: f, LastSeen: now}
}

// ReceiveDelta adds objs to the summary held for m, if any (a delta between
// two full summaries). It reports whether it could.
func (s *Summaries) ReceiveDelta(m ids.Member, objs []ids.ObjectID, now time.Duration) bool {
	r := s.byKey[m.Key]
	if r == nil || r.Member.ID != m.ID || r.Summary == nil {
		return false
	}
	if len(objs) > 0 {
		if !r.owned {
			// The filter came from the sender, which shares it: copy once.
			r.Summary, r.owned = r.Summary.Copy(), true
		}
		summary.AddTo(r.Summary, objs)
	}
	r.LastSeen = now
	return true
}

// Forget drops the directory at key if it is still held by id.
func (s *Summaries) Forget(key ids.Key, id ids.PeerID) {
	if r := s.byKey[key]; r != nil && r.Member.ID == id {
		delete(s.byKey, key)
		s.members = nil
	}
}

// Expire drops the directories not heard of since before cutoff.
func (s *Summaries) Expire(cutoff time.Duration) {
	for k, r := range s.byKey {
		if r.LastSeen < cutoff {
			delete(s.byKey, k)
			s.members = nil
		}
	}
}

// Members returns the known directories in key order. The slice is shared:
// do not modify it.
func (s *Summaries) Members() []ids.Member {
	if s.members == nil {
		out := make([]ids.Member, 0, len(s.byKey))
		for _, r := range s.byKey {
			out = append(out, r.Member)
		}
		slices.SortFunc(out, func(a, b ids.Member) int { return cmp.Compare(a.Key, b.Key) })
		s.members = out
	}
	return s.members
}

// Get returns the entry for key, or nil.
func (s *Summaries) Get(key ids.Key) *Remote { return s.byKey[key] }

// Candidates returns the directories whose summary may hold obj, in key order.
func (s *Summaries) Candidates(obj ids.ObjectID) []ids.Member {
	var out []ids.Member
	for _, m := range s.Members() {
		if summary.Test(s.byKey[m.Key].Summary, obj) {
			out = append(out, m)
		}
	}
	return out
}

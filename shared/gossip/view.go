// Package gossip is the seed's gossip protocol state: a content peer's view
// of its petal (contacts with ages and content summaries) and the
// CYCLON-style shuffle that keeps it fresh (Voulgaris et al., 2005).
package gossip

import (
	"math/rand/v2"
	"slices"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/summary"
	"github.com/flowercdn/flower/shared/wire"
)

// Entry is one contact of a view.
type Entry struct {
	ID      ids.PeerID
	Age     uint16
	Summary *bloom.BloomFilter // receiveContentSummary: what the contact holds
	// SentVersion is the version of our own summary this contact last got.
	SentVersion uint64
}

// View is a bounded list of contacts, in a deterministic order.
type View struct {
	max     int
	entries []Entry
}

// NewView returns an empty view of at most max contacts.
func NewView(max int) *View { return &View{max: max} }

// Len is the number of contacts.
func (v *View) Len() int { return len(v.entries) }

// Entries returns the contacts; the slice is the view's own.
func (v *View) Entries() []Entry { return v.entries }

func (v *View) index(id ids.PeerID) int {
	for i := range v.entries {
		if v.entries[i].ID == id {
			return i
		}
	}
	return -1
}

// Get returns the entry of id, or nil.
func (v *View) Get(id ids.PeerID) *Entry {
	if i := v.index(id); i >= 0 {
		return &v.entries[i]
	}
	return nil
}

// AddContact adds c unless present (then the lower age is kept) or the view
// is full. It reports whether c is in the view afterwards.
func (v *View) AddContact(c wire.Contact) bool {
	if i := v.index(c.ID); i >= 0 {
		v.entries[i].Age = min(v.entries[i].Age, c.Age)
		return true
	}
	if len(v.entries) >= v.max {
		return false
	}
	v.entries = append(v.entries, Entry{ID: c.ID, Age: c.Age})
	return true
}

// RemoveContact removes id. It reports whether it was there.
func (v *View) RemoveContact(id ids.PeerID) bool {
	i := v.index(id)
	if i < 0 {
		return false
	}
	v.entries = append(v.entries[:i], v.entries[i+1:]...)
	return true
}

// IncreaseAges ages every entry by one round.
func (v *View) IncreaseAges() {
	for i := range v.entries {
		if v.entries[i].Age < ^uint16(0) {
			v.entries[i].Age++
		}
	}
}

// Oldest returns the contact with the highest age (first such in order).
func (v *View) Oldest() (ids.PeerID, bool) {
	best := -1
	for i := range v.entries {
		if best < 0 || v.entries[i].Age > v.entries[best].Age {
			best = i
		}
	}
	if best < 0 {
		return ids.PeerID{}, false
	}
	return v.entries[best].ID, true
}

// Sample returns up to n random contacts other than exclude.
func (v *View) Sample(rnd *rand.Rand, n int, exclude ids.PeerID) []wire.Contact {
	cand := make([]int, 0, len(v.entries))
	for i := range v.entries {
		if v.entries[i].ID != exclude {
			cand = append(cand, i)
		}
	}
	for i := 0; i < n && i < len(cand); i++ {
		j := i + rnd.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	if len(cand) > n {
		cand = cand[:n]
	}
	out := make([]wire.Contact, len(cand))
	for i, k := range cand {
		out[i] = wire.Contact{ID: v.entries[k].ID, Age: v.entries[k].Age}
	}
	return out
}

// Merge is CYCLON's merge: received entries other than self are added while
// there is room, then replace the entries we sent in this exchange; known
// contacts keep the lower age. Entries that fit nowhere are dropped.
func (v *View) Merge(self ids.PeerID, received, sent []wire.Contact) {
	// First pass: contacts we know keep the lower age; they never displace
	// anything (CYCLON discards entries already in the view).
	fresh := make([]wire.Contact, 0, len(received))
	for _, r := range received {
		if r.ID == self || r.ID.IsZero() {
			continue
		}
		if i := v.index(r.ID); i >= 0 {
			v.entries[i].Age = min(v.entries[i].Age, r.Age)
			continue
		}
		if j := slices.IndexFunc(fresh, func(c wire.Contact) bool { return c.ID == r.ID }); j >= 0 {
			fresh[j].Age = min(fresh[j].Age, r.Age)
			continue
		}
		fresh = append(fresh, r)
	}
	// Second pass: new contacts fill empty slots, then replace the entries
	// we sent in this exchange (never one the partner sent back to us).
	si := 0
	for _, r := range fresh {
		if len(v.entries) < v.max {
			v.entries = append(v.entries, Entry{ID: r.ID, Age: r.Age})
			continue
		}
		for si < len(sent) {
			s := sent[si]
			si++
			i := v.index(s.ID)
			if i >= 0 && !slices.ContainsFunc(received, func(c wire.Contact) bool { return c.ID == s.ID }) {
				v.entries[i] = Entry{ID: r.ID, Age: r.Age}
				break
			}
		}
	}
}

// SetSummary is receiveContentSummary(c, s).
func (v *View) SetSummary(id ids.PeerID, s *bloom.BloomFilter) {
	if e := v.Get(id); e != nil && s != nil {
		e.Summary = s
	}
}

// MayHold returns the contacts whose content summary says they may hold obj,
// in view order, skipping those in skip.
func (v *View) MayHold(obj ids.ObjectID, skip func(ids.PeerID) bool) []ids.PeerID {
	var out []ids.PeerID
	for i := range v.entries {
		e := &v.entries[i]
		if summary.Test(e.Summary, obj) && (skip == nil || !skip(e.ID)) {
			out = append(out, e.ID)
		}
	}
	return out
}

// Contacts returns the view as wire contacts (for persistence).
func (v *View) Contacts() []wire.Contact {
	out := make([]wire.Contact, len(v.entries))
	for i, e := range v.entries {
		out[i] = wire.Contact{ID: e.ID, Age: e.Age}
	}
	return out
}

// Package dring is the D-ring: a Chord ring (Stoica et al., 2001) whose
// members are the directory peers. This package holds one member's routing
// state (successor list, predecessor, fingers) and the ring arithmetic; the
// protocol core drives it with messages and timers.
package dring

import (
	"github.com/flowercdn/flower/shared/ids"
)

// Bits is m, the size of the key space in bits.
const Bits = 64

// Between reports whether x lies in the ring interval (a, b]. With a == b
// the interval is the whole ring.
func Between(x, a, b ids.Key) bool {
	if a == b {
		return true
	}
	return uint64(x-a-1) < uint64(b-a) // x in (a, b]
}

// Strictly reports whether x lies in the open ring interval (a, b).
func Strictly(x, a, b ids.Key) bool {
	if a == b {
		return x != a
	}
	return x != b && Between(x, a, b)
}

// Distance is the clockwise distance from a to b.
func Distance(a, b ids.Key) uint64 { return uint64(b - a) }

// State is one D-ring member's routing state.
type State struct {
	Self   ids.Member
	Pred   ids.Member // zero: unknown
	Succs  []ids.Member
	Finger [Bits]ids.Member
	// NextFinger is the finger fixFingers refreshes next.
	NextFinger int
	maxSuccs   int
}

// New returns the state of a member that is alone on its ring.
func New(self ids.Member, succListLen int) *State {
	return &State{Self: self, Succs: []ids.Member{self}, maxSuccs: succListLen}
}

// Successor is the first live successor (Self when alone).
func (s *State) Successor() ids.Member {
	if len(s.Succs) == 0 {
		return s.Self
	}
	return s.Succs[0]
}

// FingerStart is the key finger i points at: Self.Key + 2^i.
func (s *State) FingerStart(i int) ids.Key { return s.Self.Key + ids.Key(uint64(1)<<uint(i)) }

// SetSuccessors installs succ followed by its successor list, without Self
// duplicates beyond the first and bounded to the configured length.
func (s *State) SetSuccessors(succ ids.Member, rest []ids.Member) {
	out := make([]ids.Member, 0, s.maxSuccs)
	out = append(out, succ)
	for _, m := range rest {
		if len(out) >= s.maxSuccs {
			break
		}
		if m.IsZero() || m == s.Self || contains(out, m) {
			continue
		}
		out = append(out, m)
	}
	s.Succs = out
}

func contains(ms []ids.Member, m ids.Member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// Remove forgets a member that failed: from the successor list (Self is
// left alone when nothing else remains), the predecessor and the fingers.
func (s *State) Remove(id ids.PeerID) {
	kept := make([]ids.Member, 0, len(s.Succs)) // Succs may be in a message in flight
	for _, m := range s.Succs {
		if m.ID != id {
			kept = append(kept, m)
		}
	}
	s.Succs = kept
	if len(s.Succs) == 0 {
		s.Succs = append(s.Succs, s.Self)
	}
	if s.Pred.ID == id {
		s.Pred = ids.Member{}
	}
	for i := range s.Finger {
		if s.Finger[i].ID == id {
			s.Finger[i] = ids.Member{}
		}
	}
}

// RemoveMember forgets one member that no longer holds its position.
func (s *State) RemoveMember(m ids.Member) {
	kept := make([]ids.Member, 0, len(s.Succs)) // Succs may be in a message in flight
	for _, x := range s.Succs {
		if x != m {
			kept = append(kept, x)
		}
	}
	s.Succs = kept
	if len(s.Succs) == 0 {
		s.Succs = append(s.Succs, s.Self)
	}
	if s.Pred == m {
		s.Pred = ids.Member{}
	}
	for i := range s.Finger {
		if s.Finger[i] == m {
			s.Finger[i] = ids.Member{}
		}
	}
}

// Responsible reports whether this member is the successor of key, as far
// as it knows: key in (Pred, Self], or no predecessor known and key == Self.
func (s *State) Responsible(key ids.Key) bool {
	if key == s.Self.Key {
		return true
	}
	if s.Pred.IsZero() {
		return s.Successor() == s.Self // alone: responsible for everything
	}
	return Between(key, s.Pred.Key, s.Self.Key)
}

// NextHop returns where a lookup for key goes from here, and whether that
// member is the key's successor (the final hop). Self with final true means
// this member is responsible.
func (s *State) NextHop(key ids.Key) (ids.Member, bool) {
	if s.Responsible(key) {
		return s.Self, true
	}
	succ := s.Successor()
	if Between(key, s.Self.Key, succ.Key) {
		return succ, true
	}
	best := s.Self
	for i := Bits - 1; i >= 0; i-- {
		f := s.Finger[i]
		if !f.IsZero() && Strictly(f.Key, s.Self.Key, key) {
			best = f
			break
		}
	}
	// A successor-list entry may be closer than the best finger.
	for _, m := range s.Succs {
		if Strictly(m.Key, best.Key, key) && Strictly(m.Key, s.Self.Key, key) {
			best = m
		}
	}
	if best == s.Self {
		return succ, true
	}
	return best, false
}

// Members returns every distinct member this state knows, Self excluded.
func (s *State) Members() []ids.Member {
	var out []ids.Member
	add := func(m ids.Member) {
		if !m.IsZero() && m != s.Self && !contains(out, m) {
			out = append(out, m)
		}
	}
	add(s.Pred)
	for _, m := range s.Succs {
		add(m)
	}
	for _, m := range s.Finger {
		add(m)
	}
	return out
}

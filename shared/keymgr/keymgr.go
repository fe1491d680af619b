// Package keymgr is the seed's key manager: generateKey(ws, loc) places the
// directory positions of one website next to each other on the D-ring.
package keymgr

import (
	"fmt"
	"math/bits"

	"github.com/flowercdn/flower/shared/ids"
)

// Layout says how many low key bits hold the locality and the PetalUp-CDN
// instance number. The key of (ws, loc, inst) is H(ws) with its low
// LocBits+InstBits bits replaced by loc<<InstBits | inst, so the directory
// positions of one website are adjacent, ordered by locality then instance.
type Layout struct {
	LocBits  int
	InstBits int
}

// NewLayout returns the layout for k localities and instBits instance bits.
func NewLayout(k, instBits int) (Layout, error) {
	if k < 1 {
		return Layout{}, fmt.Errorf("keymgr: %d localities, want at least 1", k)
	}
	if instBits < 0 || instBits > 16 {
		return Layout{}, fmt.Errorf("keymgr: %d instance bits out of range [0,16]", instBits)
	}
	b := 0
	if k > 1 {
		b = bits.Len(uint(k - 1)) // ceil(log2 k)
	}
	return Layout{LocBits: b, InstBits: instBits}, nil
}

func (l Layout) lowBits() uint { return uint(l.LocBits + l.InstBits) }

// Key is generateKey(ws, loc) extended with a PetalUp instance number.
func (l Layout) Key(site ids.SiteID, loc, inst int) ids.Key {
	mask := uint64(1)<<l.lowBits() - 1
	return ids.Key(uint64(site)&^mask | uint64(loc)<<uint(l.InstBits) | uint64(inst))
}

// Split returns the website prefix, locality and instance encoded in key.
func (l Layout) Split(key ids.Key) (prefix uint64, loc, inst int) {
	mask := uint64(1)<<l.lowBits() - 1
	low := uint64(key) & mask
	return uint64(key) &^ mask, int(low >> uint(l.InstBits)), int(low & (uint64(1)<<uint(l.InstBits) - 1))
}

// SameSite reports whether key belongs to site (same high bits).
func (l Layout) SameSite(key ids.Key, site ids.SiteID) bool {
	mask := uint64(1)<<l.lowBits() - 1
	return uint64(key)&^mask == uint64(site)&^mask
}

// MaxInstances is the number of instance numbers the layout holds.
func (l Layout) MaxInstances() int { return 1 << uint(l.InstBits) }

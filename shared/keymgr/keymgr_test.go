package keymgr

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

// ceilLog2 is the reference: the smallest b with 2^b >= k.
func ceilLog2(k int) int {
	b := 0
	for 1<<b < k {
		b++
	}
	return b
}

func TestNewLayoutLocBits(t *testing.T) {
	for k := 1; k <= 300; k++ {
		for _, inst := range []int{0, 1, 5, 16} {
			l, err := NewLayout(k, inst)
			if err != nil {
				t.Fatalf("NewLayout(%d, %d): %v", k, inst, err)
			}
			if want := ceilLog2(k); l.LocBits != want {
				t.Errorf("NewLayout(%d, %d).LocBits = %d, want %d", k, inst, l.LocBits, want)
			}
			if l.InstBits != inst {
				t.Errorf("NewLayout(%d, %d).InstBits = %d", k, inst, l.InstBits)
			}
			// Every locality number below k must fit in LocBits.
			if k-1 >= 1<<l.LocBits {
				t.Errorf("k=%d: locality %d does not fit in %d bits", k, k-1, l.LocBits)
			}
		}
	}
	for _, c := range []struct{ k, want int }{
		{1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {8, 3}, {9, 4}, {16, 4}, {17, 5},
		{256, 8}, {257, 9}, {1 << 20, 20}, {1<<20 + 1, 21},
	} {
		l, err := NewLayout(c.k, 0)
		if err != nil || l.LocBits != c.want {
			t.Errorf("NewLayout(%d, 0) = %+v, %v; want LocBits %d", c.k, l, err, c.want)
		}
	}
}

func TestNewLayoutErrors(t *testing.T) {
	for _, c := range []struct {
		k, inst int
		ok      bool
	}{
		{0, 0, false},
		{-1, 0, false},
		{-300, 4, false},
		{1, -1, false},
		{4, 17, false},
		{4, 100, false},
		{0, 17, false},
		{1, 0, true},
		{1, 16, true},
		{300, 0, true},
		{300, 16, true},
	} {
		l, err := NewLayout(c.k, c.inst)
		if (err == nil) != c.ok {
			t.Errorf("NewLayout(%d, %d) error = %v, want ok=%v", c.k, c.inst, err, c.ok)
		}
		if err != nil && l != (Layout{}) {
			t.Errorf("NewLayout(%d, %d) returned %+v with an error", c.k, c.inst, l)
		}
	}
}

func TestMaxInstances(t *testing.T) {
	for inst := 0; inst <= 16; inst++ {
		l, err := NewLayout(3, inst)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.MaxInstances(); got != 1<<inst {
			t.Errorf("MaxInstances with %d bits = %d, want %d", inst, got, 1<<inst)
		}
	}
}

func testSites(t *testing.T) []ids.SiteID {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	sites := []ids.SiteID{
		0,
		^ids.SiteID(0),
		ids.SiteOf("https://example.com"),
		ids.SiteOf("http://localhost:8080"),
		0x8000000000000000,
		0x00000000ffffffff,
	}
	for range 20 {
		sites = append(sites, ids.SiteID(rnd.Uint64()))
	}
	return sites
}

var layoutCases = []struct{ k, inst int }{
	{1, 0}, {1, 2}, {2, 0}, {3, 0}, {3, 2}, {5, 1}, {8, 0}, {8, 3}, {13, 2}, {64, 0}, {100, 1}, {300, 4},
}

// The keys of one website are distinct, share the website's high bits, sit
// within one block of 2^(LocBits+InstBits) keys, and are ordered by
// locality then instance.
func TestKeysAdjacentAndDistinct(t *testing.T) {
	for _, lc := range layoutCases {
		l, err := NewLayout(lc.k, lc.inst)
		if err != nil {
			t.Fatal(err)
		}
		block := uint64(1) << uint(l.LocBits+l.InstBits)
		for _, site := range testSites(t) {
			var keys []ids.Key
			seen := make(map[ids.Key]bool)
			for loc := 0; loc < lc.k; loc++ {
				for inst := 0; inst < l.MaxInstances(); inst++ {
					key := l.Key(site, loc, inst)
					if seen[key] {
						t.Fatalf("k=%d inst=%d site=%x: duplicate key %x for (%d,%d)", lc.k, lc.inst, site, key, loc, inst)
					}
					seen[key] = true
					if !l.SameSite(key, site) {
						t.Errorf("k=%d site=%x: key %x of (%d,%d) not SameSite", lc.k, site, key, loc, inst)
					}
					keys = append(keys, key)
				}
			}
			if !slices.IsSorted(keys) {
				t.Errorf("k=%d inst=%d site=%x: keys not ordered by (locality, instance): %x", lc.k, lc.inst, site, keys)
			}
			lo, hi := uint64(keys[0]), uint64(keys[len(keys)-1])
			if hi-lo >= block {
				t.Errorf("k=%d inst=%d site=%x: keys span %d, not within a block of %d", lc.k, lc.inst, site, hi-lo, block)
			}
			if lo&(block-1) != 0 {
				t.Errorf("k=%d inst=%d site=%x: first key %x not at block start", lc.k, lc.inst, site, lo)
			}
			// Keys are consecutive: (loc, inst) maps to loc*2^InstBits+inst.
			for i, key := range keys {
				if uint64(key)-lo != uint64(i) {
					t.Errorf("k=%d inst=%d: key %d at offset %d", lc.k, lc.inst, i, uint64(key)-lo)
					break
				}
			}
		}
	}
}

func TestSplitInvertsKey(t *testing.T) {
	for _, lc := range layoutCases {
		l, err := NewLayout(lc.k, lc.inst)
		if err != nil {
			t.Fatal(err)
		}
		mask := uint64(1)<<uint(l.LocBits+l.InstBits) - 1
		for _, site := range testSites(t) {
			for loc := 0; loc < lc.k; loc++ {
				for inst := 0; inst < l.MaxInstances(); inst++ {
					prefix, gl, gi := l.Split(l.Key(site, loc, inst))
					if prefix != uint64(site)&^mask || gl != loc || gi != inst {
						t.Fatalf("k=%d inst=%d site=%x: Split(Key(%d,%d)) = %x,%d,%d; want %x,%d,%d",
							lc.k, lc.inst, site, loc, inst, prefix, gl, gi, uint64(site)&^mask, loc, inst)
					}
				}
			}
		}
	}
}

// Key(Split(key)) == key for any key.
func TestKeyInvertsSplit(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, lc := range layoutCases {
		l, _ := NewLayout(lc.k, lc.inst)
		for range 1000 {
			key := ids.Key(rnd.Uint64())
			prefix, loc, inst := l.Split(key)
			if got := l.Key(ids.SiteID(prefix), loc, inst); got != key {
				t.Fatalf("k=%d inst=%d: Key(Split(%x)) = %x", lc.k, lc.inst, key, got)
			}
			// The low bits of the site are ignored.
			if got := l.Key(ids.SiteID(prefix|uint64(rnd.Uint32())&(uint64(1)<<uint(l.LocBits+l.InstBits)-1)), loc, inst); got != key {
				t.Fatalf("k=%d inst=%d: Key ignores low site bits? got %x want %x", lc.k, lc.inst, got, key)
			}
		}
	}
}

func TestSingleLocalityNoInstancesIsSiteHash(t *testing.T) {
	l, err := NewLayout(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range testSites(t) {
		if got := l.Key(site, 0, 0); got != ids.Key(site) {
			t.Errorf("Key(%x,0,0) = %x, want the site hash itself", site, got)
		}
		if !l.SameSite(ids.Key(site), site) {
			t.Errorf("SameSite(%x) false", site)
		}
		if l.SameSite(ids.Key(site)^1, site) {
			t.Errorf("SameSite of a neighbouring key is true with no low bits")
		}
	}
}

func TestSameSite(t *testing.T) {
	l, err := NewLayout(5, 2) // 3 locality bits + 2 instance bits = 5 low bits
	if err != nil {
		t.Fatal(err)
	}
	site := ids.SiteID(0x0123456789abcdef)
	for _, c := range []struct {
		key  ids.Key
		want bool
	}{
		{ids.Key(site), true},
		{ids.Key(site) &^ 0x1f, true},
		{ids.Key(site) | 0x1f, true},
		{l.Key(site, 4, 3), true},
		{ids.Key(site) ^ 0x20, false}, // lowest prefix bit differs
		{ids.Key(site) ^ 1<<63, false},
		{ids.Key(site) + 0x20, false},
		{0, false},
	} {
		if got := l.SameSite(c.key, site); got != c.want {
			t.Errorf("SameSite(%x, %x) = %v, want %v", c.key, site, got, c.want)
		}
	}
	// Neighbouring websites do not share keys.
	other := ids.SiteID(uint64(site) + 0x20)
	for loc := 0; loc < 5; loc++ {
		for inst := 0; inst < 4; inst++ {
			if l.SameSite(l.Key(other, loc, inst), site) {
				t.Errorf("key of other site (%d,%d) reported as same site", loc, inst)
			}
			if l.Key(other, loc, inst) == l.Key(site, loc, inst) {
				t.Errorf("sites collide at (%d,%d)", loc, inst)
			}
		}
	}
}

// With all 64 bits used as low bits the masks must not overflow.
func TestFullWidthLayout(t *testing.T) {
	l, err := NewLayout(1<<48, 16)
	if err != nil {
		t.Fatal(err)
	}
	if l.LocBits != 48 {
		t.Fatalf("LocBits = %d", l.LocBits)
	}
	key := l.Key(ids.SiteID(0xdeadbeefcafef00d), 12345, 678)
	prefix, loc, inst := l.Split(key)
	if prefix != 0 || loc != 12345 || inst != 678 {
		t.Errorf("Split = %x,%d,%d", prefix, loc, inst)
	}
	if !l.SameSite(key, 42) {
		t.Errorf("with no prefix bits every key is the same site")
	}
}

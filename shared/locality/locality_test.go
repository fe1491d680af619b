package locality

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestMedianRTT(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{5 * ms}, 5 * ms},
		{[]time.Duration{30 * ms, 10 * ms, 20 * ms}, 20 * ms},
		{[]time.Duration{900 * ms, 10 * ms, 11 * ms}, 11 * ms}, // an outlier does not move it
		{[]time.Duration{10 * ms, 40 * ms}, 25 * ms},
		{[]time.Duration{4, 1, 3, 2}, 2}, // 2.5ns rounds down
		{[]time.Duration{0, 0, 0}, 0},
		{[]time.Duration{1<<63 - 1, 1<<63 - 1}, 1<<63 - 1}, // no overflow
	} {
		in := slices.Clone(c.in)
		got, err := MedianRTT(in)
		if err != nil || got != c.want {
			t.Errorf("MedianRTT(%v) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("MedianRTT modified its input: %v", in)
		}
	}
	if _, err := MedianRTT(nil); !errors.Is(err, ErrNoSamples) {
		t.Errorf("no samples: %v", err)
	}
	if _, err := MedianRTT([]time.Duration{1, -1, 3}); !errors.Is(err, ErrNegativeRTT) || !strings.Contains(err.Error(), "sample 1") {
		t.Errorf("negative sample: %v", err)
	}
}

func TestLevels(t *testing.T) {
	l := DefaultLevels()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rtt  time.Duration
		want int
	}{{0, 0}, {99 * ms, 0}, {100 * ms, 1}, {199 * ms, 1}, {200 * ms, 2}, {5 * time.Second, 2}} {
		if got := l.Level(c.rtt); got != c.want {
			t.Errorf("Level(%v) = %d, want %d", c.rtt, got, c.want)
		}
	}
	if (Levels(nil)).Level(time.Second) != 0 {
		t.Error("no boundaries: level not 0")
	}
	for _, bad := range []Levels{{0}, {-ms}, {100 * ms, 100 * ms}, {200 * ms, 100 * ms}} {
		if err := bad.Validate(); !errors.Is(err, ErrBadLevels) {
			t.Errorf("Validate(%v) = %v, want ErrBadLevels", bad, err)
		}
	}
}

func TestNewBin(t *testing.T) {
	rtts := []time.Duration{120 * ms, 15 * ms, 250 * ms, 80 * ms}
	b, err := NewBin(rtts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Order, []int{1, 3, 0, 2}) || b.Levels != nil || b.String() != "1-3-0-2" || b.Nearest() != 1 {
		t.Fatalf("bin %+v %q", b, b)
	}
	b, err = NewBin(rtts, DefaultLevels())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Levels, []int{0, 0, 1, 2}) || b.String() != "1-3-0-2:0-0-1-2" {
		t.Fatalf("bin with levels %+v %q", b, b)
	}
	// Ties go to the lower landmark index, whatever the input order.
	b, _ = NewBin([]time.Duration{7, 3, 7, 3}, nil)
	if b.String() != "1-3-0-2" {
		t.Fatalf("ties: %q", b)
	}
	if (Bin{}).Nearest() != -1 {
		t.Fatal("empty bin has a nearest landmark")
	}

	for _, c := range []struct {
		name   string
		rtts   []time.Duration
		levels Levels
		want   error
	}{
		{"no landmarks", nil, nil, ErrNoLandmarks},
		{"too many", make([]time.Duration, MaxLandmarks+1), nil, ErrTooManyLandmarks},
		{"negative", []time.Duration{1, -1}, nil, ErrNegativeRTT},
		{"bad levels", []time.Duration{1}, Levels{2, 1}, ErrBadLevels},
	} {
		if _, err := NewBin(c.rtts, c.levels); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseBin(t *testing.T) {
	for _, s := range []string{"0", "1-3-0-2", "1-3-0-2:0-0-1-2", "0:5", "2-0-1:0-0-0", "10-9-8-7-6-5-4-3-2-1-0"} {
		b, err := ParseBin(s)
		if err != nil {
			t.Errorf("ParseBin(%q): %v", s, err)
			continue
		}
		if b.String() != s {
			t.Errorf("ParseBin(%q).String() = %q", s, b)
		}
	}
	for _, s := range []string{
		"", ":", "0:", ":0", "a", "0-", "-0", "0--1", "1", "0-0", "0-2", "01-0", "+0", "0-1:1-0", "0-1:0",
		"0-1:0-0-0", "0-1:0-x", "0:-1", "0:10000", "0:0:0", " 0", strings.Repeat("0-", MaxLandmarks) + "0",
	} {
		if _, err := ParseBin(s); !errors.Is(err, ErrBadBin) {
			t.Errorf("ParseBin(%q) = %v, want ErrBadBin", s, err)
		}
	}
}

func TestLocalityDefault(t *testing.T) {
	// Four landmarks, one per region; the peer is nearest to landmark 2.
	rtts := []time.Duration{90 * ms, 140 * ms, 12 * ms, 60 * ms}
	for _, c := range []struct{ k, want int }{{4, 2}, {8, 2}, {2, 0}, {3, 2}, {1, 0}} {
		got, err := Locality(rtts, c.k, Mapping{})
		if err != nil || got != c.want {
			t.Errorf("k=%d: Locality = %d, %v; want %d", c.k, got, err, c.want)
		}
	}
	// Levels do not change the default rule.
	if got, err := Locality(rtts, 4, Mapping{Levels: DefaultLevels()}); err != nil || got != 2 {
		t.Errorf("with levels: %d, %v", got, err)
	}
	// Every locality is in range for any k.
	for k := 1; k <= 10; k++ {
		for nearest := range 6 {
			r := []time.Duration{50, 50, 50, 50, 50, 50}
			r[nearest] = 1
			got, err := Locality(r, k, Mapping{})
			if err != nil || got < 0 || got >= k || got != nearest%k {
				t.Fatalf("k=%d nearest=%d: %d, %v", k, nearest, got, err)
			}
		}
	}
}

func TestLocalityTable(t *testing.T) {
	m := Mapping{
		Levels: DefaultLevels(),
		Table: map[string]int{
			"2-0-1:0-0-1": 5, // near landmarks 2 and 0
			"2-1-0:0-1-2": 6,
		},
	}
	if err := m.Validate(8, 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rtts []time.Duration
		want int
	}{
		{[]time.Duration{50 * ms, 150 * ms, 10 * ms}, 5},
		{[]time.Duration{250 * ms, 150 * ms, 10 * ms}, 6},
		{[]time.Duration{250 * ms, 150 * ms, 100 * ms}, 2}, // "2-1-0:1-1-2" not in table: nearest landmark
		{[]time.Duration{5 * ms, 150 * ms, 10 * ms}, 0},    // not in table
	} {
		got, err := Locality(c.rtts, 8, m)
		if err != nil || got != c.want {
			t.Errorf("Locality(%v) = %d, %v; want %d", c.rtts, got, err, c.want)
		}
	}

	// Ordering-only table.
	m2 := Mapping{Table: map[string]int{"1-0": 0, "0-1": 0}}
	if got, err := Locality([]time.Duration{9, 1}, 2, m2); err != nil || got != 0 {
		t.Errorf("ordering-only table: %d, %v", got, err)
	}

	// Strict: a missing bin is an error.
	m.Strict = true
	if _, err := Locality([]time.Duration{5 * ms, 150 * ms, 10 * ms}, 8, m); !errors.Is(err, ErrUnmapped) || !strings.Contains(err.Error(), `"0-2-1:0-0-1"`) {
		t.Errorf("strict, missing bin: %v", err)
	}
	if got, err := Locality([]time.Duration{50 * ms, 150 * ms, 10 * ms}, 8, m); err != nil || got != 5 {
		t.Errorf("strict, present bin: %d, %v", got, err)
	}

	// A table entry outside [0, k) is caught when used.
	if _, err := Locality([]time.Duration{50 * ms, 150 * ms, 10 * ms}, 4, m); !errors.Is(err, ErrBadMapping) {
		t.Errorf("entry out of range: %v", err)
	}
}

func TestLocalityErrors(t *testing.T) {
	one := []time.Duration{ms}
	for _, c := range []struct {
		name string
		rtts []time.Duration
		k    int
		m    Mapping
		want error
	}{
		{"k zero", one, 0, Mapping{}, ErrBadK},
		{"k negative", one, -3, Mapping{}, ErrBadK},
		{"no landmarks", nil, 4, Mapping{}, ErrNoLandmarks},
		{"empty landmarks", []time.Duration{}, 4, Mapping{}, ErrNoLandmarks},
		{"too many landmarks", make([]time.Duration, MaxLandmarks+1), 4, Mapping{}, ErrTooManyLandmarks},
		{"negative rtt", []time.Duration{ms, -ms}, 4, Mapping{}, ErrNegativeRTT},
		{"bad levels", one, 4, Mapping{Levels: Levels{-1}}, ErrBadLevels},
		{"negative table entry", one, 4, Mapping{Table: map[string]int{"0": -1}}, ErrBadMapping},
	} {
		if _, err := Locality(c.rtts, c.k, c.m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "locality: ") {
			t.Errorf("%s: error without context: %v", c.name, err)
		}
	}
}

func TestMappingValidate(t *testing.T) {
	lv := DefaultLevels()
	for _, c := range []struct {
		name         string
		m            Mapping
		k, landmarks int
		want         error
	}{
		{"k zero", Mapping{}, 0, 3, ErrBadK},
		{"no landmarks", Mapping{}, 4, 0, ErrNoLandmarks},
		{"too many landmarks", Mapping{}, 4, MaxLandmarks + 1, ErrTooManyLandmarks},
		{"bad levels", Mapping{Levels: Levels{0}}, 4, 3, ErrBadLevels},
		{"bad key", Mapping{Table: map[string]int{"0-0-1": 1}}, 4, 3, ErrBadBin},
		{"non-canonical key", Mapping{Table: map[string]int{"00-1-2": 1}}, 4, 3, ErrBadBin},
		{"wrong landmark count", Mapping{Table: map[string]int{"0-1": 1}}, 4, 3, ErrBadMapping},
		{"levels missing in key", Mapping{Levels: lv, Table: map[string]int{"0-1-2": 1}}, 4, 3, ErrBadMapping},
		{"levels in key without levels", Mapping{Table: map[string]int{"0-1-2:0-0-0": 1}}, 4, 3, ErrBadMapping},
		{"level too high", Mapping{Levels: lv, Table: map[string]int{"0-1-2:0-1-3": 1}}, 4, 3, ErrBadMapping},
		{"locality too high", Mapping{Table: map[string]int{"0-1-2": 4}}, 4, 3, ErrBadMapping},
		{"locality negative", Mapping{Table: map[string]int{"0-1-2": -1}}, 4, 3, ErrBadMapping},
	} {
		if err := c.m.Validate(c.k, c.landmarks); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := (Mapping{}).Validate(1, 1); err != nil {
		t.Errorf("default mapping: %v", err)
	}
}

func TestFromProbes(t *testing.T) {
	probes := [][]time.Duration{
		{80 * ms, 85 * ms, 300 * ms},
		{20 * ms, 900 * ms, 22 * ms}, // one lost-and-retried probe: the median ignores it
		{40 * ms, 41 * ms, 39 * ms},
	}
	got, err := FromProbes(probes, 3, Mapping{})
	if err != nil || got != 1 {
		t.Fatalf("FromProbes = %d, %v; want 1", got, err)
	}
	if _, err := FromProbes([][]time.Duration{{ms}, {}}, 3, Mapping{}); !errors.Is(err, ErrNoSamples) || !strings.Contains(err.Error(), "landmark 1") {
		t.Fatalf("landmark without samples: %v", err)
	}
	if _, err := FromProbes(nil, 3, Mapping{}); !errors.Is(err, ErrNoLandmarks) {
		t.Fatalf("no landmarks: %v", err)
	}
}

// TestDeterministic: the same measurement always gives the same answer, and
// the input slice is left alone.
func TestDeterministic(t *testing.T) {
	rtts := []time.Duration{30 * ms, 30 * ms, 10 * ms, 10 * ms, 70 * ms}
	in := slices.Clone(rtts)
	first, err := Locality(rtts, 5, Mapping{Levels: DefaultLevels()})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if got, _ := Locality(rtts, 5, Mapping{Levels: DefaultLevels()}); got != first {
			t.Fatal("Locality is not deterministic")
		}
	}
	if !slices.Equal(in, rtts) {
		t.Fatal("Locality modified its input")
	}
}

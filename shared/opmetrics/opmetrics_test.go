package opmetrics

import (
	"math"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	cases := map[time.Duration]int{0: 0, 5 * time.Millisecond: 0, 6 * time.Millisecond: 1, 100 * time.Millisecond: 4, 101 * time.Millisecond: 5, 10 * time.Second: 10, time.Minute: NBuckets - 1}
	for d, want := range cases {
		if got := Bucket(d); got != want {
			t.Errorf("Bucket(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if _, ok := h.Quantile(0.5); ok {
		t.Fatal("quantile of nothing")
	}
	h[Bucket(30*time.Millisecond)] = 10 // (0.025, 0.05]
	v, ok := h.Quantile(0.5)
	if !ok || math.Abs(v-0.0375) > 1e-9 {
		t.Fatalf("median %v %v, want 0.0375", v, ok)
	}
	h[NBuckets-1] = 100
	if v, _ := h.Quantile(0.99); v != TTFBBounds[len(TTFBBounds)-1] {
		t.Fatalf("p99 in the +Inf bucket: %v", v)
	}
}

func TestSubAddRatio(t *testing.T) {
	var a, b SiteCounters
	a.Bytes[SourcePeer], a.Bytes[SourceOrigin], a.PeerTTFB[2] = 300, 100, 4
	b.Bytes[SourcePeer], b.PeerTTFB[2], b.VerifyFailures = 100, 1, 5
	d := a.Sub(b)
	if d.Bytes[SourcePeer] != 200 || d.Bytes[SourceOrigin] != 100 || d.PeerTTFB[2] != 3 || d.VerifyFailures != 0 {
		t.Fatalf("sub %+v", d)
	}
	d.Add(b)
	if d.Bytes[SourcePeer] != 300 || d.VerifyFailures != 5 {
		t.Fatalf("add %+v", d)
	}
	if r, ok := a.OffloadRatio(); !ok || r != 0.75 {
		t.Fatalf("ratio %v %v", r, ok)
	}
	if _, ok := (SiteCounters{}).OffloadRatio(); ok || !(SiteCounters{}).IsZero() {
		t.Fatal("zero counters")
	}
	if m := b.Max(a); m.Bytes[SourcePeer] != 300 || m.VerifyFailures != 5 {
		t.Fatalf("max %+v", m)
	}
}

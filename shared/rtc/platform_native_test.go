//go:build !js

package rtc

import (
	"net"
	"testing"
)

func TestWindowFor(t *testing.T) {
	for _, c := range []struct {
		granted int
		want    uint32
	}{
		{0, 1 << 20},         // unknown: pion's default
		{212992, 53248},      // Linux default rmem: a quarter
		{8 << 20, 1 << 20},   // capped at pion's default
		{16 << 20, 1 << 20},  //
		{40000, 32 << 10},    // floor
		{4 << 20, 1 << 20},   //
		{2 << 20, 512 << 10}, //
	} {
		if got := windowFor(c.granted); got != c.want {
			t.Errorf("windowFor(%d) = %d, want %d", c.granted, got, c.want)
		}
	}
}

// TestSocketBuffer: the kernel grants at least the request (root uses
// SO_RCVBUFFORCE; otherwise net.core.rmem_max bounds it and an error says so).
func TestSocketBuffer(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := setSocketBuffer(c, 1<<20)
	if err != nil {
		t.Logf("socket buffer: %v", err)
		if got <= 0 {
			t.Fatalf("granted %d", got)
		}
		return
	}
	if got != 0 && got < 1<<20 { // 0: this system does not report it
		t.Fatalf("granted %d of %d without an error", got, 1<<20)
	}
}

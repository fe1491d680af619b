package bootstrap_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
)

// readRawFrame reads one unmasked binary WebSocket message from the server.
func readRawFrame(br *bufio.Reader) (frame.Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return frame.Frame{}, fmt.Errorf("frame header: %w", err)
	}
	if h[0] != 0x82 || h[1]&0x80 != 0 {
		return frame.Frame{}, fmt.Errorf("frame header %x: want a final unmasked binary frame", h)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return frame.Frame{}, fmt.Errorf("frame length: %w", err)
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	case 127:
		return frame.Frame{}, fmt.Errorf("frame over 64 KiB")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return frame.Frame{}, fmt.Errorf("frame payload: %w", err)
	}
	return frame.Decode(b)
}

// A peer may send its first frames right behind its Hello, without waiting
// for the Welcome (they reach the server in the same read): they are served
// and the peer stays connected, in both reader modes.
func TestFramesPipelinedWithHello(t *testing.T) {
	for _, mode := range []string{"--poller=true", "--poller=false"} {
		t.Run(mode, func(t *testing.T) {
			in := start(t, nil, mode)
			c, br := rawUpgradeReader(t, in.addr)
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			ch, err := readRawFrame(br)
			if err != nil || ch.Type != frame.TChallenge {
				t.Fatalf("challenge: %+v %v", ch, err)
			}
			pub, priv, _ := ed25519.GenerateKey(nil)
			hello := frame.Frame{Type: frame.THello}
			copy(hello.Key[:], pub)
			copy(hello.Sig[:], ed25519.Sign(priv, frame.AuthMessage(in.addr, ch.Nonce)))
			wire := appendMaskedFrame(nil, hello.Append(nil))
			wire = appendMaskedFrame(wire, (&frame.Frame{Type: frame.TPing, ReqID: 1}).Append(nil))
			if _, err := c.Write(wire); err != nil { // one write: Hello and Ping together
				t.Fatal(err)
			}
			for i, want := range []frame.Type{frame.TWelcome, frame.TPong} {
				if f, err := readRawFrame(br); err != nil || f.Type != want {
					t.Fatalf("frame %d: %s %v, want %s", i, f.Type, err, want)
				}
			}
			// Still connected and served afterwards.
			for id := uint32(2); id < 4; id++ {
				if _, err := c.Write(appendMaskedFrame(nil, (&frame.Frame{Type: frame.TPing, ReqID: id}).Append(nil))); err != nil {
					t.Fatal(err)
				}
				if f, err := readRawFrame(br); err != nil || f.Type != frame.TPong || f.ReqID != id {
					t.Fatalf("ping %d after the pipelined start: %+v %v", id, f, err)
				}
			}
			if v := in.metric("flower_bootstrap_peers", ""); v != 1 {
				t.Fatalf("peers = %v, want 1", v)
			}
		})
	}
}

//go:build js && wasm

// Command wasmsmoke runs two rtc managers inside one browser page, signalled
// in memory, and reports whether messages and an object crossed the
// browser's data channels intact and in order. scripts/wasm-smoke.sh (or the
// steps in docs/transport.md) serve it to headless Chromium.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/rtc"
)

// window, if set with -ldflags "-X main.window=N", is used as both the
// high-water mark and the receive window (to see which limit binds).
var window string

func config() rtc.Config {
	var cfg rtc.Config
	if w, err := strconv.Atoi(window); err == nil {
		cfg.HighWater, cfg.ReceiveWindow = uint64(w), int64(w)
	}
	return cfg
}

type handler struct {
	msgs chan []byte
	objs chan *sink
}

func (h *handler) Message(_ ids.PeerID, b []byte) { h.msgs <- append([]byte(nil), b...) }
func (h *handler) Object(_ ids.PeerID, _ uint64, _ []byte, _ int64) (rtc.Sink, error) {
	s := &sink{done: make(chan error, 1)}
	h.objs <- s
	return s, nil
}
func (h *handler) Down(p ids.PeerID, err error) { fmt.Println("down", p.Short(), err) }

type sink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan error
}

func (s *sink) Write(b []byte) error { s.mu.Lock(); s.buf.Write(b); s.mu.Unlock(); return nil }
func (s *sink) Close(err error)      { s.done <- err }

func run() error {
	var ida, idb ids.PeerID
	ida[0], idb[0] = 1, 2
	sig := rtc.NewMemSignals(0)
	ha := &handler{msgs: make(chan []byte, 1024), objs: make(chan *sink, 4)}
	hb := &handler{msgs: make(chan []byte, 1024), objs: make(chan *sink, 4)}
	a, err := rtc.New(ida, sig.For(ida), ha, config())
	if err != nil {
		return err
	}
	b, err := rtc.New(idb, sig.For(idb), hb, config())
	if err != nil {
		return err
	}
	sig.Attach(ida, a)
	sig.Attach(idb, b)
	defer func() { _ = a.Close(); _ = b.Close(); sig.Close() }()
	start := time.Now()
	const n = 200
	for i := range n {
		if i == 50 {
			// past MaxQueued: wait for the connection
			select {
			case m := <-hb.msgs:
				if string(m) != "m0" {
					return fmt.Errorf("first message %q", m)
				}
			case <-time.After(15 * time.Second):
				return fmt.Errorf("no connection after 15 s")
			}
		}
		if err := a.Send(idb, []byte(fmt.Sprintf("m%d", i))); err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
	}
	for i := 1; i < n; i++ {
		select {
		case m := <-hb.msgs:
			if string(m) != fmt.Sprintf("m%d", i) {
				return fmt.Errorf("message %d arrived as %q: order lost", i, m)
			}
		case <-time.After(10 * time.Second):
			return fmt.Errorf("message %d missing", i)
		}
	}
	connected := time.Since(start)
	body := make([]byte, 8<<20+17)
	for i := range body {
		body[i] = byte(i*7 + i>>13)
	}
	t0 := time.Now()
	sent := make(chan error, 1)
	go func() {
		sent <- a.SendObject(context.Background(), idb, 1, []byte("meta"), int64(len(body)), bytes.NewReader(body))
	}()
	for i := range 100 {
		_ = b.Send(ida, []byte(fmt.Sprintf("r%d", i)))
	}
	s := <-hb.objs
	if err := <-s.done; err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if err := <-sent; err != nil {
		return fmt.Errorf("send object: %w", err)
	}
	el := time.Since(t0)
	if sha256.Sum256(s.buf.Bytes()) != sha256.Sum256(body) {
		return fmt.Errorf("object differs (%d bytes)", s.buf.Len())
	}
	for i := range 100 {
		if m := <-ha.msgs; string(m) != fmt.Sprintf("r%d", i) {
			return fmt.Errorf("reply %d arrived as %q", i, m)
		}
	}
	st := a.Stats()
	fmt.Printf("OK: %d messages in order, first after %v; %d-byte object in %v (%.1f MB/s); conns created %d\n",
		n, connected.Round(time.Millisecond), len(body), el.Round(time.Millisecond), float64(len(body))/el.Seconds()/1e6, st.ConnsCreated)
	return nil
}

func main() {
	var out strings.Builder
	if err := run(); err != nil {
		out.WriteString("FAIL: " + err.Error())
	} else {
		out.WriteString("PASS")
	}
	fmt.Println(out.String())
	js.Global().Call("report", out.String())
}

//go:build js

package rtc

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"syscall/js"

	"github.com/pion/webrtc/v4"
)

// newAPI: in the browser the SettingEngine has nothing to tune that we use;
// the browser's own SCTP stack decides windows and timers.
func newAPI(cfg *Config, log *slog.Logger, n *counters) (*webrtc.API, platform, error) {
	return webrtc.NewAPI(), platform{}, nil
}

// jsReader takes messages from the browser's onmessage event, copying each
// synchronously into a FIFO. pion's OnMessage (and its js Detach, built on
// it) start a goroutine per message, which does not guarantee order.
type jsReader struct {
	dc     js.Value
	fn     js.Func
	mu     sync.Mutex
	q      [][]byte
	queued int
	err    error
	limit  int // bytes queued at most: beyond, the peer ignored our credit
	closed bool
	wake   chan struct{}
}

// newReader installs the handler at once, before the channel opens, so no
// message is dispatched without it. The browser's data channel has no
// receive back-pressure: the transfer credit bounds what a well-behaved peer
// sends, and a peer that sends more than limit unread bytes is cut off.
func newReader(dc *webrtc.DataChannel, limit int) msgReader {
	r := &jsReader{dc: dc.JSValue(), wake: make(chan struct{}, 1), limit: limit}
	r.dc.Set("binaryType", "arraybuffer")
	r.fn = js.FuncOf(func(this js.Value, args []js.Value) any {
		data := args[0].Get("data")
		if data.Type() == js.TypeString {
			r.fail(errTextMessage)
			return nil
		}
		arr := js.Global().Get("Uint8Array").New(data)
		b := make([]byte, arr.Get("length").Int())
		js.CopyBytesToGo(b, arr)
		r.push(b)
		return nil
	})
	r.dc.Set("onmessage", r.fn)
	return r
}

func (r *jsReader) start() error { return nil }

func (r *jsReader) push(b []byte) {
	r.mu.Lock()
	if r.err == nil {
		if r.queued+len(b) > r.limit {
			r.err = errors.New("rtc: receive queue overflow")
		} else {
			r.q = append(r.q, b)
			r.queued += len(b)
		}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *jsReader) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *jsReader) ReadMsg(p []byte) (int, error) {
	for {
		r.mu.Lock()
		if len(r.q) > 0 {
			b := r.q[0]
			r.q[0] = nil
			r.q = r.q[1:]
			r.queued -= len(b)
			r.mu.Unlock()
			if len(b) > len(p) {
				return 0, io.ErrShortBuffer
			}
			return copy(p, b), nil
		}
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
		<-r.wake
	}
}

func (r *jsReader) Close() error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	if r.err == nil {
		r.err = io.EOF
	}
	r.mu.Unlock()
	if first {
		r.dc.Set("onmessage", js.Null())
		r.fn.Release()
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// closePC closes a peer connection: the browser's close is synchronous.
func closePC(pc *webrtc.PeerConnection) error { return pc.Close() }

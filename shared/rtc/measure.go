package rtc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/ids"
)

// LoopbackConfig is a Config for peers on one machine (127.0.0.1 only, UDP4).
func LoopbackConfig() Config {
	return Config{Native: Native{IncludeLoopback: true, LoopbackOnly: true, UDP4Only: true}}
}

// MeasureOptions says what MeasureTransfer does.
type MeasureOptions struct {
	Size int64 // object size in bytes
	Runs int
	// FreshConn makes every run on new managers (a new connection, SCTP slow
	// start included); otherwise all runs share one connection.
	FreshConn bool
	// WarmUp bytes are sent (unmeasured) on each new connection first.
	WarmUp int64
	// PingEvery sends a small control message from the sender every so often
	// during each transfer and records its latency (0: 2 ms; <0: none).
	PingEvery time.Duration
	// Config is used for both managers (LoopbackConfig if zero).
	Config *Config
}

// MeasureResult holds the figures of MeasureTransfer.
type MeasureResult struct {
	Size           int64     `json:"size"`
	RunsMBps       []float64 `json:"runs_mb_s"` // 10^6 bytes per second, per run
	MedianMBps     float64   `json:"median_mb_s"`
	MinMBps        float64   `json:"min_mb_s"`
	MaxMBps        float64   `json:"max_mb_s"`
	ConnectMs      float64   `json:"connect_ms"`        // first message over a new connection (median)
	PingMedianMs   float64   `json:"ping_median_ms"`    // control latency during transfers
	PingMaxMs      float64   `json:"ping_max_ms"`       //
	Pings          int       `json:"pings"`             //
	SCTPT3Timeouts uint64    `json:"sctp_t3_timeouts"`  // summed over closed associations
	SCTPFastRetx   uint64    `json:"sctp_fast_retrans"` //
	SocketBuffer   int       `json:"socket_buffer"`
	SCTPWindow     uint32    `json:"sctp_window"`
}

// MeasureTransfer runs object transfers between two managers of this process
// over real data channels, signalled in memory, and reports the throughput
// per run (from SendObject's start to the receiver's Sink.Close(nil)).
func MeasureTransfer(ctx context.Context, o MeasureOptions) (MeasureResult, error) {
	res := MeasureResult{Size: o.Size}
	if o.Size <= 0 || o.Runs <= 0 {
		return res, errors.New("rtc: measure: size and runs must be positive")
	}
	cfg := LoopbackConfig()
	if o.Config != nil {
		cfg = *o.Config
	}
	if o.PingEvery == 0 {
		o.PingEvery = 2 * time.Millisecond
	}
	var pair *measurePair
	var connects, pings []float64
	defer func() {
		if pair != nil {
			pair.close(nil)
		}
	}()
	for run := range o.Runs {
		if pair == nil || o.FreshConn {
			if pair != nil {
				pair.close(&res)
			}
			var err error
			var ms float64
			if pair, ms, err = newMeasurePair(ctx, cfg); err != nil {
				return res, err
			}
			connects = append(connects, ms)
			if o.WarmUp > 0 {
				if _, _, err := pair.run(ctx, 1<<62, o.WarmUp, -1); err != nil {
					return res, fmt.Errorf("rtc: measure warm-up: %w", err)
				}
			}
		}
		mbps, ps, err := pair.run(ctx, uint64(run+1), o.Size, o.PingEvery)
		if err != nil {
			return res, fmt.Errorf("rtc: measure run %d: %w", run, err)
		}
		res.RunsMBps = append(res.RunsMBps, mbps)
		pings = append(pings, ps...)
	}
	pair.close(&res)
	pair = nil
	s := slices.Sorted(slices.Values(res.RunsMBps))
	res.MinMBps, res.MaxMBps, res.MedianMBps = s[0], s[len(s)-1], median(s)
	res.ConnectMs = median(slices.Sorted(slices.Values(connects)))
	if len(pings) > 0 {
		slices.Sort(pings)
		res.PingMedianMs, res.PingMaxMs, res.Pings = median(pings), pings[len(pings)-1], len(pings)
	}
	return res, nil
}

func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

type measurePair struct {
	sig  *MemSignals
	a, b *Manager
	h    *measureHandler
}

func newMeasurePair(ctx context.Context, cfg Config) (*measurePair, float64, error) {
	var ida, idb ids.PeerID
	ida[0], idb[0] = 1, 2
	p := &measurePair{sig: NewMemSignals(0), h: &measureHandler{msgs: make(chan int64, 1024), done: make(chan error, 1)}}
	var err error
	if p.a, err = New(ida, p.sig.For(ida), discardHandler{}, cfg); err != nil {
		return nil, 0, err
	}
	if p.b, err = New(idb, p.sig.For(idb), p.h, cfg); err != nil {
		_ = p.a.Close()
		return nil, 0, err
	}
	p.sig.Attach(ida, p.a)
	p.sig.Attach(idb, p.b)
	start := time.Now()
	if err := p.a.Send(idb, []byte{0}); err != nil {
		p.close(nil)
		return nil, 0, err
	}
	select {
	case <-p.h.msgs:
	case <-ctx.Done():
		p.close(nil)
		return nil, 0, ctx.Err()
	case <-time.After(cfg.ConnectTimeout + 10*time.Second):
		p.close(nil)
		return nil, 0, ErrConnectTimeout
	}
	return p, float64(time.Since(start).Microseconds()) / 1000, nil
}

func (p *measurePair) close(res *MeasureResult) {
	if p.a == nil {
		return
	}
	defer func() { p.a = nil }()
	_ = p.a.Close()
	_ = p.b.Close()
	p.sig.Close()
	if res != nil {
		sa, sb := p.a.Stats(), p.b.Stats()
		res.SCTPT3Timeouts += sa.SCTPT3Timeouts + sb.SCTPT3Timeouts
		res.SCTPFastRetx += sa.SCTPFastRetrans + sb.SCTPFastRetrans
		res.SocketBuffer, res.SCTPWindow = sa.SocketBuffer, sa.SCTPWindow
	}
}

func (p *measurePair) run(ctx context.Context, qid uint64, size int64, every time.Duration) (float64, []float64, error) {
	idb := p.b.self
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_ = p.a.Send(idb, binary.BigEndian.AppendUint64([]byte{1}, uint64(time.Now().UnixNano())))
				}
			}
		}()
	}
	start := time.Now()
	err := p.a.SendObject(ctx, idb, qid, nil, size, zeroReader{})
	if err == nil {
		select {
		case err = <-p.h.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	el := time.Since(start)
	close(stop)
	wg.Wait()
	var pings []float64
	for {
		select {
		case ns := <-p.h.msgs:
			pings = append(pings, float64(ns)/1e6)
			continue
		default:
		}
		break
	}
	if err != nil {
		return 0, nil, err
	}
	return float64(size) / el.Seconds() / 1e6, pings, nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { return len(p), nil }

type discardHandler struct{}

func (discardHandler) Message(ids.PeerID, []byte) {}
func (discardHandler) Object(ids.PeerID, uint64, []byte, int64) (Sink, error) {
	return nil, errors.New("not receiving")
}
func (discardHandler) Down(ids.PeerID, error) {}

// measureHandler counts the body and times the pings.
type measureHandler struct {
	msgs chan int64 // ping latencies in ns (0 for the hello)
	done chan error
}

func (h *measureHandler) Message(_ ids.PeerID, b []byte) {
	var lat int64
	if len(b) == 9 && b[0] == 1 {
		lat = time.Now().UnixNano() - int64(binary.BigEndian.Uint64(b[1:]))
	}
	select {
	case h.msgs <- lat:
	default:
	}
}

func (h *measureHandler) Object(ids.PeerID, uint64, []byte, int64) (Sink, error) {
	return &countSink{h: h}, nil
}

func (h *measureHandler) Down(ids.PeerID, error) {}

type countSink struct{ h *measureHandler }

func (s *countSink) Write([]byte) error { return nil }
func (s *countSink) Close(err error)    { s.h.done <- err }

//go:build js && wasm

// Command browserbench measures object transfers between two rtc.Managers
// in two browser pages (two visitors, two processes). Each page runs one
// manager; they signal through a mailbox on the serving host
// (POST /mb/<room>/<to> with the raw payload; GET /mb/<room>/<me> long-polls
// and answers a JSON array of base64 payloads). The page's URL says
// ?me=1|2&room=<id>; peer 1 connects to peer 2.
//
// The page exposes window.bench: bench.state ("ready" once the connection
// carried a message both ways) and bench.run(specJSON), a Promise of the
// result JSON (see spec and result). tests/browser/rtcbench_test.go drives
// it; docs/transport.md gives the command.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"syscall/js"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/rtc"
)

// spec is one measurement: for each size, Seq objects one after another
// (each waits for the previous one's arrival) and Par objects at once.
type spec struct {
	Sizes []int `json:"sizes"`
	Seq   int   `json:"seq"`
	Par   int   `json:"par"`
	Hash  bool  `json:"hash"` // the receiving Sink hashes (SHA-256), as the peer host does
}

// xfer is one transfer as the receiver saw it, in ms since the sender's
// SendObject call (clocks: performance.timeOrigin+now, one machine).
type xfer struct {
	Size int     `json:"size"`
	TTFB float64 `json:"ttfb"` // the start frame reached Handler.Object
	Done float64 `json:"done"` // the Sink closed with nil
	Err  string  `json:"err,omitempty"`
}

type group struct {
	Size  int     `json:"size"`
	Mode  string  `json:"mode"` // "seq" or "par"
	MBps  float64 `json:"mbps"` // bytes / (last done - first send), 10^6 B/s
	Xfers []xfer  `json:"xfers"`
}

type peer struct {
	self, other ids.PeerID
	room        string
	m           *rtc.Manager
	out         chan []byte // signals to send, in order

	mu      sync.Mutex
	waiting map[uint64]chan xfer // sender: qid -> the receiver's report
	hash    bool                 // receiver: hash in the Sink
	ready   bool
	pong    chan struct{}
}

func now() float64 {
	p := js.Global().Get("performance")
	return p.Get("timeOrigin").Float() + p.Call("now").Float()
}

func (p *peer) Signal(to ids.PeerID, payload []byte) error {
	select {
	case p.out <- append([]byte(nil), payload...):
		return nil
	default:
		return fmt.Errorf("browserbench: signal queue full")
	}
}

func (p *peer) sendSignals() {
	for b := range p.out {
		resp, err := http.Post("/mb/"+p.room+"/"+p.other.Short(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			fmt.Println("browserbench: signal:", err)
			continue
		}
		_ = resp.Body.Close()
	}
}

func (p *peer) pollSignals() {
	for {
		resp, err := http.Get("/mb/" + p.room + "/" + p.self.Short())
		if err != nil {
			fmt.Println("browserbench: poll:", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var msgs [][]byte
		err = json.NewDecoder(resp.Body).Decode(&msgs)
		_ = resp.Body.Close()
		if err != nil {
			fmt.Println("browserbench: poll:", err)
			continue
		}
		for _, b := range msgs {
			p.m.HandleSignal(p.other, b)
		}
	}
}

// Messages: "hello" (either way), or a report: qid u64, ttfb f64, done f64, err.
func (p *peer) Message(from ids.PeerID, b []byte) {
	if string(b) == "ping" {
		_ = p.m.Send(p.other, []byte("pong"))
		return
	}
	if string(b) == "pong" {
		p.pong <- struct{}{}
		return
	}
	if string(b) == "hello" {
		p.mu.Lock()
		was := p.ready
		p.ready = true
		p.mu.Unlock()
		if !was {
			_ = p.m.Send(p.other, []byte("hello"))
			js.Global().Get("bench").Set("state", "ready")
		}
		return
	}
	if len(b) < 24 {
		return
	}
	qid := binary.BigEndian.Uint64(b)
	x := xfer{TTFB: math.Float64frombits(binary.BigEndian.Uint64(b[8:])), Done: math.Float64frombits(binary.BigEndian.Uint64(b[16:])), Err: string(b[24:])}
	p.mu.Lock()
	ch := p.waiting[qid]
	delete(p.waiting, qid)
	p.mu.Unlock()
	if ch != nil {
		ch <- x
	}
}

// meta: t0 (f64 ms), hash flag.
func (p *peer) Object(from ids.PeerID, qid uint64, meta []byte, size int64) (rtc.Sink, error) {
	t := now()
	if len(meta) != 9 {
		return nil, fmt.Errorf("browserbench: meta of %d bytes", len(meta))
	}
	t0 := math.Float64frombits(binary.BigEndian.Uint64(meta))
	s := &sink{p: p, qid: qid, t0: t0, ttfb: t - t0}
	if meta[8] == 1 {
		s.h = sha256.New()
	}
	return s, nil
}

func (p *peer) Down(peer ids.PeerID, err error) { fmt.Println("browserbench: down", peer.Short(), err) }

type sink struct {
	p        *peer
	qid      uint64
	t0, ttfb float64
	h        interface{ Write([]byte) (int, error) }
	n        int
}

func (s *sink) Write(b []byte) error {
	if s.h != nil {
		_, _ = s.h.Write(b)
	}
	s.n += len(b)
	return nil
}

func (s *sink) Close(err error) {
	done := now() - s.t0
	msg := make([]byte, 24, 64)
	binary.BigEndian.PutUint64(msg, s.qid)
	binary.BigEndian.PutUint64(msg[8:], math.Float64bits(s.ttfb))
	binary.BigEndian.PutUint64(msg[16:], math.Float64bits(done))
	if err != nil {
		msg = append(msg, err.Error()...)
	}
	if e := s.p.m.Send(s.p.other, msg); e != nil {
		fmt.Println("browserbench: report:", e)
	}
}

var nextQID uint64 = 1

// send starts one object and returns the channel its report arrives on.
func (p *peer) send(size int, hash bool, body []byte, t0 float64) (chan xfer, chan error) {
	qid := nextQID
	nextQID++
	ch := make(chan xfer, 1)
	p.mu.Lock()
	p.waiting[qid] = ch
	p.mu.Unlock()
	meta := make([]byte, 9)
	binary.BigEndian.PutUint64(meta, math.Float64bits(t0))
	if hash {
		meta[8] = 1
	}
	errc := make(chan error, 1)
	go func() {
		errc <- p.m.SendObject(context.Background(), p.other, qid, meta, int64(size), bytes.NewReader(body[:size]))
	}()
	return ch, errc
}

func (p *peer) run(sp spec) ([]group, error) {
	maxSize := 0
	for _, s := range sp.Sizes {
		maxSize = max(maxSize, s)
	}
	body := make([]byte, maxSize)
	for i := range body {
		body[i] = byte(i*7 + i>>13)
	}
	var out []group
	wait := func(ch chan xfer, errc chan error) (xfer, error) {
		if err := <-errc; err != nil {
			return xfer{}, err
		}
		select {
		case x := <-ch:
			return x, nil
		case <-time.After(30 * time.Second):
			return xfer{}, fmt.Errorf("no report after 30 s")
		}
	}
	for _, size := range sp.Sizes {
		if sp.Seq > 0 {
			g := group{Size: size, Mode: "seq"}
			start := now()
			for range sp.Seq {
				ch, errc := p.send(size, sp.Hash, body, now())
				x, err := wait(ch, errc)
				if err != nil {
					return out, fmt.Errorf("seq %d: %w", size, err)
				}
				x.Size = size
				g.Xfers = append(g.Xfers, x)
			}
			g.MBps = float64(size*sp.Seq) / (now() - start) / 1e3
			out = append(out, g)
		}
		if sp.Par > 0 {
			g := group{Size: size, Mode: "par"}
			start := now()
			chs := make([]chan xfer, sp.Par)
			errs := make([]chan error, sp.Par)
			for i := range sp.Par {
				chs[i], errs[i] = p.send(size, sp.Hash, body, start)
			}
			last := 0.0
			for i := range sp.Par {
				x, err := wait(chs[i], errs[i])
				if err != nil {
					return out, fmt.Errorf("par %d: %w", size, err)
				}
				x.Size = size
				last = max(last, x.Done)
				g.Xfers = append(g.Xfers, x)
			}
			g.MBps = float64(size*sp.Par) / last / 1e3
			out = append(out, g)
		}
	}
	return out, nil
}

func main() {
	q := js.Global().Get("URLSearchParams").New(js.Global().Get("location").Get("search"))
	me := q.Call("get", "me").String()
	var a, b ids.PeerID
	a[0], b[0] = 1, 2
	p := &peer{room: q.Call("get", "room").String(), out: make(chan []byte, 256), waiting: map[uint64]chan xfer{}, pong: make(chan struct{}, 1)}
	if me == "1" {
		p.self, p.other = a, b
	} else {
		p.self, p.other = b, a
	}
	bench := js.Global().Get("Object").New()
	bench.Set("state", "starting")
	js.Global().Set("bench", bench)
	m, err := rtc.New(p.self, p, p, rtc.Config{})
	if err != nil {
		bench.Set("state", "failed: "+err.Error())
		return
	}
	p.m = m
	go p.sendSignals()
	go p.pollSignals()
	bench.Set("run", js.FuncOf(func(this js.Value, args []js.Value) any {
		var sp spec
		err := json.Unmarshal([]byte(args[0].String()), &sp)
		return js.Global().Get("Promise").New(js.FuncOf(func(this js.Value, pa []js.Value) any {
			resolve, reject := pa[0], pa[1]
			go func() {
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				gs, err := p.run(sp)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				b, _ := json.Marshal(gs)
				resolve.Invoke(string(b))
			}()
			return nil
		}))
	}))
	// bench.ping(n): the median round trip of n core messages, in ms.
	bench.Set("ping", js.FuncOf(func(this js.Value, args []js.Value) any {
		n := args[0].Int()
		return js.Global().Get("Promise").New(js.FuncOf(func(this js.Value, pa []js.Value) any {
			go func() {
				var rtts []float64
				for range n {
					t := now()
					_ = m.Send(p.other, []byte("ping"))
					<-p.pong
					rtts = append(rtts, now()-t)
				}
				slices.Sort(rtts)
				pa[0].Invoke(rtts[len(rtts)/2])
			}()
			return nil
		}))
	}))
	if me == "1" {
		go func() {
			for {
				p.mu.Lock()
				r := p.ready
				p.mu.Unlock()
				if r {
					return
				}
				_ = m.Send(p.other, []byte("hello"))
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	select {}
}

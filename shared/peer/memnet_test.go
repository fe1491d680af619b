package peer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
)

// memHub is an in-memory network between peers in one test process: the
// unit tests' stand-in for WebRTC (tests/p2p runs the real transport). It
// can corrupt the bodies one peer sends, or slow them down.
type memHub struct {
	mu      sync.Mutex
	nets    map[ids.PeerID]*memNet
	corrupt map[ids.PeerID]bool
	slow    map[ids.PeerID]time.Duration // a pause before each chunk the peer sends
}

func newHub() *memHub {
	return &memHub{nets: make(map[ids.PeerID]*memNet), corrupt: make(map[ids.PeerID]bool), slow: make(map[ids.PeerID]time.Duration)}
}

func (h *memHub) factory() peer.NewNet {
	return func(self ids.PeerID, _ peer.Signaller, hd peer.NetHandler) (peer.Net, error) {
		n := &memNet{hub: h, self: self, h: hd}
		h.mu.Lock()
		h.nets[self] = n
		h.mu.Unlock()
		return n, nil
	}
}

func (h *memHub) get(id ids.PeerID) *memNet {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nets[id]
}

type memNet struct {
	hub  *memHub
	self ids.PeerID
	h    peer.NetHandler
}

var errGone = errors.New("memnet: peer gone")

func (n *memNet) Send(to ids.PeerID, frame []byte) error {
	t := n.hub.get(to)
	if t == nil {
		go n.h.Down(to, errGone)
		return nil
	}
	go t.h.Message(n.self, frame)
	return nil
}

func (n *memNet) SendObject(ctx context.Context, to ids.PeerID, qid uint64, meta []byte, size int64, body io.Reader) error {
	t := n.hub.get(to)
	if t == nil {
		return errGone
	}
	// Like rtc, the buffers handed over are valid only during the call.
	m := bytes.Clone(meta)
	sink, err := t.h.Object(n.self, qid, m, size)
	clear(m)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(body)
	if err != nil {
		sink.Close(err)
		return err
	}
	n.hub.mu.Lock()
	if n.hub.corrupt[n.self] && len(b) > 0 {
		b = bytes.Clone(b)
		b[0] ^= 0xff
	}
	pause := n.hub.slow[n.self]
	n.hub.mu.Unlock()
	for len(b) > 0 {
		time.Sleep(pause)
		c := bytes.Clone(b[:min(len(b), 64<<10)])
		b = b[len(c):]
		err := sink.Write(c)
		clear(c)
		if err != nil {
			sink.Close(err)
			return err
		}
	}
	sink.Close(nil)
	return nil
}

func (n *memNet) Cancel(ids.PeerID, uint64)       {}
func (n *memNet) HandleSignal(ids.PeerID, []byte) {}
func (n *memNet) SignalFailed(ids.PeerID, error)  {}
func (n *memNet) Close() error {
	n.hub.mu.Lock()
	delete(n.hub.nets, n.self)
	n.hub.mu.Unlock()
	return nil
}

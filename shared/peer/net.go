package peer

import (
	"context"
	"io"

	"github.com/flowercdn/flower/shared/ids"
)

// Signaller relays opaque WebRTC signalling payloads through the bootstrap
// service (the peer's bootstrap session implements it).
type Signaller interface {
	Signal(to ids.PeerID, payload []byte) error
}

// Sink receives the body of one object a peer sends (see rtc.Sink).
type Sink interface {
	Write(chunk []byte) error
	Close(err error)
}

// NetHandler is what the connection manager reports to the peer (see
// rtc.Handler).
type NetHandler interface {
	Message(from ids.PeerID, frame []byte)
	Object(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error)
	Down(peer ids.PeerID, err error)
}

// Net is the connection manager between peers (rtc.Manager, over WebRTC
// data channels).
type Net interface {
	Send(to ids.PeerID, frame []byte) error
	SendObject(ctx context.Context, to ids.PeerID, qid uint64, meta []byte, size int64, body io.Reader) error
	Cancel(from ids.PeerID, qid uint64)
	HandleSignal(from ids.PeerID, payload []byte)
	SignalFailed(to ids.PeerID, err error)
	Close() error
}

// NewNet builds the connection manager of peer self.
type NewNet func(self ids.PeerID, sig Signaller, h NetHandler) (Net, error)

package peer

import (
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/rtc"
)

// RTC is the production connection manager: WebRTC data channels
// (shared/rtc) signalled through the peer's bootstrap session.
func RTC(cfg rtc.Config) NewNet {
	return func(self ids.PeerID, sig Signaller, h NetHandler) (Net, error) {
		return rtc.New(self, sig, rtcHandler{h}, cfg)
	}
}

// rtcHandler gives the manager the peer's handler with rtc's Sink type.
type rtcHandler struct{ h NetHandler }

func (r rtcHandler) Message(from ids.PeerID, frame []byte) { r.h.Message(from, frame) }
func (r rtcHandler) Down(peer ids.PeerID, err error)       { r.h.Down(peer, err) }
func (r rtcHandler) Object(from ids.PeerID, qid uint64, meta []byte, size int64) (rtc.Sink, error) {
	s, err := r.h.Object(from, qid, meta, size)
	if err != nil {
		return nil, err
	}
	return s, nil
}

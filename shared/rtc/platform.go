package rtc

import "errors"

// platform records what the native tuning obtained (zero in the browser).
type platform struct {
	socketBuffer int    // UDP receive buffer granted per ICE socket
	sctpWindow   uint32 // SCTP receive window configured
}

// msgReader yields the messages of one data channel strictly in order.
type msgReader interface {
	// start is called when the channel opens.
	start() error
	// ReadMsg reads one whole message into p (io.ErrShortBuffer if it does
	// not fit; errTextMessage for a text message).
	ReadMsg(p []byte) (int, error)
	Close() error
}

var errTextMessage = errors.New("rtc: text message on a binary channel")

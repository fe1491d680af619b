// Package rtc is Flower-CDN's WebRTC transport: a connection manager that
// carries core protocol messages and object transfers between peers over
// pion/webrtc data channels, signalled through the bootstrap service. It
// builds natively and for GOOS=js GOARCH=wasm (where pion wraps the browser's
// RTCPeerConnection). docs/transport.md describes the formats and the tuning.
package rtc

import (
	"errors"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/flowercdn/flower/shared/ids"
)

// Signaller relays signalling payloads through the bootstrap service.
type Signaller interface {
	// Signal sends payload (<= MaxSignalSize bytes) to peer `to` through the
	// bootstrap service. It must not block long.
	Signal(to ids.PeerID, payload []byte) error
}

// Handler receives what peers send. It is called from the manager's
// goroutines and must not block long.
type Handler interface {
	// Message delivers one core message, in the order the peer sent them.
	// frame is only valid during the call.
	Message(from ids.PeerID, frame []byte)
	// Object announces an incoming object for query qid: meta is the opaque
	// header (<= MaxMetaSize), size the body length. An error refuses it
	// (the sender is told). meta is only valid during the call.
	Object(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error)
	// Down reports a connection that failed, closed or never came up. The
	// open Sinks of that peer are closed with an error first.
	Down(peer ids.PeerID, err error)
}

// Sink takes the body of one incoming object.
type Sink interface {
	// Write takes the next body chunk, in order; chunk is only valid during
	// the call. An error cancels the transfer (the sender is told), and
	// Close(err) follows.
	Write(chunk []byte) error
	// Close ends the transfer, exactly once: nil when all size bytes arrived,
	// else why it was aborted.
	Close(err error)
}

// Errors reported through Down, Sink.Close and the sending calls; test with
// errors.Is.
var (
	ErrClosed         = errors.New("rtc: manager closed")
	ErrConnectTimeout = errors.New("rtc: connection attempt timed out")
	ErrUnreachable    = errors.New("rtc: peer unreachable through the bootstrap")
	ErrRefused        = errors.New("rtc: peer refused the connection")
	ErrBudget         = errors.New("rtc: connection budget exhausted")
	ErrQueueFull      = errors.New("rtc: send queue full")
	ErrIdle           = errors.New("rtc: connection closed after idling")
	ErrEvicted        = errors.New("rtc: connection evicted for the budget")
	ErrReplaced       = errors.New("rtc: connection replaced by a new session")
	ErrConnLost       = errors.New("rtc: connection lost")
	ErrProtocol       = errors.New("rtc: peer violated the protocol")
	ErrCancelled      = errors.New("rtc: transfer cancelled")
	ErrStalled        = errors.New("rtc: transfer stalled")
	ErrShortBody      = errors.New("rtc: body shorter than its announced size")
	ErrBusy           = errors.New("rtc: transfer id already in use")
)

// Config tunes a Manager. Zero fields take the defaults below.
type Config struct {
	// ICEServers are STUN/TURN servers (default none: host candidates only).
	ICEServers []webrtc.ICEServer
	// ConnectTimeout bounds a connection attempt, signalling to open data
	// channels (default 10 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection that carried nothing for that long
	// (default 2 min).
	IdleTimeout time.Duration
	// StallTimeout aborts an incoming transfer that made no progress for that
	// long (default 5 s).
	StallTimeout time.Duration
	// MaxConns bounds the connections open or opening at once (default 64;
	// browsers allow about 500 RTCPeerConnections per page lifetime).
	MaxConns int
	// MaxQueued bounds the messages queued for a peer while connecting
	// (default 64).
	MaxQueued int
	// ChunkSize is the object body chunk size (default and max 64 KiB).
	ChunkSize int
	// HighWater: a sender waits while the object channel has more than this
	// buffered (default 1 MiB); LowWater is where it resumes (default
	// HighWater/2).
	HighWater, LowWater uint64
	// MaxCtlBuffered: Send fails while the control channel has more than this
	// buffered (default 4 MiB), so a peer that stops reading cannot make us
	// grow memory without bound.
	MaxCtlBuffered uint64
	// ReceiveWindow is how many body bytes of one incoming transfer may be
	// in flight beyond what its Sink took (default 1 MiB): the receiver
	// grants credit as the Sink consumes, so a slow Sink slows the sender
	// instead of filling memory (the browser's data channel has no receive
	// back-pressure of its own).
	ReceiveWindow int64
	// Native holds tuning that applies only outside the browser.
	Native Native
	// Logger receives the manager's logs (default: discarded).
	Logger *slog.Logger
}

// Native is tuning for native builds; the browser's own stack decides there.
type Native struct {
	// IncludeLoopback gathers 127.0.0.1 candidates (tests on one machine).
	IncludeLoopback bool
	// LoopbackOnly restricts gathering to the loopback interface.
	LoopbackOnly bool
	// UDP4Only restricts candidates to UDP over IPv4.
	UDP4Only bool
	// SocketBuffer is the UDP receive and send buffer asked of the kernel
	// per ICE socket (default 8 MiB; SO_RCVBUFFORCE is tried first, so root
	// gets it beyond net.core.rmem_max). -1 keeps the kernel default.
	SocketBuffer int
	// SCTPReceiveBuffer is the SCTP receive window; 0 sizes it from the
	// socket buffer actually granted (at most 1 MiB), so that a full window
	// of datagrams fits in the socket.
	SCTPReceiveBuffer uint32
	// SCTPRTOMax caps the SCTP retransmission timeout (0: pion's 60 s).
	// pion's RTO floor is 1 s; a cap below it lowers the timeout itself.
	SCTPRTOMax time.Duration
}

func (c *Config) fill() error {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 5 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 64
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 64
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = MaxChunkSize
	}
	if c.ChunkSize > MaxChunkSize {
		return errors.New("rtc: ChunkSize above 64 KiB")
	}
	if c.HighWater == 0 {
		c.HighWater = 1 << 20
	}
	if c.LowWater == 0 || c.LowWater >= c.HighWater {
		c.LowWater = c.HighWater / 2
	}
	if c.MaxCtlBuffered == 0 {
		c.MaxCtlBuffered = 4 << 20
	}
	if c.ReceiveWindow < initialCredit {
		c.ReceiveWindow = 1 << 20
	}
	if c.Native.SocketBuffer == 0 {
		c.Native.SocketBuffer = 8 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats are counters since New. Conns* count PeerConnections.
type Stats struct {
	ConnsOpen       int    // open now
	ConnsConnecting int    // being set up now
	ConnsCreated    uint64 // PeerConnections ever created (the browser's lifetime budget)
	ConnsOpened     uint64 // connections that came up
	ConnsFailed     uint64 // attempts that never came up
	ConnsEvicted    uint64 // closed to make room
	ConnsIdleClosed uint64 // closed after IdleTimeout
	GlareYields     uint64 // own offers abandoned for the peer's (glare rule)
	ProtocolErrors  uint64 // peers disconnected for malformed or unexpected frames
	MsgsSent        uint64
	MsgsReceived    uint64
	MsgsDropped     uint64 // Send refused (queue full, budget, buffer)
	BytesSent       uint64 // frame bytes handed to data channels
	BytesReceived   uint64 // frame bytes read from data channels
	TransfersSent   uint64 // SendObject calls that handed over every byte
	TransfersRecv   uint64 // incoming transfers completed (Sink closed with nil)
	TransfersFailed uint64 // transfers either way that ended with an error
	Stalls          uint64 // incoming transfers aborted for StallTimeout
	SCTPT3Timeouts  uint64 // SCTP retransmission timeouts of closed associations (native, from pion's counters)
	SCTPFastRetrans uint64 // SCTP fast retransmissions of closed associations (native)
	SocketBuffer    int    // UDP receive buffer granted by the kernel (native; 0 unknown)
	SCTPWindow      uint32 // SCTP receive window in use (native)
}

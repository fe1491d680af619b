//go:build !js

package rtc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/pion/datachannel"
	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

const (
	// sctpMaxMessage is the largest data-channel message we accept: a full
	// chunk and its header (browsers accept 256 KiB).
	sctpMaxMessage = 128 << 10
	// defaultSCTPWindow is pion's default receive window.
	defaultSCTPWindow = 1 << 20
)

// newAPI builds the pion API with the native tuning: detached channels,
// larger UDP socket buffers, an SCTP window the socket can hold (see
// docs/transport.md, "Stalls").
func newAPI(cfg *Config, log *slog.Logger, n *counters) (*webrtc.API, platform, error) {
	var se webrtc.SettingEngine
	var p platform
	se.DetachDataChannels()
	se.SetSCTPMaxMessageSize(sctpMaxMessage)
	se.LoggerFactory = pionLogs{log: log, n: n}
	nc := cfg.Native
	if nc.IncludeLoopback {
		se.SetIncludeLoopbackCandidate(true)
	}
	if nc.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if nc.UDP4Only {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if nc.SocketBuffer > 0 {
		std, err := stdnet.NewNet()
		if err != nil {
			return nil, p, fmt.Errorf("net: %w", err)
		}
		se.SetNet(&bufNet{Net: std, size: nc.SocketBuffer, log: log})
		p.socketBuffer = probeSocketBuffer(nc.SocketBuffer)
	}
	p.sctpWindow = nc.SCTPReceiveBuffer
	if p.sctpWindow == 0 {
		p.sctpWindow = windowFor(p.socketBuffer)
	}
	se.SetSCTPMaxReceiveBufferSize(p.sctpWindow)
	if nc.SCTPRTOMax > 0 {
		se.SetSCTPRTOMax(nc.SCTPRTOMax)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)), p, nil
}

// windowFor sizes the SCTP receive window so that a full window of
// datagrams fits in the socket buffer: on Linux a 1.2 kB datagram costs 2.3
// to 4.4 kB of the buffer (skb truesize), which the reported size is compared
// against, so a quarter of it keeps a window of datagrams within it.
func windowFor(granted int) uint32 {
	if granted <= 0 {
		return defaultSCTPWindow
	}
	w := uint32(min(granted/4, defaultSCTPWindow))
	return max(w, 32<<10)
}

// bufNet is pion's standard network with bigger UDP socket buffers.
type bufNet struct {
	*stdnet.Net
	size int
	log  *slog.Logger
	once sync.Once
}

func (b *bufNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := b.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if uc, ok := c.(*net.UDPConn); ok {
		if got, err := setSocketBuffer(uc, b.size); err != nil {
			b.once.Do(func() { b.log.Warn("UDP socket buffer", "want", b.size, "got", got, "err", err) })
		}
	}
	return c, nil
}

func probeSocketBuffer(size int) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0
	}
	defer c.Close()
	got, _ := setSocketBuffer(c, size)
	return got
}

// nativeReader reads a detached pion data channel (ordered by pion).
type nativeReader struct {
	dc *webrtc.DataChannel
	mu sync.Mutex
	rw datachannel.ReadWriteCloser
	// closed before start: start fails
	closed bool
}

// newReader: pion's SCTP window bounds what is buffered natively; limit is
// for the browser.
func newReader(dc *webrtc.DataChannel, limit int) msgReader { return &nativeReader{dc: dc} }

func (r *nativeReader) start() error {
	rw, err := r.dc.Detach()
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = rw.Close()
		return errors.New("reader closed")
	}
	r.rw = rw
	return nil
}

func (r *nativeReader) ReadMsg(p []byte) (int, error) {
	r.mu.Lock()
	rw := r.rw
	r.mu.Unlock()
	if rw == nil {
		return 0, io.ErrClosedPipe
	}
	n, isString, err := rw.ReadDataChannel(p)
	if err != nil {
		return 0, err
	}
	if isString {
		return 0, errTextMessage
	}
	return n, nil
}

func (r *nativeReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.rw != nil {
		return r.rw.Close()
	}
	return nil
}

// pionLogs sends pion's logs to slog (warnings and errors; the rest at
// debug) and counts the SCTP retransmission figures pion logs when an
// association closes.
type pionLogs struct {
	log *slog.Logger
	n   *counters
}

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLog{log: f.log.With("pion", scope), n: f.n, sctp: scope == "sctp"}
}

type pionLog struct {
	log  *slog.Logger
	n    *counters
	sctp bool
}

func (l pionLog) Trace(string)          {}
func (l pionLog) Tracef(string, ...any) {}
func (l pionLog) Debug(msg string)      { l.log.Debug(msg) }
func (l pionLog) Debugf(format string, args ...any) {
	if l.sctp && strings.Contains(format, "stats n") && len(args) == 2 {
		if v, ok := args[1].(uint64); ok {
			switch {
			case strings.Contains(format, "nT3Timeouts"):
				l.n.sctpT3.Add(v)
			case strings.Contains(format, "nFastRetrans"):
				l.n.sctpFastRtx.Add(v)
			}
		}
	}
	if l.log.Enabled(nil, slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}
func (l pionLog) Info(msg string)                   { l.log.Debug(msg) }
func (l pionLog) Infof(format string, args ...any)  { l.Debugf(format, args...) }
func (l pionLog) Warn(msg string)                   { l.log.Info(msg) }
func (l pionLog) Warnf(format string, args ...any)  { l.log.Info(fmt.Sprintf(format, args...)) }
func (l pionLog) Error(msg string)                  { l.log.Error(msg) }
func (l pionLog) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }

// closePC closes a peer connection and waits for pion's goroutines (its
// ICE agent, DTLS and SCTP loops), so that Manager.Close returns with
// nothing of the connection still running.
func closePC(pc *webrtc.PeerConnection) error { return pc.GracefulClose() }

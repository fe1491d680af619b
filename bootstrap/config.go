// Package bootstrap is the Flower-CDN bootstrap service: a WebSocket endpoint
// where peers prove their id, declare the websites they serve, receive random
// directory-peer entry points and relay WebRTC signalling to each other; plus
// landmark and probe endpoints for locality detection. Several instances become
// one service through NATS (see cluster.go); without NATS a single process
// needs nothing else.
package bootstrap

import (
	"log/slog"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
)

// Config is the service configuration. Zero fields take the DefaultConfig
// value in New.
type Config struct {
	// AllowedOrigins lists the website origins (scheme://host[:port]) that may
	// use this service: their pages may open the WebSocket and call the HTTP
	// endpoints (CORS), and peers may register only these sites. "*" allows
	// every origin and site (development).
	AllowedOrigins []string
	// PublicNames are the host[:port] names clients dial this service by (as
	// in their WebSocket URL). A peer's Hello signature must be made over one
	// of them, never over the Host header the client sent, so that a hostile
	// service cannot relay this service's challenge to a victim and present
	// the victim's answer. Empty: Run derives them from its listeners when all
	// are loopback (127.0.0.1:PORT, localhost:PORT), else Run fails.
	PublicNames []string
	// Landmarks are the landmark URLs peers time to find their locality.
	Landmarks []string
	// Localities is k: localities are in [0, k).
	Localities int
	// InstanceBits is the number of PetalUp instance bits of the D-ring key
	// layout (keymgr.NewLayout(Localities, InstanceBits)); directory peers
	// register keys of that layout and the Challenge frame announces it.
	// nil takes the protocol core's default, 3; 0 is valid (one instance).
	InstanceBits *int
	// MaxPeers is the most connected peers this instance accepts.
	MaxPeers int
	// MaxFrame is the largest frame accepted from a peer (<= frame.MaxFrame).
	MaxFrame int
	// PeerRate and PeerBurst limit the frames one peer may send (per second).
	PeerRate  float64
	PeerBurst int
	// IPConnRate and IPConnBurst limit new connections and HTTP API requests
	// per client IP (per second); 0 disables. MaxPeersPerIP caps concurrent
	// peers per IP; 0 disables.
	IPConnRate    float64
	IPConnBurst   int
	MaxPeersPerIP int
	// SendQueue (frames) and SendQueueBytes bound what waits to be written to
	// one peer. Signals relayed from other peers may fill three quarters of
	// it, one sender an eighth of the bytes (at least one largest frame) and
	// half of the frames; a signal that
	// does not fit is refused and its sender gets a target_busy error, so
	// traffic others send never costs a peer its connection. The peer's own
	// answers (pongs, entries, errors) overflowing the queue drop it as a slow
	// reader, and so does a write stuck past WriteTimeout.
	SendQueue      int
	SendQueueBytes int
	// EntryMax caps n, the random D-ring members of an entry-point answer
	// (at most frame.MaxRandom).
	EntryMax int
	// PingInterval is how often a peer must send a Ping frame when it has
	// nothing else to send (the Welcome frame tells it); IdleTimeout: a peer
	// silent that long is disconnected.
	PingInterval time.Duration
	IdleTimeout  time.Duration
	// WriteTimeout bounds one write to a peer; HandshakeTimeout bounds the
	// challenge/hello exchange; ShutdownTimeout bounds graceful shutdown.
	WriteTimeout     time.Duration
	HandshakeTimeout time.Duration
	ShutdownTimeout  time.Duration
	// ReadBuffer and WriteBuffer are the per-connection bufio sizes (bytes).
	ReadBuffer  int
	WriteBuffer int
	// Alternates are WebSocket URLs of other instances, sent to peers in the
	// GoAway frame at shutdown so they reconnect elsewhere.
	Alternates []string
	// NATSURL, when set, joins this instance to the others on that NATS
	// server; Subject prefixes every subject used.
	NATSURL string
	Subject string
	// DirSnapshot is how often this instance republishes its directory peers
	// over NATS; remote entries expire after three periods without refresh.
	DirSnapshot time.Duration
	// Poller waits for data on idle peers with one epoll set (Linux) instead
	// of one parked goroutine per peer: the biggest memory saving per peer.
	Poller bool
	// Pprof serves net/http/pprof under /debug/pprof/ (for operators
	// measuring memory; keep it off on public listeners).
	Pprof bool
	// ReportInterval is the least time between two counter reports of one
	// connection (docs/operator-metrics.md): a report sooner than that (a
	// burst of two is allowed, so that a peer's last report as it leaves
	// fits) is refused and counts nothing.
	ReportInterval time.Duration
	// ReportSites caps the distinct sites whose counters the service keeps
	// (reported here or by other instances); a report for a site beyond it
	// is refused.
	ReportSites int
	// SampleInterval is how often the operator page's time series takes a
	// sample (it keeps SeriesLen of them).
	SampleInterval time.Duration
	// OperatorToken, when set, serves the operator page /dashboard to
	// whoever presents it (Authorization: Bearer, or ?token= once, which
	// sets a cookie). Empty: no operator page.
	OperatorToken string
	// Logger receives the service's logs.
	Logger *slog.Logger
}

// DefaultInstanceBits is the protocol core's default number of PetalUp
// instance bits (core.Config.InstanceBits).
const DefaultInstanceBits = 3

// DefaultConfig returns the defaults used for zero fields.
func DefaultConfig() Config {
	return Config{
		AllowedOrigins:   nil,
		Localities:       6, // PROTOCOL.md: k = 6
		InstanceBits:     new(DefaultInstanceBits),
		MaxPeers:         100_000,
		MaxFrame:         frame.MaxFrame,
		PeerRate:         50,
		PeerBurst:        100,
		IPConnRate:       20,
		IPConnBurst:      100,
		MaxPeersPerIP:    1000,
		SendQueue:        128,
		SendQueueBytes:   256 << 10,
		EntryMax:         frame.MaxRandom,
		PingInterval:     30 * time.Second,
		IdleTimeout:      90 * time.Second,
		WriteTimeout:     10 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		ShutdownTimeout:  10 * time.Second,
		ReadBuffer:       256,
		WriteBuffer:      512,
		Subject:          "flower",
		DirSnapshot:      5 * time.Second,
		Poller:           true,
		ReportInterval:   10 * time.Second,
		ReportSites:      1000,
		SampleInterval:   10 * time.Second,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	setI := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setI(&c.Localities, d.Localities)
	if c.InstanceBits == nil {
		c.InstanceBits = new(DefaultInstanceBits)
	}
	setI(&c.MaxPeers, d.MaxPeers)
	setI(&c.MaxFrame, d.MaxFrame)
	if c.PeerRate == 0 {
		c.PeerRate = d.PeerRate
	}
	setI(&c.PeerBurst, d.PeerBurst)
	setI(&c.SendQueue, d.SendQueue)
	setI(&c.SendQueueBytes, d.SendQueueBytes)
	setI(&c.EntryMax, d.EntryMax)
	setD(&c.PingInterval, d.PingInterval)
	setD(&c.IdleTimeout, d.IdleTimeout)
	setD(&c.WriteTimeout, d.WriteTimeout)
	setD(&c.HandshakeTimeout, d.HandshakeTimeout)
	setD(&c.ShutdownTimeout, d.ShutdownTimeout)
	setI(&c.ReadBuffer, d.ReadBuffer)
	setI(&c.WriteBuffer, d.WriteBuffer)
	if c.Subject == "" {
		c.Subject = d.Subject
	}
	setD(&c.DirSnapshot, d.DirSnapshot)
	setD(&c.ReportInterval, d.ReportInterval)
	setI(&c.ReportSites, d.ReportSites)
	setD(&c.SampleInterval, d.SampleInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

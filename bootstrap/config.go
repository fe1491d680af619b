// Package bootstrap is the Flower-CDN bootstrap service: a WebSocket endpoint
// where peers prove their id, declare the websites they serve, receive random
// directory-peer entry points and relay WebRTC signalling to each other; plus
// landmark and probe endpoints for locality detection. Several instances become
// one service through NATS (see cluster.go); without NATS a single process
// needs nothing else.
package bootstrap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
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
	// EntryMax caps n in entry-point requests.
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
	// Logger receives the service's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults used for zero fields.
func DefaultConfig() Config {
	return Config{
		AllowedOrigins:   nil,
		Localities:       6, // PROTOCOL.md: k = 6
		MaxPeers:         100_000,
		MaxFrame:         frame.MaxFrame,
		PeerRate:         50,
		PeerBurst:        100,
		IPConnRate:       20,
		IPConnBurst:      100,
		MaxPeersPerIP:    1000,
		SendQueue:        128,
		SendQueueBytes:   256 << 10,
		EntryMax:         32,
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports the first configuration error.
func (c *Config) Validate() error {
	var errs []error
	if c.Localities < 1 || c.Localities > 1<<16 {
		errs = append(errs, fmt.Errorf("localities %d: want 1..65536", c.Localities))
	}
	if c.MaxFrame < 64 || c.MaxFrame > frame.MaxFrame {
		errs = append(errs, fmt.Errorf("max frame %d: want 64..%d", c.MaxFrame, frame.MaxFrame))
	}
	if c.PeerRate < 0 || c.PeerBurst < 1 {
		errs = append(errs, fmt.Errorf("peer rate %g burst %d: want rate >= 0, burst >= 1", c.PeerRate, c.PeerBurst))
	}
	if c.IPConnRate < 0 || c.IPConnBurst < 0 || c.MaxPeersPerIP < 0 {
		errs = append(errs, errors.New("per-IP limits must not be negative"))
	}
	if c.IPConnRate > 0 && c.IPConnBurst < 1 {
		errs = append(errs, errors.New("ip conn burst must be >= 1 when the ip conn rate is set"))
	}
	if c.ReadBuffer < 16 || c.WriteBuffer < 16 {
		errs = append(errs, fmt.Errorf("read/write buffers %d/%d: want >= 16", c.ReadBuffer, c.WriteBuffer))
	}
	if c.EntryMax < 1 || c.EntryMax > frame.MaxEntries {
		errs = append(errs, fmt.Errorf("entry max %d: want 1..%d", c.EntryMax, frame.MaxEntries))
	}
	if c.SendQueue < 4 || c.SendQueueBytes < 4*c.MaxFrame {
		errs = append(errs, fmt.Errorf("send queue %d frames / %d bytes: want >= 4 frames and >= 4 x max frame bytes", c.SendQueue, c.SendQueueBytes))
	}
	if len(c.Alternates) > frame.MaxURLs {
		errs = append(errs, fmt.Errorf("%d alternates: at most %d", len(c.Alternates), frame.MaxURLs))
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := CanonicalOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("allowed origin: %w", err))
		}
	}
	for _, n := range c.PublicNames {
		if _, err := CanonicalName(n); err != nil {
			errs = append(errs, fmt.Errorf("public-names: %w", err))
		}
	}
	if strings.ContainsAny(c.Subject, " .*>") {
		errs = append(errs, fmt.Errorf("subject prefix %q: no spaces, dots or wildcards", c.Subject))
	}
	return errors.Join(errs...)
}

// CanonicalOrigin returns scheme://host[:port] in lower case, without a
// default port, or an error if s is not an http(s) origin.
func CanonicalOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// CanonicalName checks a public name, host[:port] as a client writes it in
// its WebSocket URL (an IPv6 host in brackets), and returns it in lower case.
func CanonicalName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	host, port := name, ""
	if h, p, err := net.SplitHostPort(name); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		host = name[1 : len(name)-1]
	}
	switch {
	case host == "":
		return "", fmt.Errorf("public name %q: empty host", s)
	case strings.ContainsAny(host, "/?#@ \t") || strings.Contains(name, "://"):
		return "", fmt.Errorf("public name %q: want host[:port], no scheme, path or user", s)
	case strings.Contains(host, ":") && net.ParseIP(host) == nil:
		return "", fmt.Errorf("public name %q: bad IPv6 address (write [addr]:port)", s)
	case strings.Contains(host, ":") && !strings.HasPrefix(name, "["):
		return "", fmt.Errorf("public name %q: write an IPv6 address in brackets", s)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("public name %q: port %q: want 1..65535", s, port)
		}
	}
	return name, nil
}

// LoopbackNames derives the public names of a service whose listeners are
// all on loopback addresses: IP:PORT and localhost:PORT for each. A
// non-loopback listener is an error: such a service must be told the names
// its clients dial (Config.PublicNames, --public-names).
func LoopbackNames(addrs []net.Addr) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", a, err)
		}
		if !ap.Addr().Unmap().IsLoopback() {
			return nil, fmt.Errorf("listening on %s, not a loopback address: set the public names clients dial (--public-names host[:port],...)", a)
		}
		port := strconv.Itoa(int(ap.Port()))
		add(strings.ToLower(net.JoinHostPort(ap.Addr().Unmap().String(), port)))
		add("localhost:" + port)
	}
	if len(out) == 0 {
		return nil, errors.New("no listener to derive public names from")
	}
	return out, nil
}

package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/security"

	"github.com/flowercdn/flower/bootstrap/frame"
)

// Validate reports every configuration error. It is strict: a zero value is
// an error wherever zero is not a meaningful setting, so a caller that has
// not applied the defaults (the command validates its flags this way before
// New fills zero fields) learns of an explicit bad value instead of having it
// silently replaced. Messages name each setting by its flag (--max-peers for
// MaxPeers).
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.Localities < 1 || c.Localities > 1<<16 {
		bad("localities", "%d: want 1..65536", c.Localities)
	}
	if c.InstanceBits != nil && (*c.InstanceBits < 0 || *c.InstanceBits > 8) {
		bad("instance-bits", "%d: want 0..8", *c.InstanceBits)
	}
	if c.MaxPeers < 1 {
		bad("max-peers", "%d: want >= 1", c.MaxPeers)
	}
	if c.MaxFrame < 64 || c.MaxFrame > frame.MaxFrame {
		bad("max-frame", "%d: want 64..%d", c.MaxFrame, frame.MaxFrame)
	}
	if !(c.PeerRate > 0) {
		bad("peer-rate", "%g: want > 0 frames per second", c.PeerRate)
	}
	if c.PeerBurst < 1 {
		bad("peer-burst", "%d: want >= 1", c.PeerBurst)
	}
	if !(c.IPConnRate >= 0) {
		bad("ip-rate", "%g: want >= 0 (0: off)", c.IPConnRate)
	}
	if c.IPConnBurst < 0 || (c.IPConnRate > 0 && c.IPConnBurst < 1) {
		bad("ip-burst", "%d: want >= 1 while --ip-rate is on", c.IPConnBurst)
	}
	if c.MaxPeersPerIP < 0 {
		bad("max-peers-per-ip", "%d: want >= 0 (0: off)", c.MaxPeersPerIP)
	}
	if c.SendQueue < 4 {
		bad("send-queue", "%d: want >= 4 frames", c.SendQueue)
	}
	if c.SendQueueBytes < 4*c.MaxFrame {
		bad("send-queue-bytes", "%d: want >= 4 x --max-frame (%d)", c.SendQueueBytes, 4*c.MaxFrame)
	}
	if c.EntryMax < 1 || c.EntryMax > frame.MaxRandom {
		bad("entry-max", "%d: want 1..%d", c.EntryMax, frame.MaxRandom)
	}
	durations := []struct {
		flag string
		d    time.Duration
	}{
		{"ping-interval", c.PingInterval}, {"idle-timeout", c.IdleTimeout}, {"write-timeout", c.WriteTimeout},
		{"handshake-timeout", c.HandshakeTimeout}, {"shutdown-timeout", c.ShutdownTimeout}, {"dir-snapshot", c.DirSnapshot},
		{"report-interval", c.ReportInterval}, {"sample-interval", c.SampleInterval},
	}
	for _, d := range durations {
		if d.d <= 0 {
			bad(d.flag, "%s: want > 0", d.d)
		}
	}
	if c.PingInterval > 0xffff*time.Second {
		bad("ping-interval", "%s: want at most 65535s", c.PingInterval)
	}
	if c.PingInterval > 0 && c.IdleTimeout > 0 && c.IdleTimeout <= c.PingInterval {
		bad("idle-timeout", "%s: want more than --ping-interval (%s), or peers that ping on time are dropped", c.IdleTimeout, c.PingInterval)
	}
	if c.ReportSites < 1 || c.ReportSites > 100_000 {
		bad("report-sites", "%d: want 1..100000", c.ReportSites)
	}
	if c.OperatorToken != "" && len(c.OperatorToken) < 16 {
		bad("operator-token", "of %d characters: want at least 16", len(c.OperatorToken))
	}
	if c.ReadBuffer < 16 {
		bad("read-buffer", "%d: want >= 16 bytes", c.ReadBuffer)
	}
	if c.WriteBuffer < 16 {
		bad("write-buffer", "%d: want >= 16 bytes", c.WriteBuffer)
	}
	for _, l := range c.Landmarks {
		if err := checkURL(l, "http", "https"); err != nil {
			bad("landmarks", "%v", err)
		}
	}
	if len(c.Alternates) > frame.MaxURLs {
		bad("alternates", "%d URLs: at most %d", len(c.Alternates), frame.MaxURLs)
	}
	for _, a := range c.Alternates {
		if err := checkURL(a, "ws", "wss"); err != nil {
			bad("alternates", "%v", err)
		} else if len(a) > frame.MaxText {
			bad("alternates", "%q: at most %d bytes", a, frame.MaxText)
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := CanonicalOrigin(o); err != nil {
			bad("allow-origins", "%v", err)
		}
	}
	for _, n := range c.PublicNames {
		if _, err := CanonicalName(n); err != nil {
			bad("public-names", "%v", err)
		}
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if err := checkURL(strings.TrimSpace(u), "nats", "tls", "ws", "wss"); err != nil {
				bad("nats", "%v", err)
			}
		}
	}
	if c.Subject == "" || strings.ContainsAny(c.Subject, " .*>") {
		bad("nats-subject", "%q: want a non-empty prefix without spaces, dots or wildcards", c.Subject)
	}
	return errors.Join(errs...)
}

// checkURL accepts an absolute URL with one of schemes and a host.
func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	for _, sc := range schemes {
		if strings.EqualFold(u.Scheme, sc) && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("%q: want an absolute %s:// URL with a host", s, strings.Join(schemes, "/"))
}

// CanonicalOrigin is security.CanonicalOrigin of s without surrounding
// spaces (flags and Origin headers).
func CanonicalOrigin(s string) (string, error) {
	return security.CanonicalOrigin(strings.TrimSpace(s))
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

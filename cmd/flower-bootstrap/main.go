// Command flower-bootstrap runs the Flower-CDN bootstrap service: entry
// points, landmarks and WebRTC signalling over WebSocket.
//
// Every flag can also be set by an environment variable FLOWER_<NAME>, the
// flag name upper-cased with dashes as underscores (--max-peers:
// FLOWER_MAX_PEERS). A flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/flowercdn/flower/bootstrap"
)

func main() {
	// The signal handler stays installed until exit: a second SIGTERM during
	// shutdown must not kill the process half-way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flower-bootstrap:", strings.ReplaceAll(err.Error(), "\n", "\nflower-bootstrap: "))
		}
		stop()
		os.Exit(2)
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	d := bootstrap.DefaultConfig()
	fs := flag.NewFlagSet("flower-bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7700", "comma-separated `addresses` to listen on (host:port; port 0 picks one)")
	origins := fs.String("allow-origins", "*", "comma-separated website `origins` allowed to use this bootstrap (\"*\": any)")
	publicNames := fs.String("public-names", "", "comma-separated host[:port] `names` clients dial this service by, as in their WebSocket URL (default: derived from --listen when every address is loopback; required otherwise)")
	landmarks := fs.String("landmarks", "", "comma-separated landmark `URLs` for locality detection")
	alternates := fs.String("alternates", "", "comma-separated WebSocket `URLs` of other instances, sent to peers at shutdown")
	cfg := bootstrap.Config{}
	fs.IntVar(&cfg.Localities, "localities", d.Localities, "number of localities k")
	cfg.InstanceBits = fs.Int("instance-bits", *d.InstanceBits, "PetalUp instance bits of the D-ring key layout (0..8; the protocol core's default is 3)")
	fs.IntVar(&cfg.MaxPeers, "max-peers", d.MaxPeers, "maximum connected peers")
	fs.IntVar(&cfg.MaxFrame, "max-frame", d.MaxFrame, "maximum frame size in bytes")
	fs.Float64Var(&cfg.PeerRate, "peer-rate", d.PeerRate, "frames per second one peer may send")
	fs.IntVar(&cfg.PeerBurst, "peer-burst", d.PeerBurst, "burst of frames one peer may send")
	fs.Float64Var(&cfg.IPConnRate, "ip-rate", d.IPConnRate, "new connections and API requests per second per client IP (0: off)")
	fs.IntVar(&cfg.IPConnBurst, "ip-burst", d.IPConnBurst, "burst of new connections and API requests per client IP")
	fs.IntVar(&cfg.MaxPeersPerIP, "max-peers-per-ip", d.MaxPeersPerIP, "maximum connected peers per client IP (0: off)")
	fs.IntVar(&cfg.SendQueue, "send-queue", d.SendQueue, "frames queued for one peer (>= 4); signals from others beyond their share are refused with target_busy")
	fs.IntVar(&cfg.SendQueueBytes, "send-queue-bytes", d.SendQueueBytes, "bytes queued for one peer (>= 4 x --max-frame); signals from others beyond their share are refused with target_busy")
	fs.IntVar(&cfg.EntryMax, "entry-max", d.EntryMax, "maximum random D-ring members in an entry-point answer (1..16)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", d.PingInterval, "keepalive interval told to peers (they send a ping frame when otherwise quiet)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", d.IdleTimeout, "disconnect a peer silent for this long")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", d.WriteTimeout, "timeout of one write to a peer")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", d.HandshakeTimeout, "timeout of the challenge/hello exchange")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "graceful shutdown timeout")
	fs.IntVar(&cfg.ReadBuffer, "read-buffer", d.ReadBuffer, "per-connection read buffer in bytes")
	fs.IntVar(&cfg.WriteBuffer, "write-buffer", d.WriteBuffer, "per-connection write buffer in bytes")
	fs.StringVar(&cfg.NATSURL, "nats", "", "NATS `URL` joining several instances into one service (empty: standalone)")
	fs.StringVar(&cfg.Subject, "nats-subject", d.Subject, "prefix of every NATS subject")
	fs.DurationVar(&cfg.DirSnapshot, "dir-snapshot", d.DirSnapshot, "how often directory registrations are republished over NATS")
	fs.BoolVar(&cfg.Poller, "poller", d.Poller, "wait for idle peers with epoll instead of a goroutine per peer (Linux)")
	fs.DurationVar(&cfg.ReportInterval, "report-interval", d.ReportInterval, "least time between two counter reports of one peer connection (a burst of two is allowed)")
	fs.IntVar(&cfg.ReportSites, "report-sites", d.ReportSites, "most distinct sites whose reported counters are kept")
	fs.DurationVar(&cfg.SampleInterval, "sample-interval", d.SampleInterval, "sampling period of the operator page's time series")
	fs.StringVar(&cfg.OperatorToken, "operator-token", "", "`token` that opens the operator page /dashboard (at least 16 characters; empty: no page); prefer FLOWER_OPERATOR_TOKEN to keep it out of ps")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof/ (profiling; not for public listeners)")
	gogc := fs.Int("gogc", 0, "Go GC target percentage (0: keep GOGC or the default 100; -1: off); lower trades CPU for RSS")
	memLimit := fs.Int64("memory-limit", 0, "soft memory limit in bytes for the Go runtime (0: keep GOMEMLIMIT)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	cfg.AllowedOrigins = splitList(*origins)
	cfg.PublicNames = splitList(*publicNames)
	cfg.Landmarks = splitList(*landmarks)
	cfg.Alternates = splitList(*alternates)
	// Every value is checked as given, before New fills zero fields with
	// defaults: an explicit bad value is an error, never a silent default.
	var errs []error
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel))
	}
	if *logFormat != "text" && *logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", *logFormat))
	}
	if *gogc < -1 {
		errs = append(errs, fmt.Errorf("--gogc %d: want -1 (off), 0 (keep) or a percentage > 0", *gogc))
	}
	if *memLimit < 0 {
		errs = append(errs, fmt.Errorf("--memory-limit %d: want >= 0 bytes (0: keep)", *memLimit))
	}
	addrs := splitList(*listen)
	if len(addrs) == 0 {
		errs = append(errs, errors.New("--listen: no address"))
	}
	if len(cfg.PublicNames) == 0 {
		for _, a := range addrs {
			if err := loopbackListen(a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(h)
	cfg.Logger = log
	if *gogc != 0 {
		debug.SetGCPercent(*gogc)
	}
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		if rl.Cur < rl.Max {
			rl.Cur = rl.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		}
		if rl.Cur < uint64(cfg.MaxPeers)+256 {
			log.Warn("open-file limit below max peers: raise ulimit -n or lower --max-peers", "nofile", rl.Cur, "max_peers", cfg.MaxPeers)
		}
	}
	srv, err := bootstrap.New(cfg)
	if err != nil {
		return err
	}
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("listen %s: %w", a, err)
		}
		lns = append(lns, ln)
		log.Info("listening", "addr", ln.Addr().String(), "instance", srv.Instance())
	}
	return srv.Run(ctx, lns)
}

// applyEnv sets every flag not given on the command line from FLOWER_<NAME>.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "FLOWER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

// loopbackListen reports an error unless addr (host:port, as given to
// --listen) is on a loopback address, where the public names can be derived.
func loopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %s is not a loopback address: set --public-names to the host[:port] names clients dial (they sign the name in their Hello)", addr)
}

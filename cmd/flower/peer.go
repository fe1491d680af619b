package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/rtc"
	"github.com/flowercdn/flower/shared/security"
)

// peerFlags are the flags `flower peer` and `flower get` share.
type peerFlags struct {
	bootstrap, cacheDir, logLevel string
	quota                         string
	locality                      int
	loopback                      bool
	stun                          string
	noReport                      bool
	reportPeriod                  time.Duration
}

func (f *peerFlags) register(fs *flag.FlagSet, cacheRequired bool, logLevel string) {
	fs.StringVar(&f.bootstrap, "bootstrap", "", "bootstrap service `URL` (http(s)://host:port or ws(s)://host:port/v1/ws)")
	help := "`directory` of the peer's identity, cache and state"
	if !cacheRequired {
		help += " (default: none, a fresh identity and nothing kept)"
	}
	fs.StringVar(&f.cacheDir, "cache-dir", "", help)
	fs.StringVar(&f.quota, "quota", "256MiB", "cache `size` per site (e.g. 512MiB, 2GB)")
	fs.IntVar(&f.locality, "locality", -1, "the peer's locality (-1: time the bootstrap's landmarks)")
	fs.BoolVar(&f.loopback, "webrtc-loopback", false, "gather 127.0.0.1 ICE candidates (peers on one machine with no other interface)")
	fs.StringVar(&f.stun, "stun", "", "comma-separated STUN/TURN `URLs` for WebRTC (default none: host candidates)")
	fs.StringVar(&f.logLevel, "log-level", logLevel, "log `level`: debug, info, warn, error")
	fs.BoolVar(&f.noReport, "no-report", false, "send the bootstrap service no counter reports (docs/operator-metrics.md)")
	fs.DurationVar(&f.reportPeriod, "report-period", peer.DefaultReportPeriod, "how often to send the bootstrap service the peer's counters")
}

// config builds a peer configuration for the sites.
func (f *peerFlags) config(sites []string, stderr io.Writer) (peer.Config, error) {
	if f.bootstrap == "" {
		return peer.Config{}, errors.New("--bootstrap is required")
	}
	if f.reportPeriod <= 0 {
		return peer.Config{}, fmt.Errorf("--report-period %s: want > 0", f.reportPeriod)
	}
	quota, err := parseSize(f.quota)
	if err != nil {
		return peer.Config{}, fmt.Errorf("--quota: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return peer.Config{}, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ccfg := core.DefaultConfig()
	ccfg.CacheBytes = quota
	rcfg := rtc.Config{Logger: log}
	rcfg.Native.IncludeLoopback = f.loopback
	for _, u := range split(f.stun) {
		rcfg.ICEServers = append(rcfg.ICEServers, rtcICEServer(u))
	}
	cfg := peer.Config{
		Bootstrap: f.bootstrap, Sites: sites, Core: ccfg, Locality: f.locality, Logger: log, Net: peer.RTC(rcfg),
		NoReport: f.noReport, ReportPeriod: f.reportPeriod,
	}
	if f.cacheDir == "" {
		cfg.Store = peer.NewMemStore()
		if _, cfg.Key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return peer.Config{}, err
		}
		return cfg, nil
	}
	if cfg.Key, err = peer.LoadIdentity(f.cacheDir); err != nil {
		return peer.Config{}, err
	}
	if cfg.Store, err = peer.OpenDiskStore(f.cacheDir); err != nil {
		return peer.Config{}, err
	}
	return cfg, nil
}

// runPeer is `flower peer`: a headless peer (a seeder next to the origin,
// or a debugging client) until interrupted.
func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf peerFlags
	pf.register(fs, true, "info")
	sitesFlag := fs.String("site", "", "comma-separated website `origins` to serve (https://example.org)")
	prefetch := fs.Bool("prefetch", false, "cache every shareable object of the site's signed manifest within the quota")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("peer: unexpected argument %q", fs.Arg(0))
	}
	if pf.cacheDir == "" {
		return errors.New("peer: --cache-dir is required")
	}
	var sites []string
	for _, s := range split(*sitesFlag) {
		o, err := security.CanonicalOrigin(s)
		if err != nil {
			return fmt.Errorf("peer: --site: %w", err)
		}
		sites = append(sites, o)
	}
	if len(sites) == 0 {
		return errors.New("peer: --site is required")
	}
	cfg, err := pf.config(sites, stderr)
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	tunePeerGC()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, err := peer.Start(sctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	for _, s := range sites {
		if *prefetch {
			n, err := p.Prefetch(ctx, s, 0)
			cfg.Logger.Info("prefetched", "site", s, "objects", n, "err", err)
		}
		// A peer whose objects were all in its store has asked nothing yet.
		if err := p.Join(ctx, s); err != nil {
			cfg.Logger.Warn("join", "site", s, "err", err)
		}
		cfg.Logger.Info("serving", "site", s, "role", p.Role(s).String(), "locality", p.Locality(), "id", p.ID().Short())
	}
	fmt.Fprintf(stdout, "peer %s serving %s in locality %d (Ctrl-C stops)\n", p.ID().Short(), strings.Join(sites, ", "), p.Locality())
	<-ctx.Done()
	err = p.Close()
	st, _ := json.Marshal(p.Stats())
	cfg.Logger.Info("stopped", "stats", string(st))
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	return nil
}

// getJSON is what `flower get --json` prints.
type getJSON struct {
	Source     string  `json:"source"`
	Peer       string  `json:"peer"`
	Locality   int     `json:"locality"`
	Verified   bool    `json:"verified"`
	Bytes      int     `json:"bytes"`
	LookupMs   float64 `json:"lookup_ms"`
	TransferMs float64 `json:"transfer_ms"`
}

// runGet is `flower get`: one object through Flower-CDN.
func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf peerFlags
	pf.register(fs, false, "warn")
	asJSON := fs.Bool("json", false, "print one JSON object describing the fetch instead of the body")
	out := fs.String("o", "", "write the body to `file` (default stdout)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	// The URL may come before the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if target == "" && fs.NArg() > 0 {
		target = fs.Arg(0)
	}
	if target == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != target) {
		return errors.New("get: want exactly one URL")
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("get: %q is not an absolute http(s) URL", target)
	}
	origin, err := security.CanonicalOrigin(u.Scheme + "://" + u.Host)
	if u.User != nil {
		err = fmt.Errorf("%q has user info", target)
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	// Ask as a browser would: lower-case scheme and host, no default port.
	target = origin + u.RequestURI()
	cfg, err := pf.config([]string{origin}, stderr)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	tunePeerGC()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := peer.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	res, err := p.Get(ctx, target)
	cerr := p.Close()
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if cerr != nil {
		cfg.Logger.Warn("close", "err", cerr)
	}
	if *out != "" {
		if err := os.WriteFile(*out, res.Body, 0o644); err != nil {
			return fmt.Errorf("get: %w", err)
		}
	}
	j := getJSON{
		Source: res.Source.String(), Locality: res.Locality, Verified: res.Verified, Bytes: len(res.Body),
		LookupMs: ms(res.Lookup), TransferMs: ms(res.Transfer),
	}
	if res.Source == core.SourcePeer {
		j.Peer = res.Peer.String()
	}
	if *asJSON {
		b, _ := json.Marshal(j)
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	if *out == "" {
		if _, err := stdout.Write(res.Body); err != nil {
			return fmt.Errorf("get: %w", err)
		}
	}
	from := j.Source
	if j.Peer != "" {
		from = fmt.Sprintf("peer %s (locality %d)", res.Peer.Short(), j.Locality)
	}
	fmt.Fprintf(stderr, "%s: %d bytes from %s, verified %v, lookup %.1f ms, transfer %.1f ms\n",
		target, j.Bytes, from, j.Verified, j.LookupMs, j.TransferMs)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tunePeerGC: pion allocates about 13 bytes per byte a data channel moves,
// so a peer spends a large share of a transfer's CPU in the garbage
// collector (docs/transport.md). Collecting less often costs memory the
// peer's small live heap can spare; a soft limit bounds it. GOGC and
// GOMEMLIMIT override.
func tunePeerGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(768 << 20)
	}
}

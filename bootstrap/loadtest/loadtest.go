// Package loadtest is the load generator behind `flower loadtest`: it opens
// many authenticated peer connections to a bootstrap deployment, has pairs of
// peers exchange signalling messages at a set rate, and reports throughput,
// relay latency, errors and the server's RSS (from its /metrics) before and
// after, so that RSS per peer follows.
//
// One process can hold only as many sockets as its open-file limit allows, so
// above that the run is split over worker processes (re-executions of the same
// binary) that each own a slice of the peers and bind their own loopback
// source address; the parent steps them through connect, load and close and
// merges their results.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"syscall"
	"time"

	"github.com/flowercdn/flower/bootstrap/frame"
)

// Config is one load run.
type Config struct {
	// URLs are the /v1/ws URLs of the deployment; pairs of peers are spread
	// over them round-robin (both peers of a pair on the same URL unless
	// CrossInstance).
	URLs []string
	// MetricsURLs are scraped for process_resident_memory_bytes (summed);
	// empty derives http://host/metrics from URLs.
	MetricsURLs []string
	Peers       int
	Duration    time.Duration
	// Rate is signalling messages per second sent by each peer; Payload is
	// the size of each (>= 8 bytes, it carries the send time).
	Rate    float64
	Payload int
	// Directory is the fraction of peers that register as directory peers of
	// Site (in locality peer%Localities); the others register as content.
	Directory  float64
	Site       string
	Localities int
	// Dialers is how many connections are being set up at once.
	Dialers int
	// Settle is the pause after connecting (and after the load) before the
	// server's RSS is read.
	Settle time.Duration
	// SourceIPs are local addresses to dial from (loopback has ~28k ports per
	// source/destination pair); empty picks 127.0.0.x automatically for
	// loopback targets.
	SourceIPs []string
	// CrossInstance pairs peers on different URLs (exercises NATS).
	CrossInstance bool
	// Procs splits the peers over that many worker processes (0: as few as
	// the open-file limit allows).
	Procs int
	// Origin, if set, is sent as the Origin header.
	Origin string
	// Exe and ExeArgs re-execute this program as a worker: Exe ExeArgs...
	// --worker ...; empty Exe disables workers.
	Exe     string
	ExeArgs []string
	// Log receives progress lines.
	Log io.Writer
}

// Result is the JSON object `flower loadtest --json` prints.
type Result struct {
	PeersTarget     int              `json:"peers_target"`
	PeersConnected  int              `json:"peers_connected"`
	ConnectSeconds  float64          `json:"connect_seconds"`
	DurationSeconds float64          `json:"duration_seconds"`
	MsgsSent        int64            `json:"msgs_sent"`
	MsgsReceived    int64            `json:"msgs_received"`
	RelayMsgsPerS   float64          `json:"relay_msgs_per_s"`
	RelayP50Ms      float64          `json:"relay_p50_ms"`
	RelayP90Ms      float64          `json:"relay_p90_ms"`
	RelayP99Ms      float64          `json:"relay_p99_ms"`
	RelayMaxMs      float64          `json:"relay_max_ms"`
	Errors          int64            `json:"errors"`
	ErrorKinds      map[string]int64 `json:"error_kinds,omitempty"`
	ServerRSSBytes  RSS              `json:"server_rss_bytes"`
	RSSPerPeerBytes float64          `json:"rss_per_peer_bytes"`
	RSSPerPeerLoad  float64          `json:"rss_per_peer_bytes_after_load"`
	Procs           int              `json:"client_procs"`
	Instances       int              `json:"server_instances"`
	RatePerPeer     float64          `json:"rate_per_peer"`
	PayloadBytes    int              `json:"payload_bytes"`

	hist *histogram
}

// RSS is the server's resident memory (summed over instances) at three points.
type RSS struct {
	Before    int64 `json:"before"`
	Connected int64 `json:"connected"`
	After     int64 `json:"after"`
}

func (c *Config) fill() error {
	if len(c.URLs) == 0 {
		return errors.New("no --url")
	}
	for _, u := range c.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "ws" && pu.Scheme != "wss") {
			return fmt.Errorf("url %q: want ws:// or wss://", u)
		}
	}
	if c.Peers < 2 {
		return errors.New("--peers: at least 2")
	}
	if c.Payload < 8 {
		c.Payload = 8
	}
	if c.Payload > frame.MaxSignal {
		return fmt.Errorf("--payload: at most %d", frame.MaxSignal)
	}
	if c.Dialers <= 0 {
		c.Dialers = 64
	}
	if c.Localities <= 0 {
		c.Localities = 6
	}
	if c.Site == "" {
		c.Site = "https://loadtest.example"
	}
	if len(c.MetricsURLs) == 0 {
		seen := map[string]bool{}
		for _, u := range c.URLs {
			pu, _ := url.Parse(u)
			scheme := "http"
			if pu.Scheme == "wss" {
				scheme = "https"
			}
			m := scheme + "://" + pu.Host + "/metrics"
			if !seen[m] {
				seen[m] = true
				c.MetricsURLs = append(c.MetricsURLs, m)
			}
		}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// RaiseFileLimit raises RLIMIT_NOFILE's soft limit to the hard limit and
// returns the result.
func RaiseFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// Run performs the whole load run and returns the merged result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	limit := RaiseFileLimit()
	perProc := int(limit) - 200
	if cfg.Procs <= 0 {
		cfg.Procs = 1
		if cfg.Peers > perProc && cfg.Exe != "" {
			cfg.Procs = (cfg.Peers + perProc - 1) / perProc
		}
	}
	if cfg.Procs > 1 && cfg.Exe == "" {
		return nil, errors.New("worker processes need an executable")
	}
	if cfg.Procs == 1 && cfg.Peers > perProc {
		fmt.Fprintf(cfg.Log, "warning: %d peers but the open-file limit is %d\n", cfg.Peers, limit)
	}
	res := &Result{PeersTarget: cfg.Peers, Procs: cfg.Procs, Instances: len(cfg.MetricsURLs),
		RatePerPeer: cfg.Rate, PayloadBytes: cfg.Payload, hist: newHistogram()}
	var err error
	res.ServerRSSBytes.Before, err = serverRSS(ctx, cfg.MetricsURLs)
	if err != nil {
		return nil, err
	}
	if cfg.Procs == 1 {
		err = runLocal(ctx, cfg, res)
	} else {
		err = runWorkers(ctx, cfg, res)
	}
	if err != nil {
		return nil, err
	}
	res.finish()
	return res, nil
}

func (r *Result) finish() {
	if r.DurationSeconds > 0 {
		r.RelayMsgsPerS = math.Round(float64(r.MsgsReceived) / r.DurationSeconds)
	}
	r.RelayP50Ms = r.hist.quantile(0.50)
	r.RelayP90Ms = r.hist.quantile(0.90)
	r.RelayP99Ms = r.hist.quantile(0.99)
	r.RelayMaxMs = r.hist.max()
	if r.PeersConnected > 0 {
		r.RSSPerPeerBytes = math.Round(float64(r.ServerRSSBytes.Connected-r.ServerRSSBytes.Before) / float64(r.PeersConnected))
		r.RSSPerPeerLoad = math.Round(float64(r.ServerRSSBytes.After-r.ServerRSSBytes.Before) / float64(r.PeersConnected))
	}
	for _, v := range r.ErrorKinds {
		r.Errors += v
	}
}

// phases lets runLocal be driven by the parent of a worker: each callback
// runs when the phase before it is done.
type phases struct {
	connected func(n int) error // all connected; returns when load may start
	loaded    func() error      // load done; returns when peers may close
}

func runLocal(ctx context.Context, cfg Config, res *Result) error {
	ph := phases{
		connected: func(int) error {
			sleepCtx(ctx, cfg.Settle)
			var err error
			res.ServerRSSBytes.Connected, err = serverRSS(ctx, cfg.MetricsURLs)
			return err
		},
		loaded: func() error {
			sleepCtx(ctx, cfg.Settle)
			var err error
			res.ServerRSSBytes.After, err = serverRSS(ctx, cfg.MetricsURLs)
			return err
		},
	}
	return runPeers(ctx, cfg, 0, cfg.Peers, res, ph)
}

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
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
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

// lpeer is one simulated peer.
type lpeer struct {
	c       *client.Client
	partner atomic.Pointer[ids.PeerID]
}

var epoch = time.Now()

// runPeers connects peers [first, first+n), runs the load, closes them.
func runPeers(ctx context.Context, cfg Config, first, n int, res *Result, ph phases) error {
	errs := &errorCounter{m: map[string]int64{}, log: cfg.Log}
	site := ids.SiteOf(cfg.Site)
	clients := httpClients(cfg, first)
	peers := make([]*lpeer, n)
	begin := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var recv, sent atomic.Int64
	loadOn := atomic.Bool{}
	fmt.Fprintf(cfg.Log, "connecting %d peers (from #%d) to %d url(s)\n", n, first, len(cfg.URLs))
	for range cfg.Dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				g := first + i
				pair := g / 2
				ui := pair % len(cfg.URLs)
				if cfg.CrossInstance && g%2 == 1 {
					ui = (pair + 1) % len(cfg.URLs)
				}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				c, err := client.Dial(dctx, cfg.URLs[ui], client.Options{HTTPClient: clients[i%len(clients)], Origin: cfg.Origin})
				cancel()
				if err != nil {
					errs.add("dial", err)
					continue
				}
				role := frame.RoleContent
				if cfg.Directory > 0 && float64(g%1000) < cfg.Directory*1000 {
					role = frame.RoleDirectory
				}
				k := cfg.Localities // never more than the server announced in its challenge
				if sk := int(c.Challenge.Localities); sk > 0 && sk < k {
					k = sk
				}
				if err := c.Register(ctx, frame.Reg{Site: site, Loc: uint16(g % k), Role: role}); err != nil {
					errs.add("register", err)
				}
				peers[i] = &lpeer{c: c}
			}
		}()
	}
	wg.Wait()
	connected := 0
	for _, p := range peers {
		if p != nil {
			connected++
		}
	}
	res.PeersConnected += connected
	res.ConnectSeconds = math.Max(res.ConnectSeconds, time.Since(begin).Seconds())
	fmt.Fprintf(cfg.Log, "connected %d/%d in %.1fs\n", connected, n, time.Since(begin).Seconds())
	// Partners: 2k <-> 2k+1 within this slice (first is even).
	for i := 0; i+1 < n; i += 2 {
		if peers[i] != nil && peers[i+1] != nil {
			a, b := peers[i].c.ID, peers[i+1].c.ID
			peers[i].partner.Store(&b)
			peers[i+1].partner.Store(&a)
		}
	}
	// Readers: one per peer (the WebSocket client needs one anyway).
	var readers sync.WaitGroup
	for _, p := range peers {
		if p == nil {
			continue
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				f, err := p.c.Recv(context.Background())
				if err != nil {
					return
				}
				switch f.Type {
				case frame.TDeliver:
					if len(f.Payload) >= 8 && loadOn.Load() {
						sentAt := int64(binary.BigEndian.Uint64(f.Payload))
						res.hist.add(time.Duration(int64(time.Since(epoch)) - sentAt))
						recv.Add(1)
					}
				case frame.TError:
					errs.addKind("server_" + f.Code.String())
				case frame.TGoAway:
					errs.addKind("goaway")
				}
			}
		}()
	}
	// Keepalive: every peer sends a ping frame once per ping interval (the
	// server drops peers that stay silent), spread over the interval.
	kctx, stopKeepalive := context.WithCancel(ctx)
	defer stopKeepalive()
	go keepalive(kctx, peers)
	if err := ph.connected(connected); err != nil {
		closeAll(peers)
		return err
	}
	// Load: senders each own a share of the peers and keep an open-loop
	// schedule of Rate messages per second per peer.
	if cfg.Rate > 0 && cfg.Duration > 0 {
		loadOn.Store(true)
		fmt.Fprintf(cfg.Log, "load: %.0f msg/s per peer for %s\n", cfg.Rate, cfg.Duration)
		lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
		start := time.Now()
		var live []*lpeer
		for _, p := range peers {
			if p != nil && p.partner.Load() != nil {
				live = append(live, p)
			}
		}
		nsend := min(256, max(1, len(live)/8))
		var sw sync.WaitGroup
		for s := range nsend {
			sw.Add(1)
			go func() {
				defer sw.Done()
				var mine []*lpeer
				for i := s; i < len(live); i += nsend {
					mine = append(mine, live[i])
				}
				if len(mine) == 0 {
					return
				}
				buf := make([]byte, cfg.Payload)
				var done int64
				k := 0
				t := time.NewTicker(5 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-lctx.Done():
						return
					case <-t.C:
					}
					due := int64(time.Since(start).Seconds() * cfg.Rate * float64(len(mine)))
					for done < due && lctx.Err() == nil {
						p := mine[k%len(mine)]
						k++
						binary.BigEndian.PutUint64(buf, uint64(time.Since(epoch)))
						wctx, wcancel := context.WithTimeout(lctx, 5*time.Second)
						err := p.c.Signal(wctx, *p.partner.Load(), buf)
						wcancel()
						done++
						if err != nil {
							if lctx.Err() == nil {
								errs.add("send", err)
							}
							continue
						}
						sent.Add(1)
					}
				}
			}()
		}
		sw.Wait()
		cancel()
		res.DurationSeconds = time.Since(start).Seconds()
		// Let the last messages land.
		sleepCtx(ctx, 500*time.Millisecond)
		loadOn.Store(false)
	}
	res.MsgsSent += sent.Load()
	res.MsgsReceived += recv.Load()
	if err := ph.loaded(); err != nil {
		closeAll(peers)
		return err
	}
	closeAll(peers)
	readers.Wait()
	if res.ErrorKinds == nil {
		res.ErrorKinds = map[string]int64{}
	}
	for k, v := range errs.snapshot() {
		res.ErrorKinds[k] += v
	}
	return nil
}

func keepalive(ctx context.Context, peers []*lpeer) {
	interval := 30 * time.Second
	for _, p := range peers {
		if p != nil && p.c.Welcome.PingInterval > 0 {
			interval = min(interval, time.Duration(p.c.Welcome.PingInterval)*time.Second)
		}
	}
	const slots = 20
	t := time.NewTicker(interval / 2 / slots)
	defer t.Stop()
	ping := (&frame.Frame{Type: frame.TPing}).Append(nil)
	for slot := 0; ; slot = (slot + 1) % slots {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := slot; i < len(peers); i += slots {
			if p := peers[i]; p != nil {
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_ = p.c.SendRaw(wctx, ping)
				cancel()
			}
		}
	}
}

func closeAll(peers []*lpeer) {
	for _, p := range peers {
		if p != nil {
			_ = p.c.CloseNow()
		}
	}
}

// httpClients returns one HTTP client per source address.
func httpClients(cfg Config, first int) []*http.Client {
	srcs := cfg.SourceIPs
	if len(srcs) == 0 {
		loop := true
		for _, u := range cfg.URLs {
			pu, _ := url.Parse(u)
			ip := net.ParseIP(pu.Hostname())
			if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
				loop = false
			}
		}
		if loop {
			// 127.0.0.(2+k): one source address per 16k peers, and a
			// different range per worker (first differs).
			base := 2 + first/16000
			for k := 0; k < max(1, (cfg.Peers+15999)/16000) && base+k < 255; k++ {
				srcs = append(srcs, fmt.Sprintf("127.0.0.%d", base+k))
			}
		}
	}
	if len(srcs) == 0 {
		return []*http.Client{{Transport: &http.Transport{ForceAttemptHTTP2: false}}}
	}
	var out []*http.Client
	for _, s := range srcs {
		d := &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP(s)},
			Timeout:   30 * time.Second,
			Control: func(network, address string, c syscall.RawConn) error {
				// Let connect() pick the port per destination, not bind().
				return c.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
				})
			},
		}
		out = append(out, &http.Client{Transport: &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: false}})
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// serverRSS sums process_resident_memory_bytes over the metrics URLs.
func serverRSS(ctx context.Context, urls []string) (int64, error) {
	var sum int64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		v, err := scanMetric(resp.Body, "process_resident_memory_bytes")
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		sum += int64(v)
	}
	return sum, nil
}

func scanMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			return strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s", name)
}

// errorCounter counts errors by kind and logs the first of each kind.
type errorCounter struct {
	mu  sync.Mutex
	m   map[string]int64
	log io.Writer
}

func (e *errorCounter) add(kind string, err error) {
	e.mu.Lock()
	if e.m[kind] == 0 && e.log != nil {
		fmt.Fprintf(e.log, "first %s error: %v\n", kind, err)
	}
	e.mu.Unlock()
	e.addKind(kind)
}

func (e *errorCounter) addKind(kind string) {
	e.mu.Lock()
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounter) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// histogram is a log-bucketed latency histogram (2% wide buckets, from 1 µs).
type histogram struct {
	b [1024]atomic.Int64
}

const histBase = 1.02

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log(us) / math.Log(histBase))
	}
	i = min(max(i, 0), len(h.b)-1)
	h.b[i].Add(1)
}

func (h *histogram) total() int64 {
	var n int64
	for i := range h.b {
		n += h.b[i].Load()
	}
	return n
}

// quantile returns the q-quantile in milliseconds (bucket midpoint).
func (h *histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(n)))
	var acc int64
	for i := range h.b {
		acc += h.b[i].Load()
		if acc >= want {
			return round3(math.Pow(histBase, float64(i)+0.5) / 1000)
		}
	}
	return 0
}

func (h *histogram) max() float64 {
	for i := len(h.b) - 1; i >= 0; i-- {
		if h.b[i].Load() > 0 {
			return round3(math.Pow(histBase, float64(i+1)) / 1000)
		}
	}
	return 0
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// sparse/merge for worker results.
func (h *histogram) sparse() map[int]int64 {
	m := map[int]int64{}
	for i := range h.b {
		if v := h.b[i].Load(); v > 0 {
			m[i] = v
		}
	}
	return m
}

func (h *histogram) merge(m map[int]int64) {
	for i, v := range m {
		if i >= 0 && i < len(h.b) {
			h.b[i].Add(v)
		}
	}
}

// workerReport is what a worker prints when its load is done.
type workerReport struct {
	Connected  int              `json:"connected"`
	Connect    float64          `json:"connect_seconds"`
	Duration   float64          `json:"duration_seconds"`
	Sent       int64            `json:"sent"`
	Received   int64            `json:"received"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Hist       map[int]int64    `json:"hist"`
}

// WorkerFlag is the hidden flag a worker is started with: --worker FIRST:N.
const WorkerFlag = "worker"

// RunWorker is the worker side: it connects peers [first, first+n), prints
// "connected N", waits for "go", runs the load, prints "loaded {json}",
// waits for "close" and closes.
func RunWorker(ctx context.Context, cfg Config, first, n int, stdin io.Reader, stdout io.Writer) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	RaiseFileLimit()
	in := bufio.NewScanner(stdin)
	wait := func(word string) error {
		for in.Scan() {
			if strings.TrimSpace(in.Text()) == word {
				return nil
			}
		}
		return fmt.Errorf("worker: parent went away waiting for %q", word)
	}
	res := &Result{hist: newHistogram()}
	ph := phases{
		connected: func(k int) error {
			fmt.Fprintf(stdout, "connected %d\n", k)
			return wait("go")
		},
	}
	ph.loaded = func() error {
		rep := workerReport{Connected: res.PeersConnected, Connect: res.ConnectSeconds, Duration: res.DurationSeconds,
			Sent: res.MsgsSent, Received: res.MsgsReceived, Hist: res.hist.sparse()}
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "loaded %s\n", b)
		return wait("close")
	}
	err := runPeers(ctx, cfg, first, n, res, ph)
	if err == nil {
		b, _ := json.Marshal(res.ErrorKinds)
		fmt.Fprintf(stdout, "closed %s\n", b)
	}
	return err
}

type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func runWorkers(ctx context.Context, cfg Config, res *Result) error {
	per := ((cfg.Peers+cfg.Procs-1)/cfg.Procs + 1) &^ 1 // even, so pairs stay in one worker
	var ws []*worker
	defer func() {
		for _, w := range ws {
			_ = w.stdin.Close()
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	}()
	for first := 0; first < cfg.Peers; first += per {
		n := min(per, cfg.Peers-first)
		args := append(append([]string{}, cfg.ExeArgs...), "--"+WorkerFlag, fmt.Sprintf("%d:%d", first, n))
		cmd := exec.CommandContext(ctx, cfg.Exe, args...)
		cmd.Stderr = cfg.Log
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("worker stdin: %w", err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("worker stdout: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		w := &worker{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				w.lines <- sc.Text()
			}
			close(w.lines)
		}()
		ws = append(ws, w)
	}
	expect := func(w *worker, prefix string) (string, error) {
		for {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case l, ok := <-w.lines:
				if !ok {
					return "", fmt.Errorf("worker exited before %q", prefix)
				}
				if strings.HasPrefix(l, prefix+" ") {
					return strings.TrimPrefix(l, prefix+" "), nil
				}
			}
		}
	}
	for _, w := range ws {
		if _, err := expect(w, "connected"); err != nil {
			return err
		}
	}
	sleepCtx(ctx, cfg.Settle)
	var err error
	if res.ServerRSSBytes.Connected, err = serverRSS(ctx, cfg.MetricsURLs); err != nil {
		return err
	}
	for _, w := range ws {
		fmt.Fprintln(w.stdin, "go")
	}
	res.ErrorKinds = map[string]int64{}
	for _, w := range ws {
		l, err := expect(w, "loaded")
		if err != nil {
			return err
		}
		var rep workerReport
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			return fmt.Errorf("worker report: %w", err)
		}
		res.PeersConnected += rep.Connected
		res.ConnectSeconds = math.Max(res.ConnectSeconds, rep.Connect)
		res.DurationSeconds = math.Max(res.DurationSeconds, rep.Duration)
		res.MsgsSent += rep.Sent
		res.MsgsReceived += rep.Received
		res.hist.merge(rep.Hist)
	}
	sleepCtx(ctx, cfg.Settle)
	if res.ServerRSSBytes.After, err = serverRSS(ctx, cfg.MetricsURLs); err != nil {
		return err
	}
	for _, w := range ws {
		fmt.Fprintln(w.stdin, "close")
	}
	for _, w := range ws {
		l, err := expect(w, "closed")
		if err != nil {
			return err
		}
		var kinds map[string]int64
		_ = json.Unmarshal([]byte(l), &kinds)
		for k, v := range kinds {
			res.ErrorKinds[k] += v
		}
	}
	return nil
}

// ParseWorker parses the --worker FIRST:N value.
func ParseWorker(v string) (first, n int, err error) {
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, fmt.Errorf("--worker %q: want FIRST:N", v)
	}
	if first, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("--worker %q: %w", v, err)
	}
	if n, err = strconv.Atoi(b); err != nil {
		return 0, 0, fmt.Errorf("--worker %q: %w", v, err)
	}
	return first, n, nil
}

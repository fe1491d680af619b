package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/registry"
)

// Server is one bootstrap instance.
type Server struct {
	cfg      Config
	log      *slog.Logger
	instance string // random, names this instance on NATS

	names []string // public names a Hello signature may be made for

	allowAll     bool
	allowOrigins map[string]bool
	allowSites   map[ids.SiteID]bool

	peers  peerTable
	npeers atomic.Int64
	queued atomic.Int64 // bytes in all send queues
	caps   queueCaps
	layout keymgr.Layout      // of the D-ring keys directory peers register
	reg    *registry.Registry // registered D-ring members, local and remote
	ipl    *ipLimiter
	m      *metrics
	cl     *cluster // nil without NATS
	stats  *siteStats

	readBufs sync.Pool

	poll *poller // nil: one reader goroutine per peer

	shutting atomic.Bool
	ready    atomic.Bool
	mux      *http.ServeMux
}

// New builds a server from cfg (zero fields take defaults). It does not
// listen or connect yet: see Run.
func New(cfg Config) (*Server, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bootstrap config: %w", err)
	}
	layout, err := keymgr.NewLayout(cfg.Localities, *cfg.InstanceBits)
	if err != nil {
		return nil, fmt.Errorf("bootstrap config: key layout: %w", err)
	}
	var inst [8]byte
	if _, err := rand.Read(inst[:]); err != nil {
		return nil, fmt.Errorf("instance id: %w", err)
	}
	s := &Server{
		cfg:          cfg,
		log:          cfg.Logger,
		instance:     hex.EncodeToString(inst[:]),
		allowOrigins: make(map[string]bool),
		allowSites:   make(map[ids.SiteID]bool),
		layout:       layout,
		reg:          registry.New(layout),
		ipl:          newIPLimiter(cfg.IPConnRate, cfg.IPConnBurst, cfg.MaxPeersPerIP),
		caps:         newQueueCaps(cfg),
	}
	for _, n := range cfg.PublicNames {
		c, _ := CanonicalName(n) // validated
		s.names = append(s.names, c)
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			s.allowAll = true
			continue
		}
		c, _ := CanonicalOrigin(o) // validated
		s.allowOrigins[c] = true
		s.allowSites[ids.SiteOf(c)] = true
	}
	s.stats = newSiteStats(cfg.ReportSites)
	for o := range s.allowOrigins {
		s.stats.know(ids.SiteOf(o), o)
	}
	s.peers.init()
	s.readBufs.New = func() any { b := make([]byte, cfg.MaxFrame+1); return &b }
	s.m = newMetrics(s)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/ws", s.serveWS)
	s.mux.HandleFunc("/v1/entry", s.cors(s.serveEntry))
	s.mux.HandleFunc("/v1/landmarks", s.cors(s.serveLandmarks))
	s.mux.HandleFunc("/v1/probe", s.cors(s.serveProbe))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	if cfg.OperatorToken != "" {
		s.serveDashboard()
	}
	if cfg.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return s, nil
}

// Instance is this instance's random id (as used on NATS).
func (s *Server) Instance() string { return s.instance }

// Handler is the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves on the listeners until ctx is cancelled, then shuts down
// gracefully: it stops accepting, tells every peer to reconnect elsewhere
// (GoAway, then a going-away close) and leaves NATS. It closes the listeners.
// Without Config.PublicNames the listeners must all be loopback ones (see
// LoopbackNames).
func (s *Server) Run(ctx context.Context, lns []net.Listener) error {
	if len(s.names) == 0 {
		addrs := make([]net.Addr, len(lns))
		for i, ln := range lns {
			addrs[i] = ln.Addr()
		}
		names, err := LoopbackNames(addrs)
		if err != nil {
			for _, ln := range lns {
				_ = ln.Close()
			}
			return fmt.Errorf("public names: %w", err)
		}
		s.names = names
	}
	s.log.Info("public names", "names", strings.Join(s.names, ","))
	if s.cfg.NATSURL != "" {
		cl, err := newCluster(s)
		if err != nil {
			for _, ln := range lns {
				_ = ln.Close()
			}
			return err
		}
		s.cl = cl
	}
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// The poller exists before the first connection is accepted: serveWS
	// reads s.poll.
	if s.cfg.Poller {
		pl, err := newPoller(s)
		if err != nil {
			s.log.Warn("no poller: one goroutine per peer", "err", err)
		} else {
			s.poll = pl
		}
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	bg, stopBG := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	bgDone.Add(1)
	go func() { defer bgDone.Done(); s.sweepLoop(bg) }()
	bgDone.Add(1)
	go func() { defer bgDone.Done(); s.sampleLoop(bg) }()
	if s.cl != nil {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.cl.run(bg) }()
	}
	if s.poll != nil {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); s.poll.run(bg) }()
	}
	s.ready.Store(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.log.Info("shutting down", "peers", s.npeers.Load(), "reason", context.Cause(ctx))
	s.ready.Store(false)
	s.shutting.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	s.goAwayAll(sctx)
	stopBG()
	bgDone.Wait()
	if s.poll != nil {
		s.poll.close()
	}
	if s.cl != nil {
		s.cl.close()
	}
	s.log.Info("stopped")
	return runErr
}

// goAwayAll tells every peer to reconnect elsewhere and closes it, in
// parallel, within ctx; what is left when ctx ends is closed at once.
func (s *Server) goAwayAll(ctx context.Context) {
	ga := (&frame.Frame{Type: frame.TGoAway, Retry: 1000, URLs: s.cfg.Alternates,
		Text: "server shutting down: reconnect elsewhere"}).Append(nil)
	sem := make(chan struct{}, 512)
	var wg sync.WaitGroup
	for _, p := range s.peers.all() {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.goAway(ctx, ga)
		}()
	}
	wg.Wait()
	for _, p := range s.peers.all() {
		p.cleanup() // whatever did not close in time
	}
}

// sweepLoop pings quiet peers, drops idle ones and forgets stale IPs.
func (s *Server) sweepLoop(ctx context.Context) {
	tick := min(s.cfg.PingInterval, s.cfg.IdleTimeout) / 3
	tick = max(tick, 50*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastIPSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			nowNs := now.UnixNano()
			for _, p := range s.peers.all() {
				quiet := time.Duration(nowNs - p.lastSeen.Load())
				if quiet > s.cfg.IdleTimeout {
					p.fail(frame.CodeIdle, 0, "idle timeout: send a ping frame every ping interval", false)
				}
			}
			if now.Sub(lastIPSweep) > time.Minute {
				s.ipl.sweep(now.Add(-time.Minute))
				lastIPSweep = now
			}
		}
	}
}

// sampleLoop samples the operator page's time series.
func (s *Server) sampleLoop(ctx context.Context) {
	s.stats.sample(time.Now())
	t := time.NewTicker(s.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.stats.sample(now)
		}
	}
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case !s.ready.Load():
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	case s.cl != nil && !s.cl.connected():
		http.Error(w, "nats disconnected", http.StatusServiceUnavailable)
	case s.npeers.Load() >= int64(s.cfg.MaxPeers):
		http.Error(w, "full", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

// originAllowed reports whether a browser page of origin may use the service.
// An empty origin (a native peer, not a browser) is allowed.
func (s *Server) originAllowed(origin string) bool {
	if origin == "" || s.allowAll {
		return true
	}
	c, err := CanonicalOrigin(origin)
	return err == nil && s.allowOrigins[c]
}

func (s *Server) siteAllowed(site ids.SiteID) bool {
	return s.allowAll || s.allowSites[site]
}

// cors wraps a read-only API handler: origin allow-list, CORS headers,
// preflight, the per-IP rate limit and GET only.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !s.originAllowed(origin) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Timing-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		switch r.Method {
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodGet, http.MethodHead:
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if ip := clientIP(r); !s.ipl.allow(ip) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		h(w, r)
	}
}

// ParseSite accepts a site as an origin (https://example.com) or as the
// 16-hex-digit SiteID.
func ParseSite(v string) (ids.SiteID, error) {
	if len(v) == 16 && !strings.Contains(v, ":") {
		n, err := strconv.ParseUint(v, 16, 64)
		if err == nil {
			return ids.SiteID(n), nil
		}
	}
	c, err := CanonicalOrigin(v)
	if err != nil {
		return 0, err
	}
	return ids.SiteOf(c), nil
}

// serveEntry answers GET /v1/entry?site=&loc=&n=: the site's directories in
// locality loc and elsewhere, and n random D-ring members. Without site, only
// the random members (loc is then optional).
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var site ids.SiteID
	if v := q.Get("site"); v != "" {
		var err error
		if site, err = ParseSite(v); err != nil || site == 0 {
			http.Error(w, "site: want an origin or a 16-hex-digit site id", http.StatusBadRequest)
			return
		}
	}
	loc := 0
	if v := q.Get("loc"); v != "" || site != 0 {
		var err error
		loc, err = strconv.Atoi(v)
		if err != nil || loc < 0 || loc >= s.cfg.Localities {
			http.Error(w, fmt.Sprintf("loc: want an integer in [0, %d)", s.cfg.Localities), http.StatusBadRequest)
			return
		}
	}
	n := 8
	if v := q.Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "n: want an integer >= 0", http.StatusBadRequest)
			return
		}
	}
	s.m.entryHTTP.Inc()
	a := s.entries(site, loc, n, ids.PeerID{})
	rep := frame.EntriesJSON{Loc: loc, Local: frame.MembersJSON(a.Local), Remote: frame.MembersJSON(a.Remote), Random: frame.MembersJSON(a.Random)}
	if site != 0 {
		rep.Site = fmt.Sprintf("%016x", uint64(site))
	}
	writeJSON(w, rep)
}

// entries answers an entry-point request from the registry (HTTP and
// socket alike).
func (s *Server) entries(site ids.SiteID, loc, n int, exclude ids.PeerID) registry.Answer {
	q := registry.Query{Site: site, Loc: loc, N: min(n, s.cfg.EntryMax), Exclude: exclude}
	return s.reg.Entries(q, nil, time.Now().UnixMilli())
}

type landmarksReply struct {
	Localities int      `json:"localities"`
	Landmarks  []string `json:"landmarks"`
	Probe      string   `json:"probe"`
}

func (s *Server) serveLandmarks(w http.ResponseWriter, r *http.Request) {
	lm := s.cfg.Landmarks
	if lm == nil {
		lm = []string{}
	}
	writeJSON(w, landmarksReply{Localities: s.cfg.Localities, Landmarks: lm, Probe: "/v1/probe"})
}

// serveProbe is the cheapest possible answer, for RTT timing.
func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// peerTable is a sharded map of connected peers.
type peerTable struct {
	shards [64]peerShard
}

type peerShard struct {
	mu sync.RWMutex
	m  map[ids.PeerID]*peer
}

func (t *peerTable) init() {
	for i := range t.shards {
		t.shards[i].m = make(map[ids.PeerID]*peer)
	}
}

func (t *peerTable) shard(id ids.PeerID) *peerShard { return &t.shards[id[0]&63] }

func (t *peerTable) get(id ids.PeerID) *peer {
	sh := t.shard(id)
	sh.mu.RLock()
	p := sh.m[id]
	sh.mu.RUnlock()
	return p
}

// put stores p and returns the peer it replaced, if any.
func (t *peerTable) put(p *peer) *peer {
	sh := t.shard(p.id)
	sh.mu.Lock()
	old := sh.m[p.id]
	sh.m[p.id] = p
	sh.mu.Unlock()
	return old
}

// del removes p if it is still the entry for its id.
func (t *peerTable) del(p *peer) bool {
	sh := t.shard(p.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[p.id] == p {
		delete(sh.m, p.id)
		return true
	}
	return false
}

func (t *peerTable) all() []*peer {
	var out []*peer
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for _, p := range sh.m {
			out = append(out, p)
		}
		sh.mu.RUnlock()
	}
	return out
}

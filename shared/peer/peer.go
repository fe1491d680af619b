// Package peer is the Flower-CDN peer host shared by the native peer
// (`flower peer`, `flower get`) and the browser's page-side peer: it drives
// the protocol core through the host driver (shared/host) and gives it a
// connection manager between peers (Net, WebRTC data channels), origin
// fetches, a Store of verified objects, and a bootstrap session (entry
// points, registrations, WebRTC signalling).
//
// It enforces the integrity and privacy rules (docs/integrity.md): only the
// site's whitelisted URLs, fetched with GET, answered with a public
// cacheable response and signed by the site, are stored and served; every
// object from a peer is verified before it is stored or used, and a peer
// that sends a bad one is reported to the core, which avoids it.
package peer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/webfetch"
)

// Config configures a Peer. Bootstrap, Sites, Store, Key and Net are
// required.
type Config struct {
	// Bootstrap is the bootstrap service: its base URL (http(s)://host:port)
	// or the WebSocket URL of /v1/ws.
	Bootstrap string
	// Sites are the origins (https://example.org) whose petals the peer
	// joins.
	Sites []string
	// Store keeps objects and state; Close closes it if it is an
	// io.Closer.
	Store Store
	// Key is the peer's identity; its id is derived from the public key.
	// Keep it across restarts, or the peer cannot rejoin from its view.
	Key ed25519.PrivateKey
	// Net builds the connection manager.
	Net NewNet
	// Core tunes the protocol (CacheBytes is the per-site quota);
	// Localities and InstanceBits come from the bootstrap service. Zero:
	// core.DefaultConfig().
	Core core.Config
	// Locality is the peer's locality; -1 times the bootstrap's landmarks.
	Locality int
	// HTTPClient fetches from origins and landmarks (nil: a client with
	// OriginTimeout).
	HTTPClient *webfetch.Client
	// Logger receives the peer's logs (nil: discarded).
	Logger *slog.Logger
	// MaxObjectSize bounds an object taken from the origin or a peer
	// (default 64 MiB).
	MaxObjectSize int64
	// MaxUploads bounds the objects served at once (default 8); queries
	// beyond it are not served and time out at the asker.
	MaxUploads int
	// TransferTimeout plus Size/MinTransferRate bounds one transfer
	// (defaults 10 s and 256 KiB/s).
	TransferTimeout time.Duration
	MinTransferRate int64
	// OriginTimeout bounds an origin fetch (default 30 s).
	OriginTimeout time.Duration
	// CallerStores: objects a Lookup gets from peers are stored by the
	// Lookup's caller (Result.Keep), which reports them with Fetched as
	// it does its origin fetches; the peer serves them from memory until
	// then (at most OriginTimeout). The browser's page-side peer sets it:
	// its service worker stores, off the page's thread.
	CallerStores bool
	// Seed seeds the core's randomness (0: random).
	Seed uint64
	// Restrictions apply from the start (SetRestrictions changes them).
	Restrictions core.Restrictions
	// UploadLimit caps the upload rate in bytes per second, all uploads
	// together (0: none; SetUploadLimit changes it).
	UploadLimit int64
	// Left are sites of Sites the visitor left (Leave): the peer does not
	// join them (Rejoin does).
	Left []string

	// Operator metrics (docs/operator-metrics.md). Every ReportPeriod
	// (default DefaultReportPeriod), and once more on Close, the peer
	// reports to the bootstrap service, per site, what Counters counted
	// since its previous report. NoReport turns reports off (the site's
	// data-metrics="off").
	ReportPeriod time.Duration
	NoReport     bool
	// Counters returns the cumulative counters of a site (an origin);
	// nil: the peer's own (SiteCounters).
	Counters func(origin string) opmetrics.SiteCounters
	// ReportBase, if set, returns at start what earlier runs already
	// reported of Counters' values (what Reported was last given), for a
	// source that outlives the peer (the browser's service worker).
	ReportBase func(origin string) opmetrics.SiteCounters
	// Reported, if set, is told the values of Counters a report covered.
	Reported func(origin string, c opmetrics.SiteCounters)
}

func (c *Config) setDefaults() error {
	switch {
	case c.Bootstrap == "":
		return errors.New("peer: no bootstrap service")
	case len(c.Sites) == 0:
		return errors.New("peer: no site")
	case c.Store == nil:
		return errors.New("peer: no store")
	case len(c.Key) != ed25519.PrivateKeySize:
		return errors.New("peer: no identity key")
	case c.Net == nil:
		return errors.New("peer: no connection manager")
	}
	if c.Core.ViewSize == 0 {
		c.Core = core.DefaultConfig()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxObjectSize <= 0 {
		c.MaxObjectSize = 64 << 20
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = 8
	}
	if c.TransferTimeout <= 0 {
		c.TransferTimeout = 10 * time.Second
	}
	if c.MinTransferRate <= 0 {
		c.MinTransferRate = 256 << 10
	}
	if c.OriginTimeout <= 0 {
		c.OriginTimeout = 30 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &webfetch.Client{Timeout: c.OriginTimeout}
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.ReportPeriod <= 0 {
		c.ReportPeriod = DefaultReportPeriod
	}
	return nil
}

// transferBudget bounds the transfer of an object of size bytes.
func (c *Config) transferBudget(size int64) time.Duration {
	return c.TransferTimeout + time.Duration(float64(size)/float64(c.MinTransferRate)*float64(time.Second))
}

// Peer is a running Flower-CDN peer.
type Peer struct {
	cfg   Config
	log   *slog.Logger
	id    ids.PeerID
	loc   int
	epoch time.Time // the node's clock is time since epoch
	boot  *bootSession
	net   Net
	*fetcher

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	saveCh chan []byte // the latest state to save (capacity 1)

	uploads chan struct{} // semaphore of Serve goroutines
	held    held          // objects the Lookup caller stores (CallerStores)

	stats counters
	rep   reporter

	// The visitor's controls (visitor.go).
	noServe atomic.Bool
	upLimit limiter
	left    sync.Map // ids.SiteID → true: sites the visitor left

	mu      sync.Mutex // guards everything below and every Driver call
	drv     *host.Driver
	timer   *time.Timer
	closed  bool
	sites   map[ids.SiteID]*site
	queries map[uint64]*pending // own queries by qid
	// delegated are queries waiting for an origin fetch that the caller of
	// Lookup makes (by URL, then qid).
	delegated map[string]map[uint64]*pending
	early     map[uint64]core.Answer
	earlyF    map[uint64]bool // origin fetches asked before the query was registered
}

// counters are the peer's statistics (see Stats).
type counters struct {
	fromLocal, fromPeer, fromOrigin       atomic.Int64
	bytesPeer, bytesOrigin                atomic.Int64
	served, bytesUp, uploadsDropped       atomic.Int64
	verifyFailures, transferFailures      atomic.Int64
	privateResponses, unsignedResponses   atomic.Int64
	entryRequests, badFrames, storeErrors atomic.Int64
	bytesIn                               atomic.Int64 // body bytes from peers as they arrive
}

// Stats are a peer's counters since it started.
type Stats struct {
	FromLocal, FromPeer, FromOrigin int64 // answered queries by source
	BytesFromPeers, BytesFromOrigin int64
	Served, BytesUploaded           int64 // objects and bytes served to peers
	UploadsDropped                  int64 // serves refused: MaxUploads busy
	VerifyFailures                  int64 // objects from peers that failed verification
	TransferFailures                int64 // transfers from peers that broke off
	PrivateResponses                int64 // origin responses not shareable (privacy rules, whitelist)
	UnsignedResponses               int64 // shareable origin responses without a valid statement
	EntryRequests                   int64 // entry-point requests sent to the bootstrap service
	BadFrames                       int64 // protocol messages from peers that failed to decode
	StoreErrors                     int64
	// BytesIn counts object bytes from peers as they arrive (a transfer
	// under way shows here before it completes).
	BytesIn int64
}

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	c := &p.stats
	return Stats{
		FromLocal: c.fromLocal.Load(), FromPeer: c.fromPeer.Load(), FromOrigin: c.fromOrigin.Load(),
		BytesFromPeers: c.bytesPeer.Load(), BytesFromOrigin: c.bytesOrigin.Load(),
		Served: c.served.Load(), BytesUploaded: c.bytesUp.Load(), UploadsDropped: c.uploadsDropped.Load(),
		VerifyFailures: c.verifyFailures.Load(), TransferFailures: c.transferFailures.Load(),
		PrivateResponses: c.privateResponses.Load(), UnsignedResponses: c.unsignedResponses.Load(),
		EntryRequests: c.entryRequests.Load(), BadFrames: c.badFrames.Load(), StoreErrors: c.storeErrors.Load(),
		BytesIn: c.bytesIn.Load(),
	}
}

// ID is the peer's id.
func (p *Peer) ID() ids.PeerID { return p.id }

// Locality is the peer's locality.
func (p *Peer) Locality() int { return p.loc }

// Role is the peer's role for the site (an origin).
func (p *Peer) Role(origin string) core.Role {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drv.Node().Role(ids.SiteOf(origin))
}

// Node runs fn with the driven node under the peer's lock, for reading its
// state (tests, diagnostics). fn must not call the node's inputs.
func (p *Peer) Node(fn func(n *core.Node)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.drv.Node())
}

// now is the node's clock.
func (p *Peer) now() time.Duration { return time.Since(p.epoch) }

// input runs fn (a Driver input) under the lock and re-arms the timer. It
// does nothing once the peer is closed.
func (p *Peer) input(fn func(now time.Duration)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.drv == nil {
		return
	}
	fn(p.now())
	p.rearm()
}

// rearm points the timer at the node's next tick. Called under p.mu.
func (p *Peer) rearm() {
	next := p.drv.NextTick()
	if next < 0 {
		return
	}
	d := max(next-p.now(), 0)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.tick)
		return
	}
	p.timer.Reset(d)
}

func (p *Peer) tick() { p.input(func(now time.Duration) { p.drv.Tick(now) }) }

// goFunc runs fn in a goroutine that Close waits for.
func (p *Peer) goFunc(fn func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
}

// Start connects to the bootstrap service, finds the peer's locality,
// reads each site's well-known file, restores the stored state if any
// (rejoining each petal from its stored view) or joins afresh, and returns
// the running peer. ctx bounds the start only; Close stops the peer.
func Start(ctx context.Context, cfg Config) (*Peer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Peer{
		cfg: cfg, log: cfg.Logger, epoch: time.Now(),
		saveCh: make(chan []byte, 1), uploads: make(chan struct{}, cfg.MaxUploads),
		sites: make(map[ids.SiteID]*site), queries: make(map[uint64]*pending),
		delegated: make(map[string]map[uint64]*pending),
		early:     make(map[uint64]core.Answer), earlyF: make(map[uint64]bool),
	}
	p.noServe.Store(cfg.Restrictions.NoServe)
	p.upLimit.setRate(cfg.UploadLimit)
	for _, origin := range cfg.Left {
		p.left.Store(ids.SiteOf(origin), true)
	}
	p.fetcher = &fetcher{client: cfg.HTTPClient, timeout: cfg.OriginTimeout, maxSize: cfg.MaxObjectSize, log: cfg.Logger, stats: &p.stats}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			p.shutdown()
		}
	}()
	for _, origin := range cfg.Sites {
		s, err := p.loadSite(ctx, origin)
		if err != nil {
			return nil, err
		}
		p.sites[s.id] = s
	}
	boot, err := dialBootstrap(ctx, p, cfg.Bootstrap, cfg.Key)
	if err != nil {
		return nil, err
	}
	p.boot = boot
	p.id = boot.id
	if p.loc = cfg.Locality; p.loc < 0 {
		if p.loc, err = p.findLocality(ctx, boot); err != nil {
			return nil, err
		}
	}
	ccfg := cfg.Core
	ccfg.Localities, ccfg.InstanceBits = boot.localities, boot.instanceBits
	if p.loc >= ccfg.Localities {
		return nil, fmt.Errorf("peer: locality %d out of the service's %d", p.loc, ccfg.Localities)
	}
	if p.net, err = cfg.Net(p.id, boot, netHandler{p}); err != nil {
		return nil, fmt.Errorf("peer: connection manager: %w", err)
	}
	p.goFunc(p.saver)
	if err := p.startNode(ccfg); err != nil {
		return nil, err
	}
	p.goFunc(boot.run)
	if !cfg.NoReport {
		p.goFunc(p.reportLoop)
	}
	ok = true
	p.log.Info("peer started", "id", p.id.Short(), "locality", p.loc, "sites", len(p.sites))
	return p, nil
}

// Close leaves the network: the node goes offline (its registrations are
// withdrawn), its state is saved, and connections close.
func (p *Peer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	// The last report goes before the registrations are withdrawn: the
	// service counts reports for registered sites only.
	p.finalReport()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	var st []byte
	if p.drv != nil {
		p.drv.GoOffline(p.now())
		st = p.encodeState(p.drv.Node().Snapshot())
	}
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	// The saver stops first, so that no older state it holds lands after
	// the final one.
	p.shutdown()
	var err error
	if st != nil {
		if err = p.cfg.Store.SaveState(st); err != nil {
			err = fmt.Errorf("peer: save state: %w", err)
		}
	}
	if c, ok := p.cfg.Store.(io.Closer); ok {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("peer: close store: %w", cerr)
		}
	}
	p.log.Info("peer stopped", "id", p.id.Short())
	return err
}

// shutdown stops the goroutines and closes the connections.
func (p *Peer) shutdown() {
	p.cancel()
	if p.net != nil {
		_ = p.net.Close()
	}
	if p.boot != nil {
		p.boot.close()
	}
	p.wg.Wait()
}

// saver writes the latest state handed to it.
func (p *Peer) saver() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case b := <-p.saveCh:
			if err := p.cfg.Store.SaveState(b); err != nil {
				p.stats.storeErrors.Add(1)
				p.log.Warn("save state", "err", err)
			}
		}
	}
}

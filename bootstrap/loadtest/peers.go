package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// lpeer is one simulated peer.
type lpeer struct {
	c       *client.Client
	partner atomic.Pointer[ids.PeerID]
}

var epoch = time.Now()

// runPeers connects peers [first, first+n), runs the load, closes them.
func runPeers(ctx context.Context, cfg Config, first, n int, res *Result, ph phases) error {
	errs := &errorCounter{m: map[string]int64{}, log: cfg.Log}
	begin := time.Now()
	var recv, sent atomic.Int64
	loadOn := atomic.Bool{}
	peers := connectPeers(ctx, cfg, first, n, errs)
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

// connectPeers dials peers [first, first+n) with cfg.Dialers at once and
// registers each; a peer that could not connect is nil.
func connectPeers(ctx context.Context, cfg Config, first, n int, errs *errorCounter) []*lpeer {
	site := ids.SiteOf(cfg.Site)
	clients := httpClients(cfg, first)
	peers := make([]*lpeer, n)
	var next atomic.Int64
	var wg sync.WaitGroup
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
				reg, err := registration(c, cfg, site, g)
				if err != nil {
					errs.add("register", err)
				} else if err := c.Register(ctx, reg); err != nil {
					errs.add("register", err)
				}
				peers[i] = &lpeer{c: c}
			}
		}()
	}
	wg.Wait()
	return peers
}

// registration is what peer number g registers: a directory peer of site
// (a cfg.Directory share of the peers) with its D-ring key in the layout the
// service announced (instances spread over the petal), else a content peer;
// in locality g mod k.
func registration(c *client.Client, cfg Config, site ids.SiteID, g int) (frame.Reg, error) {
	k := cfg.Localities // never more than the server announced in its challenge
	if sk := int(c.Challenge.Localities); sk > 0 && sk < k {
		k = sk
	}
	loc := g % k
	if cfg.Directory <= 0 || float64(g%1000) >= cfg.Directory*1000 {
		return frame.Reg{Site: site, Loc: uint16(loc), Role: frame.RoleContent}, nil
	}
	l, err := c.Layout()
	if err != nil {
		return frame.Reg{}, err
	}
	return c.DirectoryReg(site, loc, (g/k)%l.MaxInstances())
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

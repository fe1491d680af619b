package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"golang.org/x/time/rate"
)

// The visitor's controls over what the peer does for others (the browser's
// dashboard, docs/browser.md): restrictions (no directory role, no
// uploads), an upload rate cap, clearing the cache, leaving a site. Each
// takes effect at once; the caller persists them.

// ErrUploadsOff ends an upload under way when uploads are turned off.
var ErrUploadsOff = errors.New("peer: uploads turned off")

// ErrLeft: the visitor left the site (Leave); Lookup answers it, wrapped
// with ErrOrigin: the caller fetches from the origin outside Flower-CDN.
var ErrLeft = errors.New("peer: the visitor left this site")

// SetRestrictions sets the node's restrictions (core.Restrictions): with
// NoServe, uploads under way end too.
func (p *Peer) SetRestrictions(r core.Restrictions) {
	p.noServe.Store(r.NoServe)
	p.input(func(now time.Duration) { p.drv.SetRestrictions(now, r) })
}

// Restrictions returns the node's restrictions.
func (p *Peer) Restrictions() core.Restrictions {
	var r core.Restrictions
	p.Node(func(n *core.Node) { r = n.Restrictions() })
	return r
}

// SetUploadLimit caps the peer's upload rate, all uploads together, at bps
// bytes per second (0: no cap). It applies to uploads under way too.
func (p *Peer) SetUploadLimit(bps int64) { p.upLimit.setRate(bps) }

// UploadLimit is the upload cap in bytes per second (0: none).
func (p *Peer) UploadLimit() int64 { return p.upLimit.rateNow() }

// Clear drops every object the peer caches for the site (an origin): the
// node forgets them (its directory hears at the next push) and the store
// deletes them, with any stored object of the site the node did not list.
// It returns how many objects went.
func (p *Peer) Clear(origin string) (int, error) {
	site := ids.SiteOf(origin)
	if p.sites[site] == nil {
		return 0, fmt.Errorf("peer: clear %s: %w", origin, ErrNotSite)
	}
	n := 0
	p.input(func(now time.Duration) {
		for _, ss := range p.drv.Node().Snapshot().Sites {
			if ss.Site != site {
				continue
			}
			for _, o := range ss.Objects {
				p.drv.Invalidate(now, site, o.Obj)
				n++
			}
		}
	})
	stored, err := p.cfg.Store.List()
	if err != nil {
		return n, fmt.Errorf("peer: clear %s: %w", origin, err)
	}
	for _, e := range stored {
		if e.Site != site {
			continue
		}
		obj := ids.ObjectOf(e.URL)
		p.held.release(site, obj)
		if err := p.cfg.Store.Delete(site, obj); err != nil {
			return n, fmt.Errorf("peer: clear %s: %w", origin, err)
		}
		n++
	}
	return n, nil
}

// Leave makes the peer leave the site (core RemoveInterest: with
// Config.Core.LeaveHandover its directory position is handed over and its
// directory told it holds nothing). Lookups of the site then answer
// ErrLeft; Rejoin undoes it. Start leaves the sites of Config.Left.
func (p *Peer) Leave(origin string) error {
	site := ids.SiteOf(origin)
	if p.sites[site] == nil {
		return fmt.Errorf("peer: leave %s: %w", origin, ErrNotSite)
	}
	p.left.Store(site, true)
	p.input(func(now time.Duration) { p.drv.RemoveInterest(now, site) })
	return nil
}

// Rejoin takes part in a site the visitor left again: the peer joins its
// petal at its next query, as a new client.
func (p *Peer) Rejoin(origin string) error {
	site := ids.SiteOf(origin)
	if p.sites[site] == nil {
		return fmt.Errorf("peer: rejoin %s: %w", origin, ErrNotSite)
	}
	p.left.Delete(site)
	p.input(func(now time.Duration) { p.drv.AddInterest(now, site) })
	return nil
}

// Left reports whether the visitor left the site (an origin).
func (p *Peer) Left(origin string) bool { return p.hasLeft(ids.SiteOf(origin)) }

func (p *Peer) hasLeft(site ids.SiteID) bool {
	_, ok := p.left.Load(site)
	return ok
}

// uploadBody wraps an upload's body: it fails once uploads are turned off,
// and paces reads to the upload cap.
func (p *Peer) uploadBody(ctx context.Context, body io.Reader) io.Reader {
	return &pacedReader{ctx: ctx, r: body, lim: &p.upLimit, off: &p.noServe}
}

type pacedReader struct {
	ctx context.Context
	r   io.Reader
	lim *limiter
	off *atomic.Bool
}

func (r *pacedReader) Read(b []byte) (int, error) {
	if r.off.Load() {
		return 0, ErrUploadsOff
	}
	if step := r.lim.step(); step > 0 && len(b) > step {
		b = b[:step]
	}
	n, err := r.r.Read(b)
	if werr := r.lim.wait(r.ctx, n); werr != nil {
		return 0, werr
	}
	if r.off.Load() {
		return 0, ErrUploadsOff
	}
	return n, err
}

// limiter is the upload cap shared by the peer's uploads: a token bucket
// (golang.org/x/time/rate) of rate bytes per second with a burst of a
// quarter second. Uploads take at most an eighth of a second's bytes per
// read, so a rate change applies to uploads under way within that.
type limiter struct {
	mu sync.Mutex
	l  *rate.Limiter // nil: no cap
}

func (l *limiter) setRate(bps int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bps <= 0 {
		l.l = nil
		return
	}
	burst := int(max(bps/4, 1024))
	if l.l == nil {
		l.l = rate.NewLimiter(rate.Limit(bps), burst)
		l.l.AllowN(time.Now(), burst) // no burst at the start: the cap from the first byte
		return
	}
	l.l.SetLimit(rate.Limit(bps))
	l.l.SetBurst(burst)
}

func (l *limiter) get() *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.l
}

func (l *limiter) rateNow() int64 {
	if r := l.get(); r != nil {
		return int64(r.Limit())
	}
	return 0
}

// step is how many bytes the next read may take (0: any).
func (l *limiter) step() int {
	if r := l.get(); r != nil {
		return int(min(max(int64(r.Limit())/8, 512), int64(r.Burst())))
	}
	return 0
}

// wait blocks until n bytes just read may go out.
func (l *limiter) wait(ctx context.Context, n int) error {
	r := l.get()
	if r == nil || n == 0 {
		return nil
	}
	if err := r.WaitN(ctx, min(n, r.Burst())); err != nil {
		return fmt.Errorf("peer: upload paced: %w", err)
	}
	return nil
}

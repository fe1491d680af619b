package bootstrap

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter holds per-client-IP state: a token bucket for new connections and
// HTTP API requests, and the number of connected peers.
type ipLimiter struct {
	rate     rate.Limit
	burst    int
	maxPeers int

	mu sync.Mutex
	m  map[netip.Addr]*ipEntry
}

type ipEntry struct {
	lim   *rate.Limiter
	peers int
	seen  time.Time
}

func newIPLimiter(r float64, burst, maxPeers int) *ipLimiter {
	return &ipLimiter{rate: rate.Limit(r), burst: burst, maxPeers: maxPeers, m: make(map[netip.Addr]*ipEntry)}
}

func (l *ipLimiter) entry(ip netip.Addr, now time.Time) *ipEntry {
	e := l.m[ip]
	if e == nil {
		e = &ipEntry{}
		if l.rate > 0 {
			e.lim = rate.NewLimiter(l.rate, l.burst)
		}
		l.m[ip] = e
	}
	e.seen = now
	return e
}

// allow spends one token of ip's bucket.
func (l *ipLimiter) allow(ip netip.Addr) bool {
	if l.rate <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entry(ip, now).lim.AllowN(now, 1)
}

// acquire counts one more peer for ip, or reports false at the cap.
func (l *ipLimiter) acquire(ip netip.Addr) bool {
	if l.maxPeers <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(ip, time.Now())
	if e.peers >= l.maxPeers {
		return false
	}
	e.peers++
	return true
}

func (l *ipLimiter) release(ip netip.Addr) {
	if l.maxPeers <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[ip]; e != nil && e.peers > 0 {
		e.peers--
	}
}

// sweep forgets IPs with no peer that were not seen since before.
func (l *ipLimiter) sweep(before time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, e := range l.m {
		if e.peers == 0 && e.seen.Before(before) {
			delete(l.m, ip)
		}
	}
}

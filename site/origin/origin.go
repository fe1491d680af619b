// Package origin is the demo origin server: a static web server for a signed
// Flower-CDN site directory (scripts/build-site.sh builds one) on a loopback
// address, with the headers a real site would send (content types, ranges,
// precompressed variants, cache lifetimes), an access log the browser tests
// read, and three dynamic endpoints that must never be shared between peers:
//
//	/me/login       sets the cookie flower_demo_session (Path=/me/)
//	/me/badge.jpg   with that cookie: a personal image, Cache-Control: private, Vary: Cookie;
//	                without it: the site's static, signed me/badge.jpg, also Vary: Cookie
//	/live/now.json  the server's clock, Cache-Control: no-store
//
// docs/site-operator.md shows it in use.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cache lifetimes, by kind of file.
const (
	CacheStatic     = "public, max-age=3600"
	CacheRevalidate = "no-cache" // HTML, the well-known files and /flower-sw.js
)

// DefaultListen is the address flower origin listens on by default.
const DefaultListen = "127.0.0.1:8080"

// DefaultMaxRecords bounds the in-memory access log.
const DefaultMaxRecords = 100_000

// Config configures a Server.
type Config struct {
	// Dir is the site directory to serve.
	Dir string
	// Listen is the host:port Start binds (default DefaultListen; port 0
	// picks one).
	Listen string
	// AllowPublic lets Start bind an address other than a loopback one.
	AllowPublic bool
	// LogFile, if set, receives every request as one JSON object per line.
	LogFile string
	// Logger receives one line per request (default slog.Default()).
	Logger *slog.Logger
	// MaxRecords bounds Requests (default DefaultMaxRecords; the oldest go).
	MaxRecords int
}

// ErrNotLoopback is returned by Start for a non-loopback Listen address
// without AllowPublic.
var ErrNotLoopback = errors.New("not a loopback address")

// Server serves one site directory. Its zero value is not usable; call New.
// It is an http.Handler, so tests may also mount it on an httptest.Server.
type Server struct {
	cfg  Config
	root *os.Root
	log  *slog.Logger
	acc  *accessLog
	live atomic.Int64 // /live/now.json answers so far

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// New opens the site directory and the log file, if any.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("origin: no site directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = DefaultMaxRecords
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("origin: site directory: %w", err)
	}
	acc, err := newAccessLog(cfg.LogFile, cfg.MaxRecords, cfg.Logger)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("origin: %w", err)
	}
	return &Server{cfg: cfg, root: root, log: cfg.Logger, acc: acc}, nil
}

// CheckListen refuses a listen address that is not loopback unless
// allowPublic: an empty host (every interface), a name other than
// "localhost", or an IP outside 127.0.0.0/8 and ::1.
func CheckListen(addr string, allowPublic bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if allowPublic {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q: %w (the demo origin serves only this machine unless allowed)", addr, ErrNotLoopback)
}

// Start binds the listen address and serves in the background until Close.
func (s *Server) Start() error {
	if err := CheckListen(s.cfg.Listen, s.cfg.AllowPublic); err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("origin: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("origin: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	srv, done := s.srv, s.done
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	s.log.Info("origin listening", "url", "http://"+ln.Addr().String(), "dir", s.cfg.Dir)
	return nil
}

// URL returns the origin's URL (http://host:port) once started, else "".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Done returns a channel that receives the serve error (nil after Close)
// once the server stops; nil before Start.
func (s *Server) Done() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Close stops the server, waiting up to 5 seconds for requests in flight,
// and closes the directory and the log file.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("origin: shutdown: %w", err))
			srv.Close()
		}
		cancel()
	}
	if err := s.root.Close(); err != nil {
		errs = append(errs, fmt.Errorf("origin: close site directory: %w", err))
	}
	if err := s.acc.close(); err != nil {
		errs = append(errs, fmt.Errorf("origin: close log: %w", err))
	}
	return errors.Join(errs...)
}

// Requests returns a copy of the access log so far, oldest first.
func (s *Server) Requests() []Request { return s.acc.snapshot() }

// ServeHTTP logs the request and answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	start, rng := time.Now(), r.Header.Get("Range") // serve may drop the Range
	defer func() { s.acc.add(start, r, rng, rec) }()
	s.serve(rec, r)
}

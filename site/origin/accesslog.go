package origin

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// Request is one access log entry.
type Request struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Path      string    `json:"path"` // the request URI: path and query
	Status    int       `json:"status"`
	Bytes     int64     `json:"bytes"` // body bytes written
	UserAgent string    `json:"user_agent,omitempty"`
	Range     string    `json:"range,omitempty"`
	// Encoding is the Content-Encoding served (br, gzip or empty).
	Encoding string `json:"encoding,omitempty"`
	// Cookie reports whether the request carried a Cookie header.
	Cookie   bool    `json:"cookie,omitempty"`
	Duration float64 `json:"ms"` // milliseconds from request to handler return
}

// recorder remembers the status and counts the body bytes.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog keeps the last max entries in memory and writes each to slog and
// to an optional JSON-lines file.
type accessLog struct {
	log *slog.Logger
	max int

	mu   sync.Mutex
	reqs []Request
	file *os.File
	enc  *json.Encoder
}

func newAccessLog(file string, max int, log *slog.Logger) (*accessLog, error) {
	a := &accessLog{log: log, max: max}
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		a.file, a.enc = f, json.NewEncoder(f)
	}
	return a, nil
}

func (a *accessLog) add(start time.Time, r *http.Request, rng string, rec *recorder) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing
	}
	e := Request{
		Time: start, Method: r.Method, Path: r.URL.RequestURI(), Status: status, Bytes: rec.bytes,
		UserAgent: r.UserAgent(), Range: rng,
		Encoding: rec.Header().Get("Content-Encoding"), Cookie: r.Header.Get("Cookie") != "",
		Duration: float64(time.Since(start).Microseconds()) / 1000,
	}
	a.log.Info("request", "method", e.Method, "path", e.Path, "status", e.Status, "bytes", e.Bytes,
		"range", e.Range, "encoding", e.Encoding, "cookie", e.Cookie, "ms", e.Duration, "ua", e.UserAgent)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) >= a.max {
		// Drop the oldest half at once: amortised O(1) per entry.
		n := copy(a.reqs, a.reqs[len(a.reqs)-a.max/2:])
		clear(a.reqs[n:])
		a.reqs = a.reqs[:n]
	}
	a.reqs = append(a.reqs, e)
	if a.enc != nil {
		if err := a.enc.Encode(e); err != nil {
			a.log.Warn("access log file", "err", err)
		}
	}
}

func (a *accessLog) snapshot() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.reqs...)
}

func (a *accessLog) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == nil {
		return nil
	}
	err := a.file.Close()
	a.file, a.enc = nil, nil
	return err
}

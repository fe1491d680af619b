package signer

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/security"
)

// DefaultMaxBuffer is the largest response body Middleware buffers to sign
// when MiddlewareOptions.MaxBuffer is 0.
const DefaultMaxBuffer = 32 << 20

// DefaultHeaderTTL is how long a statement made by Middleware stays valid
// when the response has no Cache-Control max-age and MiddlewareOptions.TTL
// is 0.
const DefaultHeaderTTL = time.Hour

// MiddlewareOptions tunes Middleware. The zero value is ready to use.
type MiddlewareOptions struct {
	// MaxBuffer is the largest body buffered for signing, in bytes; a larger
	// response is streamed through unsigned. 0 means DefaultMaxBuffer; at
	// most security.MaxObjectSize.
	MaxBuffer int64
	// TTL is the statement lifetime for responses without a Cache-Control
	// max-age. 0 means DefaultHeaderTTL.
	TTL time.Duration
	// Version returns the statement version for a request at time now. nil
	// means now in Unix microseconds, so a later response orders newer.
	Version func(r *http.Request, now time.Time) uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Middleware wraps next, the handler of a dynamic origin for the site
// wk.Site, and:
//
//   - serves the well-known document wk at security.WellKnownPath (GET and
//     HEAD; other methods get 405);
//   - for a GET request without Authorization, Proxy-Authorization or
//     Upgrade whose absolute URL (wk.Site + the request URI, query included)
//     wk.Shares, buffers the response of next up to MaxBuffer bytes and, if
//     security.Shareable holds for its status and headers as they were when
//     next wrote the status, the body has no Content-Encoding, no trailers and
//     no Content-Length other than its own, adds the security.StatementHeader
//     with a statement signed by key: the URL, the body's SHA-256, the
//     Content-Type (set explicitly from content sniffing when next did not
//     set one, as net/http would), the Version option, and an expiry of now
//     plus the Cache-Control max-age (a max-age of 0 or a malformed one: not
//     signed) or, without max-age, plus the TTL option.
//
// Everything else passes through untouched: other methods (HEAD included),
// URLs outside the share patterns, private responses (Set-Cookie, no-store,
// private, Vary: Cookie, status other than 200...). The body, status and
// headers of a response are never changed, apart from the added statement
// and the explicit Content-Type. A response whose body outgrows MaxBuffer,
// or whose handler calls Flush while it is buffered (streaming), is sent on
// unsigned and then streamed, with flushes forwarded.
//
// The statement is made for wk.Site whatever the request's Host header: wrap
// only the handler that serves that site. Middleware panics if key and wk do
// not match or wk is invalid (see NewMiddleware).
func Middleware(key security.SiteKey, wk security.WellKnown, next http.Handler, opt MiddlewareOptions) http.Handler {
	h, err := NewMiddleware(key, wk, next, opt)
	if err != nil {
		panic(err)
	}
	return h
}

// NewMiddleware is Middleware returning an error instead of panicking when
// key is zero, wk fails validation, wk.PublicKey is not key's public key,
// next is nil or an option is out of range.
func NewMiddleware(key security.SiteKey, wk security.WellKnown, next http.Handler, opt MiddlewareOptions) (http.Handler, error) {
	const op = "signer: middleware"
	switch {
	case key.IsZero():
		return nil, fmt.Errorf("%s: zero site key: %w", op, security.ErrInvalidKey)
	case wk.PublicKey != key.Public():
		return nil, fmt.Errorf("%s: well-known public key %s is not the signing key's %s: %w", op, wk.PublicKey, key.Public(), security.ErrInvalidKey)
	case next == nil:
		return nil, fmt.Errorf("%s: nil next handler: %w", op, ErrBadOption)
	case opt.MaxBuffer < 0 || opt.MaxBuffer > security.MaxObjectSize:
		return nil, fmt.Errorf("%s: MaxBuffer %d out of range [0, %d]: %w", op, opt.MaxBuffer, security.MaxObjectSize, ErrBadOption)
	case opt.TTL < 0 || opt.TTL > 0 && opt.TTL < time.Second:
		return nil, fmt.Errorf("%s: TTL %v: must be 0 (default) or at least 1s: %w", op, opt.TTL, ErrBadOption)
	}
	doc, err := wk.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m := &middleware{key: key, wk: wk, wkDoc: doc, next: next, opt: opt}
	if m.opt.MaxBuffer == 0 {
		m.opt.MaxBuffer = DefaultMaxBuffer
	}
	if m.opt.TTL == 0 {
		m.opt.TTL = DefaultHeaderTTL
	}
	if m.opt.Now == nil {
		m.opt.Now = time.Now
	}
	if m.opt.Version == nil {
		m.opt.Version = func(_ *http.Request, now time.Time) uint64 { return uint64(now.UnixMicro()) }
	}
	return m, nil
}

type middleware struct {
	key   security.SiteKey
	wk    security.WellKnown
	wkDoc []byte
	next  http.Handler
	opt   MiddlewareOptions
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == security.WellKnownPath && r.URL.RawPath == "" {
		m.serveWellKnown(w, r)
		return
	}
	if r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" ||
		r.Header.Get("Authorization") != "" || r.Header.Get("Proxy-Authorization") != "" {
		m.next.ServeHTTP(w, r)
		return
	}
	url := m.wk.Site + r.URL.RequestURI()
	if r.URL.Scheme != "" || r.URL.Host != "" || !m.wk.Shares(url) {
		m.next.ServeHTTP(w, r)
		return
	}
	sw := &signingWriter{w: w, m: m, r: r, url: url}
	m.next.ServeHTTP(sw, r)
	sw.finish()
}

func (m *middleware) serveWellKnown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(m.wkDoc)))
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m.wkDoc)
	}
}

// writer states.
const (
	stateHeader    = iota // status not written yet
	stateBuffering        // status held, body buffered for signing
	statePassing          // committed: writes go straight through
)

// signingWriter holds the status and body of a response it may sign. Before
// the status is written, the handler writes the real header map; after it,
// a copy (later changes are ignored, as net/http ignores them, apart from
// http.TrailerPrefix trailers, which are forwarded at the end).
type signingWriter struct {
	w      http.ResponseWriter
	m      *middleware
	r      *http.Request
	url    string
	state  int
	status int
	after  http.Header // the handler's header map once the status is written
	buf    bytes.Buffer
}

func (s *signingWriter) Header() http.Header {
	if s.after != nil {
		return s.after
	}
	return s.w.Header()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *signingWriter) Unwrap() http.ResponseWriter { return s.w }

func (s *signingWriter) WriteHeader(code int) {
	if s.state != stateHeader {
		return // superfluous, as net/http treats it (it logs it)
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		s.w.WriteHeader(code) // informational (103 Early Hints): forward as is
		return
	}
	s.status = code
	s.after = s.w.Header().Clone()
	if !s.signable() {
		s.commit()
		return
	}
	s.state = stateBuffering
}

// signable reports whether the held status and headers allow signing.
func (s *signingWriter) signable() bool {
	h := s.w.Header()
	if ok, _ := security.Shareable(s.r.Method, s.r.Header, h, s.status); !ok {
		return false
	}
	for _, ce := range security.HeaderValues(h, "Content-Encoding") {
		if !strings.EqualFold(strings.TrimSpace(ce), "identity") {
			return false
		}
	}
	if len(security.HeaderValues(h, "Trailer")) > 0 || len(security.HeaderValues(h, "Content-Range")) > 0 || len(security.HeaderValues(h, "Content-Type")) > 1 {
		return false
	}
	switch cl := security.HeaderValues(h, "Content-Length"); len(cl) {
	case 0:
	case 1:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || n > s.m.opt.MaxBuffer {
			return false
		}
	default:
		return false
	}
	_, ok := s.expiry(s.m.opt.Now())
	return ok
}

// expiry is the statement's Expires at now: from Cache-Control max-age, else
// the TTL option. ok is false for max-age=0 or a malformed max-age.
func (s *signingWriter) expiry(now time.Time) (int64, bool) {
	age, found := int64(-1), false
	for _, d := range security.HeaderList(s.w.Header(), "Cache-Control") {
		name, val, _ := strings.Cut(d, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "max-age") {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		// Several max-age directives: the shortest wins.
		if !found || n < age {
			age, found = n, true
		}
	}
	if !found {
		return now.Add(s.m.opt.TTL).Unix(), true
	}
	const maxAge = 100 * 365 * 24 * 3600 // keep the sum far from overflow
	if age == 0 {
		return 0, false
	}
	return now.Unix() + min(age, maxAge), true
}

func (s *signingWriter) Write(p []byte) (int, error) {
	if s.state == stateHeader {
		s.WriteHeader(http.StatusOK)
	}
	if s.state == statePassing {
		return s.w.Write(p)
	}
	if int64(s.buf.Len())+int64(len(p)) > s.m.opt.MaxBuffer {
		s.commit()
		return s.w.Write(p)
	}
	return s.buf.Write(p)
}

// Flush implements http.Flusher. A flush while buffering means the handler
// streams: the response goes on unsigned.
func (s *signingWriter) Flush() { _ = s.FlushError() }

// FlushError is the flush http.ResponseController uses.
func (s *signingWriter) FlushError() error {
	if s.state == stateHeader {
		s.WriteHeader(http.StatusOK)
	}
	if s.state == stateBuffering {
		s.commit()
	}
	return http.NewResponseController(s.w).Flush()
}

// commit sends the held status (the headers are already in the real map) and
// any buffered body, unsigned, and passes everything after it through.
func (s *signingWriter) commit() {
	s.state = statePassing
	s.w.WriteHeader(s.status)
	if s.buf.Len() > 0 {
		s.w.Write(s.buf.Bytes())
		s.buf = bytes.Buffer{}
	}
}

// finish runs after the handler returns: it signs and sends a buffered
// response, and forwards trailers.
func (s *signingWriter) finish() {
	if s.state == stateHeader {
		s.WriteHeader(http.StatusOK) // the handler wrote nothing: an empty 200
	}
	if s.state == stateBuffering {
		s.sign()
	}
	for k, v := range s.after {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			s.w.Header()[k] = v
		}
	}
}

func (s *signingWriter) sign() {
	h := s.w.Header()
	body := s.buf.Bytes()
	if cl := security.HeaderValues(h, "Content-Length"); len(cl) == 1 && cl[0] != strconv.Itoa(len(body)) {
		s.commit() // a body that breaks its own Content-Length is not signed
		return
	}
	ctype := security.HeaderValues(h, "Content-Type")
	switch {
	case len(ctype) == 0 && hasKey(h, "Content-Type"):
		ctype = []string{""} // a nil Content-Type: net/http sends none
	case len(ctype) == 0:
		// What net/http would send; set explicitly so that it is what is signed.
		ctype = []string{http.DetectContentType(body)}
		h.Set("Content-Type", ctype[0])
	}
	now := s.m.opt.Now()
	expires, ok := s.expiry(now)
	st := security.Statement{
		URL:         s.url,
		Digest:      security.BodyDigest(body),
		ContentType: ctype[0],
		Version:     s.m.opt.Version(s.r, now),
		Expires:     expires,
	}
	if ok && st.Validate() == nil {
		if v, err := security.EncodeStatementHeader(security.Sign(s.m.key, st)); err == nil {
			h.Set(security.StatementHeader, v)
		}
	}
	s.commit()
}

func hasKey(h http.Header, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strings"
)

// WellKnownPath is where the origin serves its WellKnown document, over HTTPS.
const WellKnownPath = "/.well-known/flower-cdn.json"

// Limits of a WellKnown document.
const (
	// MaxWellKnownSize is the largest document ParseWellKnown reads, in bytes.
	MaxWellKnownSize = 64 << 10
	// MaxSharePatterns is the largest number of share patterns.
	MaxSharePatterns = 256
	// MaxPatternLen is the longest share pattern, in bytes.
	MaxPatternLen = 1024
)

// ErrBadPattern reports a share pattern that breaks the pattern rules (see
// ValidatePattern).
var ErrBadPattern = errors.New("bad share pattern")

// WellKnown is the document the origin serves at WellKnownPath:
//
//	{"site":"https://example.org","public_key":"ed25519:...","share":["/static/*"]}
//
// Site is the origin in canonical form (lower-case scheme http or https, host,
// optional port; no path, query, fragment or user info). PublicKey is the
// site's key in its text form. Share lists the URL path patterns whose objects
// peers may share (see MatchPattern); an empty list shares nothing.
type WellKnown struct {
	Site      string    `json:"site"`
	PublicKey PublicKey `json:"public_key"`
	Share     []string  `json:"share"`
}

// ParseWellKnown parses and validates a WellKnown document. Unknown members are
// ignored (room for later versions); data after the JSON object, a document
// over MaxWellKnownSize (ErrTooLarge) or one that fails Validate is rejected.
func ParseWellKnown(data []byte) (WellKnown, error) {
	const op = "security: parse well-known document"
	var w WellKnown
	if len(data) > MaxWellKnownSize {
		return w, fmt.Errorf("%s: %d bytes, limit %d: %w", op, len(data), MaxWellKnownSize, ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		if errors.Is(err, ErrInvalidKey) {
			return WellKnown{}, fmt.Errorf("%s: public_key: %w", op, err)
		}
		return WellKnown{}, fmt.Errorf("%s: %v: %w", op, err, ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return WellKnown{}, fmt.Errorf("%s: data after the JSON object: %w", op, ErrMalformed)
	}
	if err := w.validate(); err != nil {
		return WellKnown{}, fmt.Errorf("%s: %w", op, err)
	}
	return w, nil
}

// Validate checks the document: Site in canonical origin form (ErrMalformed), a
// non-zero PublicKey (ErrInvalidKey), and at most MaxSharePatterns patterns
// (ErrTooLarge) that each pass ValidatePattern (ErrBadPattern).
func (w WellKnown) Validate() error {
	if err := w.validate(); err != nil {
		return fmt.Errorf("security: invalid well-known document: %w", err)
	}
	return nil
}

func (w WellKnown) validate() error {
	if err := checkOrigin(w.Site); err != nil {
		return fmt.Errorf("site %s: %w", clip(w.Site), err)
	}
	if w.PublicKey.IsZero() {
		return fmt.Errorf("public_key missing or all-zero: %w", ErrInvalidKey)
	}
	if len(w.Share) > MaxSharePatterns {
		return fmt.Errorf("%d share patterns, limit %d: %w", len(w.Share), MaxSharePatterns, ErrTooLarge)
	}
	for i, p := range w.Share {
		if err := ValidatePattern(p); err != nil {
			return fmt.Errorf("share[%d]: %w", i, err)
		}
	}
	return nil
}

// checkOrigin accepts "scheme://host[:port]" with scheme http or https, in the
// canonical form net/url gives it (lower-case scheme), with a lower-case host.
func checkOrigin(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c > 0x7e {
			return fmt.Errorf("byte 0x%02x at %d is not printable ASCII: %w", c, i, ErrMalformed)
		}
	}
	u, err := neturl.Parse(s)
	if err != nil {
		return fmt.Errorf("does not parse: %w", ErrMalformed)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https: %w", ErrMalformed)
	}
	if u.Host == "" || u.Host != strings.ToLower(u.Host) {
		return fmt.Errorf("host must be present and lower-case: %w", ErrMalformed)
	}
	if s != u.Scheme+"://"+u.Host {
		return fmt.Errorf("not an origin of the form scheme://host[:port] (no path, query, fragment or user info): %w", ErrMalformed)
	}
	return nil
}

// CanonicalOrigin turns a site URL into its origin in the canonical form of
// WellKnown.Site: lower-case http or https scheme and host, no default port
// (80, 443), no trailing slash. The URL may end in "/" but have no other
// path, no query, fragment or user info. Every part of the project that
// names a site (flower sign, flower peer, the bootstrap's allow-list) goes
// through it, so that they agree. Errors wrap ErrMalformed.
func CanonicalOrigin(raw string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("security: site URL %q: %s: %w", raw, why, ErrMalformed)
	}
	u, err := neturl.Parse(raw)
	switch {
	case err != nil:
		return bad("does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("has user info")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("has a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("has a fragment")
	case u.Path != "" && u.Path != "/":
		return bad("has a path other than \"/\"")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return bad("empty host")
	}
	if port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
		port = ""
	}
	origin := u.Scheme + "://" + host
	if port != "" {
		origin = u.Scheme + "://" + net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		origin = u.Scheme + "://[" + host + "]"
	}
	if err := checkOrigin(origin); err != nil {
		return bad(err.Error())
	}
	return origin, nil
}

// Marshal validates w and returns it as JSON, ready to be served at
// WellKnownPath.
func (w WellKnown) Marshal() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if w.Share == nil {
		w.Share = []string{}
	}
	// No HTML escaping (<, >, & as \u003c...): a document within the size
	// limit must marshal within it too.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("security: marshal well-known document: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Matches reports whether path (a URL path, without query) matches one of the
// document's share patterns. Paths that are not clean (see MatchPattern) never
// match.
func (w WellKnown) Matches(path string) bool {
	for _, p := range w.Share {
		if MatchPattern(p, path) {
			return true
		}
	}
	return false
}

// Shares reports whether the absolute URL rawURL belongs to the document's
// site (same scheme, host and port, compared exactly) and its path matches a
// share pattern. The query, if any, is not considered. URLs that Statement
// would reject (see Statement.Validate) are never shared.
func (w WellKnown) Shares(rawURL string) bool {
	if len(rawURL) > MaxURLLen || checkURL(rawURL) != nil {
		return false
	}
	u, err := neturl.Parse(rawURL)
	if err != nil || u.Scheme+"://"+u.Host != w.Site {
		return false
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return w.Matches(path)
}

// ValidatePattern checks a share pattern. A pattern is a URL path of printable
// ASCII that starts with "/", at most MaxPatternLen bytes, in which "*" is a
// wildcard for any run of bytes (slashes included). It must not contain "**",
// '?', '#', '\', a "." or ".." segment, a malformed percent escape, or an
// escaped '.', '/' or '\' (%2E, %2F, %5C). Errors wrap ErrBadPattern.
func ValidatePattern(p string) error {
	if len(p) > MaxPatternLen {
		return fmt.Errorf("pattern is %d bytes, limit %d: %w", len(p), MaxPatternLen, ErrBadPattern)
	}
	if strings.Contains(p, "**") {
		return fmt.Errorf("pattern %s: \"**\" is not supported (a single \"*\" already crosses \"/\"): %w", clip(p), ErrBadPattern)
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("pattern %s: %v: %w", clip(p), err, ErrBadPattern)
	}
	return nil
}

// checkPath accepts a clean URL path: printable ASCII, leading "/", no '?',
// '#' or '\', no dot segments, well-formed percent escapes that do not hide a
// '.', '/' or '\'.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New(`does not start with "/"`)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= 0x20 || c > 0x7e:
			return fmt.Errorf("byte 0x%02x at %d is not printable ASCII", c, i)
		case c == '?' || c == '#' || c == '\\':
			return fmt.Errorf("%q at %d is not allowed", c, i)
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return fmt.Errorf("malformed percent escape at %d", i)
			}
			switch strings.ToLower(p[i+1 : i+3]) {
			case "2e", "2f", "5c":
				return fmt.Errorf("escaped '.', '/' or '\\' at %d", i)
			}
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New("has a dot segment")
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// MatchPattern reports whether path matches pattern: every byte of the pattern
// matches itself, except "*", which matches any run of bytes, "/" included
// (so "/static/*" matches "/static/js/app.js"). Matching is case-sensitive and
// anchored at both ends. It is false when pattern fails ValidatePattern or path
// is not a clean path under the same rules (longer than MaxURLLen, a dot
// segment, '?', '#', '\', an escaped '.', '/' or '\', non-printable bytes), so
// that "/static/../private" never matches "/static/*".
func MatchPattern(pattern, path string) bool {
	if len(path) > MaxURLLen || ValidatePattern(pattern) != nil || checkPath(path) != nil {
		return false
	}
	return glob(pattern, path)
}

// glob matches s against p where '*' matches any run of bytes. It is the
// classic greedy matcher that backtracks only to the last star: O(len(p) *
// len(s)) in the worst case, no recursion.
func glob(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

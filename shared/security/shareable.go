package security

import (
	"net/http"
	"strings"
)

// Shareable decides whether a response may be cached and served to other
// peers at all (DESIGN.md, "Integrity and privacy"); the URL whitelist is
// checked separately (WellKnown.Shares). It is a pure function of the request
// method and headers and the response status and headers. A response is
// shareable only if all of these hold:
//
//   - the method is exactly "GET";
//   - the status is 200 (not 206 partial content, not 304);
//   - the request has no Authorization or Proxy-Authorization header;
//   - the response has no Set-Cookie header;
//   - no Cache-Control directive of the response is private or no-store
//     (with or without an argument, in any header line);
//   - Vary does not name Cookie, Authorization or Proxy-Authorization and is
//     not "*".
//
// A Cookie header on the request alone does not make a response private:
// browsers send a site's cookies with every same-origin request, and a
// response that depends on them must say so with Vary: Cookie or
// Cache-Control: private.
//
// Header names are matched case-insensitively even in maps that were not
// built with canonical keys; nil headers are empty. reason is empty when the
// response is shareable, otherwise a short explanation for logs.
func Shareable(method string, reqHeader, respHeader http.Header, status int) (ok bool, reason string) {
	if method != http.MethodGet {
		return false, "method " + clip(method) + " is not GET"
	}
	if status != http.StatusOK {
		return false, "status is not 200"
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization"} {
		if has(reqHeader, h) {
			return false, "request carries " + h
		}
	}
	if has(respHeader, "Set-Cookie") {
		return false, "response sets a cookie"
	}
	for _, d := range HeaderList(respHeader, "Cache-Control") {
		name, _, _ := strings.Cut(d, "=")
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "private", "no-store":
			return false, "Cache-Control: " + name
		}
	}
	for _, v := range HeaderList(respHeader, "Vary") {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "*", "cookie", "authorization", "proxy-authorization":
			return false, "Vary: " + v
		}
	}
	return true, ""
}

// HeaderValues returns every value of the header name in h, whatever the
// case of the map keys (a handler may set non-canonical keys directly).
func HeaderValues(h http.Header, name string) []string {
	var vs []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			vs = append(vs, v...)
		}
	}
	return vs
}

// has reports whether h holds the header name (even with an empty value).
func has(h http.Header, name string) bool {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return true
		}
	}
	return false
}

// HeaderList splits the comma-separated list values of the header name into
// elements, treating commas inside quoted strings (RFC 9110 section 5.6.4)
// as part of the element. Empty elements are dropped.
func HeaderList(h http.Header, name string) []string {
	var out []string
	for _, v := range HeaderValues(h, name) {
		start, quoted := 0, false
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if quoted {
					i++ // skip the escaped byte
				}
			case '"':
				quoted = !quoted
			case ',':
				if !quoted {
					out = appendElem(out, v[start:i])
					start = i + 1
				}
			}
		}
		out = appendElem(out, v[start:])
	}
	return out
}

func appendElem(out []string, e string) []string {
	if e = strings.TrimSpace(e); e != "" {
		out = append(out, e)
	}
	return out
}

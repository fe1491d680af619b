package security

import (
	"net/http"
	"testing"
)

func TestShareable(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		name   string
		method string
		req    http.Header
		resp   http.Header
		status int
		want   bool
	}{
		{"plain GET", "GET", nil, nil, 200, true},
		{"public cacheable", "GET", h("Accept", "*/*"), h("Cache-Control", "public, max-age=3600", "Vary", "Accept-Encoding"), 200, true},
		{"request cookie alone", "GET", h("Cookie", "theme=dark"), h("Cache-Control", "max-age=60"), 200, true},
		{"no-cache is still shareable", "GET", nil, h("Cache-Control", "no-cache"), 200, true},
		{"quoted comma", "GET", nil, h("Cache-Control", `no-cache="a, b", max-age=5`), 200, true},
		{"vary origin", "GET", nil, h("Vary", "Origin, Accept-Encoding"), 200, true},

		{"POST", "POST", nil, nil, 200, false},
		{"HEAD", "HEAD", nil, nil, 200, false},
		{"lower-case get", "get", nil, nil, 200, false},
		{"partial content", "GET", nil, nil, 206, false},
		{"not modified", "GET", nil, nil, 304, false},
		{"not found", "GET", nil, nil, 404, false},
		{"authorization", "GET", h("Authorization", "Bearer x"), nil, 200, false},
		{"empty authorization", "GET", h("Authorization", ""), nil, 200, false},
		{"proxy authorization", "GET", h("Proxy-Authorization", "Basic x"), nil, 200, false},
		{"non-canonical authorization key", "GET", http.Header{"authorization": {"x"}}, nil, 200, false},
		{"set-cookie", "GET", nil, h("Set-Cookie", "sid=1"), 200, false},
		{"non-canonical set-cookie key", "GET", nil, http.Header{"set-cookie": {"sid=1"}}, 200, false},
		{"private", "GET", nil, h("Cache-Control", "private"), 200, false},
		{"private upper case", "GET", nil, h("Cache-Control", "max-age=10, PRIVATE"), 200, false},
		{"private with fields", "GET", nil, h("Cache-Control", `private="Set-Cookie"`), 200, false},
		{"no-store", "GET", nil, h("Cache-Control", "public,no-store"), 200, false},
		{"no-store in second line", "GET", nil, h("Cache-Control", "public", "Cache-Control", " no-store "), 200, false},
		{"no-store after quoted comma", "GET", nil, h("Cache-Control", `no-cache="a,\"b", no-store`), 200, false},
		{"vary cookie", "GET", nil, h("Vary", "Accept-Encoding, Cookie"), 200, false},
		{"vary authorization", "GET", nil, h("Vary", "authorization"), 200, false},
		{"vary proxy-authorization", "GET", nil, h("Vary", "Proxy-Authorization"), 200, false},
		{"vary star", "GET", nil, h("Vary", "*"), 200, false},
		{"vary in second line", "GET", nil, h("Vary", "Accept", "Vary", "Cookie"), 200, false},
	} {
		ok, reason := Shareable(c.method, c.req, c.resp, c.status)
		if ok != c.want {
			t.Errorf("%s: Shareable = %v (%q), want %v", c.name, ok, reason, c.want)
		}
		if ok != (reason == "") {
			t.Errorf("%s: ok %v with reason %q", c.name, ok, reason)
		}
	}
}

package signer

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/security"
)

const mwSite = "https://example.org"

// origin is a dynamic origin with shareable and private responses.
func origin() *http.ServeMux {
	mux := http.NewServeMux()
	text := func(h func(w http.ResponseWriter)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h(w)
			io.WriteString(w, "body of "+r.URL.Path)
		}
	}
	mux.HandleFunc("/static/app.js", text(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}))
	mux.HandleFunc("/static/maxage", text(func(w http.ResponseWriter) {
		w.Header().Set("Cache-Control", "public, max-age=600")
	}))
	mux.HandleFunc("/static/maxage0", text(func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "max-age=0") }))
	mux.HandleFunc("/static/maxagebad", text(func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "max-age=soon") }))
	mux.HandleFunc("/static/cookie", text(func(w http.ResponseWriter) { w.Header().Set("Set-Cookie", "s=1") }))
	mux.HandleFunc("/static/nostore", text(func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }))
	mux.HandleFunc("/static/private", text(func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "private, max-age=60") }))
	mux.HandleFunc("/static/vary", text(func(w http.ResponseWriter) { w.Header().Set("Vary", "Accept-Encoding, Cookie") }))
	mux.HandleFunc("/static/gzip", text(func(w http.ResponseWriter) { w.Header().Set("Content-Encoding", "gzip") }))
	mux.HandleFunc("/static/lower-ce", text(func(w http.ResponseWriter) { w.Header()["content-encoding"] = []string{"br"} }))
	mux.HandleFunc("/static/length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "exact")
	})
	mux.HandleFunc("/static/nil-type", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no Content-Type at all
		io.WriteString(w, "<b>untyped</b>")
	})
	mux.HandleFunc("/static/created", text(func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) }))
	mux.HandleFunc("/static/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/static/late-cookie", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Header().Set("Set-Cookie", "late=1") // ignored by net/http after WriteHeader
		io.WriteString(w, "late")
	})
	mux.HandleFunc("/static/big", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			w.Write([]byte(strings.Repeat("x", 500)))
		}
	})
	mux.HandleFunc("/static/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "data: 2\n\n")
	})
	mux.HandleFunc("/static/trailer", func(w http.ResponseWriter, r *http.Request) {
		// Over net/http's 2 KiB before chunking, so the trailer is sent.
		io.WriteString(w, strings.Repeat("t", 3000))
		w.Header().Set(http.TrailerPrefix+"X-Sum", "42")
	})
	mux.HandleFunc("/", text(func(w http.ResponseWriter) {}))
	return mux
}

func testMiddleware(t testing.TB) (http.Handler, security.SiteKey) {
	t.Helper()
	k := testKey(t, 9)
	wk := security.WellKnown{Site: mwSite, PublicKey: k.Public(), Share: []string{"/static/*"}}
	h, err := NewMiddleware(k, wk, origin(), MiddlewareOptions{MaxBuffer: 2048, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	return h, k
}

func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddlewareSigns(t *testing.T) {
	h, k := testMiddleware(t)
	cases := []struct {
		path, ctype string
		expires     int64
	}{
		{"/static/app.js", "text/javascript; charset=utf-8", testNow.Unix() + 3600},
		{"/static/app.js?v=2", "text/javascript; charset=utf-8", testNow.Unix() + 3600},
		{"/static/maxage", "text/plain; charset=utf-8", testNow.Unix() + 600},
		{"/static/empty", "text/plain; charset=utf-8", testNow.Unix() + 3600},
		{"/static/length", "text/plain; charset=utf-8", testNow.Unix() + 3600},
		{"/static/nil-type", "", testNow.Unix() + 3600},
		{"/static/late-cookie", "text/plain; charset=utf-8", testNow.Unix() + 3600},
	}
	for _, c := range cases {
		w := do(h, "GET", c.path, "Cookie", "session=abc")
		body := w.Body.Bytes()
		if w.Code != 200 || w.Header().Get("Content-Type") != c.ctype {
			t.Fatalf("%s: status %d content type %q", c.path, w.Code, w.Header().Get("Content-Type"))
		}
		v := w.Header().Get(security.StatementHeader)
		s, err := security.DecodeStatementHeader(v)
		if err != nil {
			t.Fatalf("%s: statement header %q: %v", c.path, v, err)
		}
		if err := security.Verify(k.Public(), s, mwSite+c.path, body, testNow); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if s.ContentType != c.ctype || s.Expires != c.expires || s.Version != uint64(testNow.UnixMicro()) {
			t.Fatalf("%s: statement %+v", c.path, s.Statement)
		}
		if w.Header().Get("Set-Cookie") != "" {
			t.Fatalf("%s: a cookie set after WriteHeader was sent", c.path)
		}
	}
}

func TestMiddlewareLeavesUnsigned(t *testing.T) {
	h, _ := testMiddleware(t)
	cases := []struct {
		method, path string
		hdr          []string
		status       int
		body         string
	}{
		{"GET", "/static/cookie", nil, 200, "body of /static/cookie"},
		{"GET", "/static/nostore", nil, 200, "body of /static/nostore"},
		{"GET", "/static/private", nil, 200, "body of /static/private"},
		{"GET", "/static/vary", nil, 200, "body of /static/vary"},
		{"GET", "/static/gzip", nil, 200, "body of /static/gzip"},
		{"GET", "/static/lower-ce", nil, 200, "body of /static/lower-ce"},
		{"GET", "/static/maxage0", nil, 200, "body of /static/maxage0"},
		{"GET", "/static/maxagebad", nil, 200, "body of /static/maxagebad"},
		{"GET", "/static/created", nil, 201, "body of /static/created"},
		{"GET", "/static/missing/../app.js", nil, 0, ""}, // the mux redirects
		{"GET", "/other", nil, 200, "body of /other"},
		{"GET", "/static/app.js", []string{"Authorization", "Bearer x"}, 200, "body of /static/app.js"},
		{"GET", "/static/app.js", []string{"Upgrade", "websocket"}, 200, "body of /static/app.js"},
		{"HEAD", "/static/app.js", nil, 200, "body of /static/app.js"}, // the recorder keeps it
		{"POST", "/static/app.js", nil, 200, "body of /static/app.js"},
		{"GET", "/static/big", nil, 200, strings.Repeat("x", 5000)},
	}
	for _, c := range cases {
		w := do(h, c.method, c.path, c.hdr...)
		if v := w.Header().Get(security.StatementHeader); v != "" {
			t.Errorf("%s %s %v: signed", c.method, c.path, c.hdr)
		}
		if c.status == 0 {
			continue
		}
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if w.Body.String() != c.body {
			t.Errorf("%s %s: body %q, want %q", c.method, c.path, w.Body.String(), c.body)
		}
	}
	// The private responses keep their headers.
	if w := do(h, "GET", "/static/cookie"); w.Header().Get("Set-Cookie") != "s=1" {
		t.Error("Set-Cookie lost")
	}
}

func TestMiddlewareStreamFlush(t *testing.T) {
	h, _ := testMiddleware(t)
	w := do(h, "GET", "/static/stream")
	if !w.Flushed || w.Body.String() != "data: 1\n\ndata: 2\n\n" || w.Header().Get(security.StatementHeader) != "" {
		t.Fatalf("flushed %v, body %q, statement %q", w.Flushed, w.Body.String(), w.Header().Get(security.StatementHeader))
	}
}

// TestMiddlewareOverHTTP runs the middleware in a real server: the statement
// of a fetched object verifies against the key of the served well-known
// document, trailers survive, and a private response carries no statement.
func TestMiddlewareOverHTTP(t *testing.T) {
	k := testKey(t, 10)
	srv := httptest.NewUnstartedServer(nil)
	site := "http://" + srv.Listener.Addr().String()
	wk := security.WellKnown{Site: site, PublicKey: k.Public(), Share: []string{"/static/*"}}
	srv.Config.Handler = Middleware(k, wk, origin(), MiddlewareOptions{})
	srv.Start()
	defer srv.Close()

	get := func(path string) (*http.Response, []byte) {
		resp, err := http.Get(site + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, doc := get(security.WellKnownPath)
	got, err := security.ParseWellKnown(doc)
	if err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("well-known: %v %q", err, resp.Header.Get("Content-Type"))
	}
	resp, body := get("/static/app.js")
	s, err := security.DecodeStatementHeader(resp.Header.Get(security.StatementHeader))
	if err != nil {
		t.Fatal(err)
	}
	if err := security.Verify(got.PublicKey, s, site+"/static/app.js", body, time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != s.ContentType {
		t.Fatalf("served %q, signed %q", resp.Header.Get("Content-Type"), s.ContentType)
	}
	// A peer that alters the body is caught.
	if err := security.Verify(got.PublicKey, s, site+"/static/app.js", append(body, '!'), time.Now()); !errors.Is(err, security.ErrDigestMismatch) {
		t.Fatalf("altered body: %v", err)
	}
	resp, _ = get("/static/trailer")
	if resp.Header.Get(security.StatementHeader) == "" || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("trailer response: statement %q, trailer %v", resp.Header.Get(security.StatementHeader), resp.Trailer)
	}
	resp, _ = get("/static/cookie")
	if resp.Header.Get(security.StatementHeader) != "" || len(resp.Cookies()) != 1 {
		t.Fatal("private response signed or its cookie lost")
	}
	req, _ := http.NewRequest("POST", site+security.WellKnownPath, nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST well-known: %d", r2.StatusCode)
	}
}

func TestNewMiddlewareErrors(t *testing.T) {
	k, other := testKey(t, 11), testKey(t, 12)
	wk := security.WellKnown{Site: mwSite, PublicKey: k.Public(), Share: []string{"/*"}}
	next := http.NotFoundHandler()
	cases := []struct {
		name string
		key  security.SiteKey
		wk   security.WellKnown
		next http.Handler
		opt  MiddlewareOptions
		want error
	}{
		{"zero key", security.SiteKey{}, wk, next, MiddlewareOptions{}, security.ErrInvalidKey},
		{"other key", other, wk, next, MiddlewareOptions{}, security.ErrInvalidKey},
		{"bad site", k, security.WellKnown{Site: mwSite + "/", PublicKey: k.Public()}, next, MiddlewareOptions{}, security.ErrMalformed},
		{"nil next", k, wk, nil, MiddlewareOptions{}, ErrBadOption},
		{"negative buffer", k, wk, next, MiddlewareOptions{MaxBuffer: -1}, ErrBadOption},
		{"short TTL", k, wk, next, MiddlewareOptions{TTL: time.Millisecond}, ErrBadOption},
	}
	for _, c := range cases {
		if _, err := NewMiddleware(c.key, c.wk, c.next, c.opt); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware did not panic on a mismatched key")
		}
	}()
	Middleware(other, wk, next, MiddlewareOptions{})
}

package origin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// files is the test site.
var files = map[string]string{
	"index.html":                   "<!doctype html><title>home</title>",
	"about.html":                   "<!doctype html><title>about</title>",
	"sub/index.html":               "<!doctype html><title>sub</title>",
	"css/site.css":                 "body { color: green }",
	"js/app.js":                    "console.log(1)",
	"img/logo.svg":                 `<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
	"img/a.jpg":                    "\xff\xd8\xff\xe0 not really a jpeg",
	"video/v.webm":                 strings.Repeat("0123456789", 100),
	"flower/flower.js":             "/* embed */",
	"flower/flower.wasm":           "\x00asm\x01\x00\x00\x00 identity body",
	"flower/flower.wasm.br":        "brotli body",
	"flower/flower.wasm.gz":        "gzip body, a bit longer",
	"flower/only-gz.js":            "plain",
	"flower/only-gz.js.gz":         "gz",
	"flower-sw.js":                 "self.onfetch = null",
	".well-known/flower-cdn.json":  `{"site":"http://127.0.0.1"}`,
	".secret":                      "no",
	"img/.hidden.jpg":              "no",
	"me/badge.jpg":                 "static badge",
	"data/unknown.bin":             "\x00\x01\x02",
	"data/readme":                  "plain words",
	".well-known/other/.nested.js": "no",
}

func newSite(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = newSite(t)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, ts
}

// client never adds or decodes Accept-Encoding by itself.
var client = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestContentTypesAndCaching(t *testing.T) {
	_, ts := newServer(t, Config{})
	cases := []struct {
		path, status, ctype, cache, body string
	}{
		{"/", "200", "text/html; charset=utf-8", "no-cache", files["index.html"]},
		{"/index.html", "200", "text/html; charset=utf-8", "no-cache", files["index.html"]},
		{"/about.html", "200", "text/html; charset=utf-8", "no-cache", files["about.html"]},
		{"/sub/", "200", "text/html; charset=utf-8", "no-cache", files["sub/index.html"]},
		{"/sub", "301", "", "no-cache", ""},
		{"/css/site.css", "200", "text/css; charset=utf-8", CacheStatic, files["css/site.css"]},
		{"/js/app.js", "200", "text/javascript; charset=utf-8", CacheStatic, files["js/app.js"]},
		{"/img/logo.svg", "200", "image/svg+xml", CacheStatic, files["img/logo.svg"]},
		{"/img/a.jpg", "200", "image/jpeg", CacheStatic, files["img/a.jpg"]},
		{"/video/v.webm", "200", "video/webm", CacheStatic, files["video/v.webm"]},
		{"/flower/flower.js", "200", "text/javascript; charset=utf-8", CacheStatic, files["flower/flower.js"]},
		{"/flower/flower.wasm", "200", "application/wasm", CacheStatic, files["flower/flower.wasm"]},
		{"/flower-sw.js", "200", "text/javascript; charset=utf-8", "no-cache", files["flower-sw.js"]},
		{"/.well-known/flower-cdn.json", "200", "application/json", "no-cache", files[".well-known/flower-cdn.json"]},
		{"/me/badge.jpg", "200", "image/jpeg", "public, no-cache", files["me/badge.jpg"]},
		{"/data/unknown.bin", "200", "application/octet-stream", CacheStatic, files["data/unknown.bin"]},
		{"/data/readme", "200", "text/plain; charset=utf-8", CacheStatic, files["data/readme"]},
		{"/missing.png", "404", "text/plain; charset=utf-8", "no-cache", ""},
		{"/.secret", "404", "", "no-cache", ""},
		{"/img/.hidden.jpg", "404", "", "no-cache", ""},
		{"/.well-known/other/.nested.js", "404", "", "no-cache", ""},
		{"/img/../.secret", "404", "", "no-cache", ""},
	}
	for _, c := range cases {
		resp, body := do(t, "GET", ts.URL+c.path)
		if got := fmt.Sprint(resp.StatusCode); got != c.status {
			t.Errorf("%s: status %s, want %s", c.path, got, c.status)
			continue
		}
		if c.ctype != "" && resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, resp.Header.Get("Content-Type"), c.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if c.status == "200" && string(body) != c.body {
			t.Errorf("%s: body %q, want %q", c.path, body, c.body)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options", c.path)
		}
	}
	if resp, _ := do(t, "GET", ts.URL+"/sub?x=1"); resp.Header.Get("Location") != "/sub/?x=1" {
		t.Errorf("directory redirect to %q", resp.Header.Get("Location"))
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if resp, _ := do(t, m, ts.URL+"/index.html"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if resp, body := do(t, "HEAD", ts.URL+"/css/site.css"); resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(files["css/site.css"])) {
		t.Errorf("HEAD: status %d, %d body bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
}

func TestFileName(t *testing.T) {
	cases := []struct {
		path, name string
		ok         bool
	}{
		{"/", "index.html", true},
		{"/a/b.js", "a/b.js", true},
		{"/a/", "a/index.html", true},
		{"/.well-known/flower-cdn.json", ".well-known/flower-cdn.json", true},
		{"/a/.well-known/x", "", false},
		{"/../etc/passwd", "", false},
		{"/a/../b", "", false},
		{"/a//b", "", false},
		{"/a/./b", "", false},
		{"/a\\b", "", false},
		{"/a\x00b", "", false},
		{"relative", "", false},
		{"/.git/config", "", false},
	}
	for _, c := range cases {
		name, ok := fileName(c.path)
		if name != c.name || ok != c.ok {
			t.Errorf("fileName(%q) = %q, %v; want %q, %v", c.path, name, ok, c.name, c.ok)
		}
	}
}

func TestCompressionNegotiation(t *testing.T) {
	_, ts := newServer(t, Config{})
	cases := []struct {
		path, accept, enc, body string
	}{
		{"/flower/flower.wasm", "", "", "flower/flower.wasm"},
		{"/flower/flower.wasm", "gzip, deflate, br, zstd", "br", "flower/flower.wasm.br"},
		{"/flower/flower.wasm", "gzip", "gzip", "flower/flower.wasm.gz"},
		{"/flower/flower.wasm", "br;q=0, gzip;q=0.5", "gzip", "flower/flower.wasm.gz"},
		{"/flower/flower.wasm", "gzip;q=0, br;q=0", "", "flower/flower.wasm"},
		{"/flower/flower.wasm", "*", "br", "flower/flower.wasm.br"},
		{"/flower/flower.wasm", "*;q=0", "", "flower/flower.wasm"},
		{"/flower/flower.wasm", "identity", "", "flower/flower.wasm"},
		{"/flower/flower.wasm", "BR", "br", "flower/flower.wasm.br"},
		{"/flower/only-gz.js", "br, gzip", "gzip", "flower/only-gz.js.gz"},
		{"/flower/only-gz.js", "br", "", "flower/only-gz.js"},
		{"/flower/flower.wasm.br", "br", "", "flower/flower.wasm.br"},
	}
	for _, c := range cases {
		resp, body := do(t, "GET", ts.URL+c.path, "Accept-Encoding", c.accept)
		if resp.StatusCode != 200 {
			t.Errorf("%s %q: status %d", c.path, c.accept, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Encoding"); got != c.enc {
			t.Errorf("%s %q: Content-Encoding %q, want %q", c.path, c.accept, got, c.enc)
		}
		if string(body) != files[c.body] {
			t.Errorf("%s %q: body %q, want %s", c.path, c.accept, body, c.body)
		}
		if resp.ContentLength != int64(len(files[c.body])) {
			t.Errorf("%s %q: Content-Length %d, want %d", c.path, c.accept, resp.ContentLength, len(files[c.body]))
		}
		wantVary := "Accept-Encoding"
		if strings.HasSuffix(c.path, ".br") {
			wantVary = ""
		}
		if got := resp.Header.Get("Vary"); got != wantVary {
			t.Errorf("%s %q: Vary %q, want %q", c.path, c.accept, got, wantVary)
		}
		if strings.HasSuffix(c.path, ".wasm") && resp.Header.Get("Content-Type") != "application/wasm" {
			t.Errorf("%s %q: Content-Type %q", c.path, c.accept, resp.Header.Get("Content-Type"))
		}
	}
	// Each representation has its own validator.
	r1, _ := do(t, "GET", ts.URL+"/flower/flower.wasm", "Accept-Encoding", "br")
	r2, _ := do(t, "GET", ts.URL+"/flower/flower.wasm", "Accept-Encoding", "gzip")
	if r1.Header.Get("ETag") == "" || r1.Header.Get("ETag") == r2.Header.Get("ETag") {
		t.Errorf("ETags %q and %q", r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	}
	if r, _ := do(t, "GET", ts.URL+"/flower/flower.wasm", "Accept-Encoding", "br", "If-None-Match", r1.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d", r.StatusCode)
	}
	// Not a plain file: the js file has no br variant, a .br is served as is.
	if r, _ := do(t, "GET", ts.URL+"/css/site.css", "Accept-Encoding", "br"); r.Header.Get("Vary") != "" || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("no variant: Vary %q, Content-Encoding %q", r.Header.Get("Vary"), r.Header.Get("Content-Encoding"))
	}
}

func TestRange(t *testing.T) {
	s, ts := newServer(t, Config{})
	v := files["video/v.webm"]
	cases := []struct {
		rng, status, body, contentRange string
	}{
		{"bytes=10-19", "206", v[10:20], "bytes 10-19/1000"},
		{"bytes=990-", "206", v[990:], "bytes 990-999/1000"},
		{"bytes=-5", "206", v[995:], "bytes 995-999/1000"},
		{"bytes=0-", "206", v, "bytes 0-999/1000"},
		{"bytes=5000-", "416", "", "bytes */1000"},
		{"", "200", v, ""},
	}
	for _, c := range cases {
		resp, body := do(t, "GET", ts.URL+"/video/v.webm", "Range", c.rng)
		if got := fmt.Sprint(resp.StatusCode); got != c.status {
			t.Errorf("%q: status %s, want %s", c.rng, got, c.status)
			continue
		}
		if c.status != "416" && string(body) != c.body {
			t.Errorf("%q: %d bytes, want %d", c.rng, len(body), len(c.body))
		}
		if got := resp.Header.Get("Content-Range"); got != c.contentRange {
			t.Errorf("%q: Content-Range %q, want %q", c.rng, got, c.contentRange)
		}
		if c.status != "416" && resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("%q: Accept-Ranges %q", c.rng, resp.Header.Get("Accept-Ranges"))
		}
	}
	// A compressed variant is sent whole; the identity one in ranges.
	if resp, body := do(t, "GET", ts.URL+"/flower/flower.wasm", "Range", "bytes=0-3", "Accept-Encoding", "gzip"); resp.StatusCode != 200 || string(body) != files["flower/flower.wasm.gz"] {
		t.Errorf("range of a gzip variant: status %d, body %q", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", ts.URL+"/flower/flower.wasm", "Range", "bytes=0-3"); resp.StatusCode != 206 || string(body) != "\x00asm" {
		t.Errorf("range of the identity wasm: status %d, body %q", resp.StatusCode, body)
	}
	// The log keeps the Range the client sent.
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.Range != "bytes=0-3" || last.Status != 206 || last.Bytes != 4 {
		t.Errorf("last request logged as %+v", last)
	}
	if gz := reqs[len(reqs)-2]; gz.Range != "bytes=0-3" || gz.Status != 200 || gz.Encoding != "gzip" {
		t.Errorf("gzip request logged as %+v", gz)
	}
}

func TestAccessLog(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.jsonl")
	s, ts := newServer(t, Config{LogFile: logFile})
	do(t, "GET", ts.URL+"/css/site.css", "User-Agent", "test-agent/1")
	do(t, "GET", ts.URL+"/video/v.webm", "Range", "bytes=0-99", "User-Agent", "test-agent/2")
	do(t, "HEAD", ts.URL+"/js/app.js")
	do(t, "GET", ts.URL+"/nope?q=1")
	do(t, "GET", ts.URL+"/flower/flower.wasm", "Accept-Encoding", "br")
	do(t, "GET", ts.URL+"/me/badge.jpg", "Cookie", "other=1")
	want := []Request{
		{Method: "GET", Path: "/css/site.css", Status: 200, Bytes: int64(len(files["css/site.css"])), UserAgent: "test-agent/1"},
		{Method: "GET", Path: "/video/v.webm", Status: 206, Bytes: 100, UserAgent: "test-agent/2", Range: "bytes=0-99"},
		{Method: "HEAD", Path: "/js/app.js", Status: 200, Bytes: 0, UserAgent: "Go-http-client/1.1"},
		{Method: "GET", Path: "/nope?q=1", Status: 404, Bytes: 19, UserAgent: "Go-http-client/1.1"},
		{Method: "GET", Path: "/flower/flower.wasm", Status: 200, Bytes: int64(len(files["flower/flower.wasm.br"])), UserAgent: "Go-http-client/1.1", Encoding: "br"},
		{Method: "GET", Path: "/me/badge.jpg", Status: 200, Bytes: int64(len(files["me/badge.jpg"])), UserAgent: "Go-http-client/1.1", Cookie: true},
	}
	check := func(what string, got []Request) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d requests, want %d: %+v", what, len(got), len(want), got)
		}
		for i, g := range got {
			if g.Time.IsZero() || g.Duration < 0 {
				t.Errorf("%s %d: time %v, duration %v", what, i, g.Time, g.Duration)
			}
			g.Time, g.Duration = want[i].Time, want[i].Duration
			if g != want[i] {
				t.Errorf("%s %d: %+v, want %+v", what, i, g, want[i])
			}
		}
	}
	check("Requests", s.Requests())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fromFile []Request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		fromFile = append(fromFile, r)
	}
	check("log file", fromFile)
}

func TestAccessLogConcurrentAndBounded(t *testing.T) {
	s, ts := newServer(t, Config{MaxRecords: 10})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				resp, err := client.Get(ts.URL + "/js/app.js")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				_ = s.Requests()
			}
		}()
	}
	wg.Wait()
	do(t, "GET", ts.URL+"/css/site.css")
	reqs := s.Requests()
	if len(reqs) == 0 || len(reqs) > 10 {
		t.Fatalf("%d requests kept, want 1..10", len(reqs))
	}
	if reqs[len(reqs)-1].Path != "/css/site.css" {
		t.Errorf("newest entry %+v", reqs[len(reqs)-1])
	}
}

func TestPrivateEndpoints(t *testing.T) {
	_, ts := newServer(t, Config{})
	// Login: a cookie scoped to /me/.
	resp, body := do(t, "GET", ts.URL+LoginPath)
	cookies := resp.Cookies()
	if resp.StatusCode != 200 || len(cookies) != 1 || cookies[0].Name != SessionCookie || cookies[0].Path != CookiePath || !cookies[0].HttpOnly || len(cookies[0].Value) != 24 {
		t.Fatalf("login: status %d, cookies %+v", resp.StatusCode, cookies)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || !bytes.Contains(body, []byte(BadgePath)) {
		t.Errorf("login page: Cache-Control %q, body %q", resp.Header.Get("Cache-Control"), body)
	}
	sess := SessionCookie + "=" + cookies[0].Value

	// The badge: private with the session, the static file without.
	resp, body = do(t, "GET", ts.URL+BadgePath, "Cookie", sess)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "private, max-age=60" || resp.Header.Get("Vary") != "Cookie" || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("badge with session: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	if _, err := jpeg.Decode(bytes.NewReader(body)); err != nil {
		t.Errorf("badge with session: %v", err)
	}
	_, again := do(t, "GET", ts.URL+BadgePath, "Cookie", sess)
	_, other := do(t, "GET", ts.URL+BadgePath, "Cookie", SessionCookie+"=someone-else")
	if !bytes.Equal(body, again) || bytes.Equal(body, other) {
		t.Errorf("badge: not one per session")
	}
	resp, body = do(t, "GET", ts.URL+BadgePath)
	if string(body) != files["me/badge.jpg"] || resp.Header.Get("Vary") != "Cookie" || resp.Header.Get("Cache-Control") != "public, no-cache" {
		t.Errorf("badge without session: %q, headers %v", body, resp.Header)
	}

	// Live: never stored.
	resp, body = do(t, "GET", ts.URL+LivePath)
	var live liveJSON
	if err := json.Unmarshal(body, &live); err != nil || live.Seq != 1 || live.UnixMs == 0 {
		t.Errorf("live: %q: %v", body, err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("live: headers %v", resp.Header)
	}
	if _, body := do(t, "GET", ts.URL+LivePath); !strings.Contains(string(body), `"seq":2`) {
		t.Errorf("second live answer %q", body)
	}
	if resp, body := do(t, "HEAD", ts.URL+LivePath); resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD live: %d, %q", resp.StatusCode, body)
	}

	// Logout clears the cookie.
	resp, _ = do(t, "GET", ts.URL+LogoutPath, "Cookie", sess)
	if c := resp.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Path != CookiePath {
		t.Errorf("logout cookies %+v", c)
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.0.0.2:0", false, true},
		{"[::1]:0", false, true},
		{"localhost:8080", false, true},
		{":8080", false, false},
		{"0.0.0.0:8080", false, false},
		{"[::]:8080", false, false},
		{"192.168.1.10:8080", false, false},
		{"example.org:80", false, false},
		{"0.0.0.0:8080", true, true},
		{"no-port", false, false},
		{"no-port", true, false},
	}
	for _, c := range cases {
		err := CheckListen(c.addr, c.allow)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok %v", c.addr, c.allow, err, c.ok)
		}
	}
}

func TestStartClose(t *testing.T) {
	dir := newSite(t)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := New(Config{Dir: dir, Listen: "0.0.0.0:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Start on 0.0.0.0: %v, want ErrNotLoopback", err)
	}
	if s.URL() != "" {
		t.Fatalf("URL %q before Start", s.URL())
	}
	s.Close()

	s, err = New(Config{Dir: dir, Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	resp, body := do(t, "GET", s.URL()+"/css/site.css")
	if resp.StatusCode != 200 || string(body) != files["css/site.css"] {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
	done := s.Done()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if len(s.Requests()) != 1 {
		t.Errorf("%d requests logged", len(s.Requests()))
	}
	if _, err := New(Config{Dir: filepath.Join(dir, "missing")}); err == nil {
		t.Error("New with a missing directory succeeded")
	}
	if _, err := New(Config{Dir: dir, LogFile: filepath.Join(dir, "missing", "log")}); err == nil {
		t.Error("New with an unwritable log file succeeded")
	}
}

package signer_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/security"
	"github.com/flowercdn/flower/shared/signer"
)

// A dynamic Go origin that signs its shareable responses, and a peer that
// checks one. docs/signing.md quotes this example.
func ExampleMiddleware() {
	// The site key; an origin reads it with security.ParsePrivateKey from
	// the file `flower keygen` wrote.
	key, err := security.GenerateSiteKey(nil)
	if err != nil {
		panic(err)
	}

	// The application: one public, cacheable page and one private one.
	app := http.NewServeMux()
	app.HandleFunc("GET /static/hello.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=600")
		io.WriteString(w, "hello, peers\n")
	})
	app.HandleFunc("GET /static/account", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=1; HttpOnly")
		io.WriteString(w, "your account\n")
	})

	// The origin: the well-known document names the site, its key and what
	// peers may share; the middleware serves it and signs responses.
	srv := httptest.NewUnstartedServer(nil) // in production: http.ListenAndServe
	site := "http://" + srv.Listener.Addr().String()
	wk := security.WellKnown{Site: site, PublicKey: key.Public(), Share: []string{"/static/*"}}
	srv.Config.Handler = signer.Middleware(key, wk, app, signer.MiddlewareOptions{})
	srv.Start()
	defer srv.Close()

	// A peer learns the key from the origin, never from another peer...
	resp, err := http.Get(site + security.WellKnownPath)
	if err != nil {
		panic(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	origin, err := security.ParseWellKnown(doc)
	if err != nil {
		panic(err)
	}
	// ...and checks every object and its statement before using it.
	for _, path := range []string{"/static/hello.txt", "/static/account"} {
		resp, err := http.Get(site + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		header := resp.Header.Get(security.StatementHeader)
		if header == "" {
			fmt.Printf("%s: not signed, not shared\n", path)
			continue
		}
		st, err := security.DecodeStatementHeader(header)
		if err == nil {
			err = security.Verify(origin.PublicKey, st, site+path, body, time.Now())
		}
		fmt.Printf("%s: %q verified: %v\n", path, body, err == nil)
	}
	// Output:
	// /static/hello.txt: "hello, peers\n" verified: true
	// /static/account: not signed, not shared
}

// TestDocsQuoteExample keeps docs/signing.md in step with ExampleMiddleware:
// the document quotes the example's body verbatim.
func TestDocsQuoteExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/signing.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "func ExampleMiddleware() {")
	end := strings.Index(s, "\n\t// Output:")
	if start < 0 || end < start {
		t.Fatal("example not found")
	}
	body := s[start:end]
	if !strings.Contains(string(doc), body) {
		t.Fatal("docs/signing.md does not quote ExampleMiddleware (shared/signer/example_test.go) verbatim; update the document")
	}
}

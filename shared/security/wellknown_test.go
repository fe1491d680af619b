package security

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseWellKnown(t *testing.T) {
	doc := `{"site":"https://example.org","public_key":"` + rfc8410Public + `",
	  "share":["/static/*", "/img/*.png", "/index.html"], "future_field": 1}` + "\n"
	w, err := ParseWellKnown([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if w.Site != "https://example.org" || w.PublicKey.String() != rfc8410Public || len(w.Share) != 3 {
		t.Fatalf("parsed %+v", w)
	}
	out, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"site":"https://example.org","public_key":"` + rfc8410Public + `","share":["/static/*","/img/*.png","/index.html"]}`
	if string(out) != want {
		t.Fatalf("Marshal = %s\nwant %s", out, want)
	}
	back, err := ParseWellKnown(out)
	if err != nil || fmt.Sprint(back) != fmt.Sprint(w) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// No share list: valid, shares nothing, marshals as [].
	none, err := ParseWellKnown([]byte(`{"site":"http://127.0.0.1:8080","public_key":"` + rfc8410Public + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if none.Matches("/") || none.Shares("http://127.0.0.1:8080/") {
		t.Fatal("empty share list matched")
	}
	if out, err := none.Marshal(); err != nil || !strings.Contains(string(out), `"share":[]`) {
		t.Fatalf("Marshal = %s, %v", out, err)
	}
}

func TestParseWellKnownErrors(t *testing.T) {
	key := rfc8410Public
	doc := func(site, key string, share ...string) string {
		q := make([]string, len(share))
		for i, s := range share {
			q[i] = fmt.Sprintf("%q", s)
		}
		return fmt.Sprintf(`{"site":%q,"public_key":%q,"share":[%s]}`, site, key, strings.Join(q, ","))
	}
	many := make([]string, MaxSharePatterns+1)
	for i := range many {
		many[i] = fmt.Sprintf("/p%d/*", i)
	}
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"not json", "site=x", ErrMalformed},
		{"array", "[]", ErrMalformed},
		{"wrong type", `{"site":1}`, ErrMalformed},
		{"trailing object", doc("https://e.org", key) + "{}", ErrMalformed},
		{"trailing junk", doc("https://e.org", key) + "x", ErrMalformed},
		{"too large", doc("https://e.org", key, "/"+strings.Repeat("a", MaxWellKnownSize)), ErrTooLarge},
		{"missing key", `{"site":"https://e.org"}`, ErrInvalidKey},
		{"null key", `{"site":"https://e.org","public_key":null}`, ErrInvalidKey},
		{"bad key", doc("https://e.org", "ed25519:abc"), ErrInvalidKey},
		{"missing site", `{"public_key":"` + key + `"}`, ErrMalformed},
		{"site with path", doc("https://e.org/", key), ErrMalformed},
		{"site with deeper path", doc("https://e.org/a", key), ErrMalformed},
		{"site with query", doc("https://e.org?a", key), ErrMalformed},
		{"site with user", doc("https://u@e.org", key), ErrMalformed},
		{"site ftp", doc("ftp://e.org", key), ErrMalformed},
		{"site upper-case host", doc("https://E.org", key), ErrMalformed},
		{"site upper-case scheme", doc("HTTPS://e.org", key), ErrMalformed},
		{"site without scheme", doc("e.org", key), ErrMalformed},
		{"site with space", doc("https://e .org", key), ErrMalformed},
		{"too many patterns", doc("https://e.org", key, many...), ErrTooLarge},
		{"relative pattern", doc("https://e.org", key, "static/*"), ErrBadPattern},
		{"empty pattern", doc("https://e.org", key, ""), ErrBadPattern},
		{"double star", doc("https://e.org", key, "/static/**"), ErrBadPattern},
	} {
		_, err := ParseWellKnown([]byte(c.in))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error = %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "security: parse well-known document: ") {
			t.Errorf("%s: error without context: %v", c.name, err)
		}
	}
	if err := (WellKnown{Site: "https://e.org"}).Validate(); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Validate without key: %v", err)
	}
	if _, err := (WellKnown{Site: "https://e.org/x"}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal of an invalid document: %v", err)
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{
		"/", "/*", "/static/*", "/img/*.png", "/a/*/b/*.js", "/file%20name.txt", "/~user/*", "/a.b/c..d/.well",
	} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	for _, p := range []string{
		"", "static/*", "*", "/static/**", "/a?b", "/a#b", "/a b", "/a\\b", "/a/../b", "/a/./b", "/a/..", "/.",
		"/a%2e%2e/b", "/a%2Fb", "/a%5cb", "/a%", "/a%4", "/a%zz", "/é", "/a\x00", "/" + strings.Repeat("a", MaxPatternLen),
	} {
		if err := ValidatePattern(p); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ValidatePattern(%q) = %v, want ErrBadPattern", p, err)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/static/*", "/static/app.js", true},
		{"/static/*", "/static/js/app.js", true},
		{"/static/*", "/static/", true},
		{"/static/*", "/static", false},
		{"/static/*", "/Static/app.js", false},
		{"/static/*", "/other/static/app.js", false},
		{"/static/*", "/static/../private/key", false},
		{"/static/*", "/static/%2e%2e/private/key", false},
		{"/static/*", "/static/a%2Fb", false},
		{"/static/*", "/static/a\\..\\b", false},
		{"/static/*", "/static/a?b", false},
		{"/static/*", "static/a", false},
		{"/static/*", "", false},
		{"/img/*.png", "/img/a.png", true},
		{"/img/*.png", "/img/a/b.png", true},
		{"/img/*.png", "/img/a.png.js", false},
		{"/img/*.png", "/img/.png", true},
		{"/a/*/b/*.js", "/a/x/b/y.js", true},
		{"/a/*/b/*.js", "/a/x/b/y/b/z.js", true},
		{"/a/*/b/*.js", "/a/b/y.js", false},
		{"/*a*a*a*b", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"/*a*a*a*b", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true},
		{"/index.html", "/index.html", true},
		{"/index.html", "/index.htm", false},
		{"/index.html", "/index.html/", false},
		{"/", "/", true},
		{"/", "/a", false},
		{"/*", "/", true},
		{"/*", "/" + strings.Repeat("a", MaxURLLen), false}, // longer than any URL
		{"static/*", "static/a", false},                     // invalid pattern never matches
	} {
		if got := MatchPattern(c.pattern, c.path); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestShares(t *testing.T) {
	w := WellKnown{Site: "https://example.org", Share: []string{"/static/*", "/"}}
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"https://example.org/static/app.js", true},
		{"https://example.org/static/app.js?v=2", true},
		{"https://example.org/", true},
		{"https://example.org", true},
		{"https://example.org/private", false},
		{"http://example.org/static/app.js", false},
		{"https://example.org:8443/static/app.js", false},
		{"https://EXAMPLE.org/static/app.js", false},
		{"https://evil.org/static/app.js", false},
		{"https://example.org.evil.org/static/app.js", false},
		{"https://u@example.org/static/app.js", false},
		{"https://example.org/static/app.js#x", false},
		{"https://example.org/static/../secret", false},
		{"/static/app.js", false},
		{"", false},
	} {
		if got := w.Shares(c.url); got != c.want {
			t.Errorf("Shares(%q) = %v, want %v", c.url, got, c.want)
		}
	}
}

// TestMarshalStaysWithinLimit: a document ParseWellKnown accepts marshals
// to one it accepts too. Go's JSON encoder escapes <, > and & six-fold by
// default, which took a document near the limit past it.
func TestMarshalStaysWithinLimit(t *testing.T) {
	pattern := "/" + strings.Repeat("&", 240) + "/*"
	var share []string
	for i := 0; i < MaxSharePatterns && len(share)*(len(pattern)+3) < MaxWellKnownSize-1000; i++ {
		share = append(share, fmt.Sprintf("/%d%s", i, pattern))
	}
	doc, err := json.Marshal(map[string]any{"site": "https://example.org", "public_key": rfc8410Public, "share": share})
	if err != nil {
		t.Fatal(err)
	}
	doc = []byte(strings.ReplaceAll(string(doc), `\u0026`, "&"))
	if len(doc) > MaxWellKnownSize {
		t.Fatalf("test document is %d bytes", len(doc))
	}
	w, err := ParseWellKnown(doc)
	if err != nil {
		t.Fatalf("parse %d-byte document: %v", len(doc), err)
	}
	out, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseWellKnown(out); err != nil {
		t.Fatalf("the %d-byte document marshals to %d bytes that do not parse: %v", len(doc), len(out), err)
	}
}

func TestCanonicalOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.org":       "https://example.org",
		"HTTPS://Example.ORG:443/":  "https://example.org",
		"http://example.org:80":     "http://example.org",
		"http://example.org:443":    "http://example.org:443",
		"http://127.0.0.1:8080/":    "http://127.0.0.1:8080",
		"http://[::1]:8080":         "http://[::1]:8080",
		"https://[2001:DB8::1]:443": "https://[2001:db8::1]",
	} {
		got, err := CanonicalOrigin(in)
		if err != nil || got != want {
			t.Errorf("CanonicalOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

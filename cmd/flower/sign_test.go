package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/security"
)

// site writes a small static site and returns its directory and files.
func site(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":         "<!doctype html><title>t</title><h1>home</h1>\n",
		"static/app.js":      "console.log('hi')\n",
		"static/img/dot.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>\n",
		"blog/index.html":    "<h1>blog</h1>\n",
	}
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func TestSign(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "site.key")
	pub := keygen(t, keyFile)
	dir, files := site(t)

	out, _, err := runCmd("sign", "--key", keyFile, "--dir", dir, "--base", "http://127.0.0.1:8080/", "--ttl", "24h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Site      string `json:"site"`
		PublicKey string `json:"public_key"`
		Files     int    `json:"files"`
		Objects   int    `json:"objects"`
		Bytes     int64  `json:"bytes"`
		Expires   int64  `json:"expires"`
		Manifest  string `json:"manifest_file"`
		WellKnown string `json:"well_known_file"`
		Skipped   []any  `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	const origin = "http://127.0.0.1:8080"
	if res.Site != origin || res.PublicKey != pub.String() || res.Files != 4 || res.Objects != 6 || res.Skipped == nil {
		t.Fatalf("summary %+v", res)
	}
	if d := time.Until(time.Unix(res.Expires, 0)); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("expires in %v, want about 24h", d)
	}

	wkData, err := os.ReadFile(res.WellKnown)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := security.ParseWellKnown(wkData)
	if err != nil || wk.PublicKey != pub || wk.Site != origin {
		t.Fatalf("well-known %s: %v", wkData, err)
	}
	mData, err := os.ReadFile(res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := security.ParseManifest(mData, origin)
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{"/": "index.html", "/blog/": "blog/index.html"}
	for rel := range files {
		urls["/"+rel] = rel
	}
	if m.Len() != len(urls) {
		t.Fatalf("manifest lists %d objects, want %d", m.Len(), len(urls))
	}
	for path, rel := range urls {
		s, ok := m.Lookup(origin + path)
		if !ok {
			t.Fatalf("manifest lacks %s", path)
		}
		body, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		// Verified against the key keygen printed, with the file's bytes.
		if err := security.Verify(pub, s, origin+path, body, time.Now()); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}

	// The summary line, and share patterns.
	out, _, err = runCmd("sign", "--key", keyFile, "--dir", dir, "--base", "https://example.org", "--share", "/static/*", "--share", "/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "signed 3 objects (3 files, ") || !strings.Contains(out, "for https://example.org with "+pub.String()+"; 3 skipped; wrote ") {
		t.Fatalf("summary line %q", out)
	}
	wkData, _ = os.ReadFile(res.WellKnown)
	if wk, err := security.ParseWellKnown(wkData); err != nil || strings.Join(wk.Share, " ") != "/static/* /" {
		t.Fatalf("share patterns: %s, %v", wkData, err)
	}
}

func TestSignErrors(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "site.key")
	keygen(t, keyFile)
	dir, _ := site(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"sign"}, "--key, --dir, --base required"},
		{[]string{"sign", "--key", keyFile, "--dir", dir}, "--base required"},
		{[]string{"sign", "--key", keyFile, "--dir", dir, "--base", "https://example.org/blog/"}, "--base: signer: sign directory: base URL"},
		{[]string{"sign", "--key", keyFile, "--dir", dir, "--base", "https://example.org", "--ttl", "-1h"}, "--ttl -1h0m0s is negative"},
		{[]string{"sign", "--key", keyFile, "--dir", dir, "--base", "https://example.org", "--share", "static/*"}, "bad share pattern"},
		{[]string{"sign", "--key", dir, "--dir", dir, "--base", "https://example.org"}, "--key"},
		{[]string{"sign", "--key", keyFile, "--dir", filepath.Join(dir, "nope"), "--base", "https://example.org"}, "no such file"},
		{[]string{"sign", "--key", keyFile, "--dir", dir, "--base", "https://example.org", "x"}, `unexpected argument "x"`},
	}
	for _, c := range cases {
		_, _, err := runCmd(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if _, _, err := runCmd("sign", "--ttl", "soon"); err == nil {
		t.Error("a malformed --ttl was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, ".well-known")); !os.IsNotExist(err) {
		t.Fatalf("a failed sign wrote output: %v", err)
	}
}

package signer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/security"
)

var testNow = time.Unix(1_800_000_000, 0)

func fixedClock() time.Time { return testNow }

func testKey(t testing.TB, b byte) security.SiteKey {
	t.Helper()
	k, err := security.GenerateSiteKey(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// testSite writes a small static site and returns its directory and the
// bytes of each file by relative path.
func testSite(t testing.TB) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	files := map[string][]byte{
		"index.html":       []byte("<!doctype html><h1>home</h1>\n"),
		"css/site.css":     []byte("body { color: #333 }\n"),
		"a b+(1).txt":      []byte("spaces and sub-delims\n"),
		"docs/index.html":  []byte("<!doctype html><h1>docs</h1>\n"),
		"img/logo.png":     append(append([]byte{}, pngHead...), 1, 2, 3),
		"data.unknownext9": []byte("plain words, sniffed\n"),
		"empty.txt":        {},
		"caf\u00e9.txt":    []byte("utf-8 name\n"),
	}
	for rel, b := range files {
		writeFile(t, root, rel, b)
	}
	writeFile(t, root, ".hidden", []byte("secret"))
	writeFile(t, root, ".git/config", []byte("[core]"))
	writeFile(t, root, ".well-known/security.txt", []byte("Contact: x"))
	if err := os.Symlink(filepath.Join("css", "site.css"), filepath.Join(root, "link.css")); err != nil {
		t.Fatal(err)
	}
	files["link.css"] = files["css/site.css"]
	if err := os.Symlink("docs", filepath.Join(root, "docs-link")); err != nil {
		t.Fatal(err)
	}
	return root, files
}

func TestSignDir(t *testing.T) {
	k := testKey(t, 1)
	root, files := testSite(t)
	res, err := SignDir(k, root, "https://Example.org:443/", Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	const site = "https://example.org"
	if res.Site != site || res.PublicKey != k.Public() || res.Files != len(files) {
		t.Fatalf("result %+v, want %d files", res, len(files))
	}
	if res.Objects != len(files)+2 { // "/" and "/docs/" for the two index.html
		t.Fatalf("%d objects, want %d", res.Objects, len(files)+2)
	}
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	if res.Bytes != total || res.Version != uint64(testNow.Unix()) || res.Expires != 0 {
		t.Fatalf("bytes %d (want %d), version %d, expires %d", res.Bytes, total, res.Version, res.Expires)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "docs-link" {
		t.Fatalf("skipped %+v, want only the directory symlink", res.Skipped)
	}

	wkData, err := os.ReadFile(filepath.Join(root, ".well-known", "flower-cdn.json"))
	if err != nil {
		t.Fatal(err)
	}
	wk, err := security.ParseWellKnown(wkData)
	if err != nil {
		t.Fatal(err)
	}
	if wk.Site != site || wk.PublicKey != k.Public() || !slices.Equal(wk.Share, []string{"/*"}) {
		t.Fatalf("well-known %+v", wk)
	}
	mData, err := os.ReadFile(filepath.Join(root, ".well-known", "flower-cdn-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := security.ParseManifest(mData, wk.Site)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != res.Objects || m.Generated() != testNow.Unix() {
		t.Fatalf("manifest has %d objects generated %d", m.Len(), m.Generated())
	}
	urls := map[string]string{ // URL -> file
		site + "/":                 "index.html",
		site + "/index.html":       "index.html",
		site + "/docs/":            "docs/index.html",
		site + "/docs/index.html":  "docs/index.html",
		site + "/css/site.css":     "css/site.css",
		site + "/link.css":         "link.css",
		site + "/a%20b+(1).txt":    "a b+(1).txt",
		site + "/img/logo.png":     "img/logo.png",
		site + "/data.unknownext9": "data.unknownext9",
		site + "/empty.txt":        "empty.txt",
		site + "/caf%C3%A9.txt":    "caf\u00e9.txt",
	}
	ctypes := map[string]string{
		"index.html": "text/html; charset=utf-8", "css/site.css": "text/css; charset=utf-8",
		"img/logo.png": "image/png", "data.unknownext9": "text/plain; charset=utf-8",
	}
	for u, rel := range urls {
		s, ok := m.Lookup(u)
		if !ok {
			t.Fatalf("manifest lacks %s", u)
		}
		if err := security.Verify(wk.PublicKey, s, u, files[rel], testNow.AddDate(50, 0, 0)); err != nil {
			t.Fatalf("verify %s against %s: %v", u, rel, err)
		}
		if want, ok := ctypes[rel]; ok && s.ContentType != want {
			t.Errorf("%s: content type %q, want %q", rel, s.ContentType, want)
		}
		if s.Version != uint64(testNow.Unix()) || s.Expires != 0 {
			t.Errorf("%s: version %d expires %d", u, s.Version, s.Expires)
		}
	}
	for _, e := range m.Objects() {
		if _, ok := urls[e.Statement.URL]; !ok {
			t.Errorf("unexpected manifest entry %s", e.Statement.URL)
		}
		if want := int64(len(files[urls[e.Statement.URL]])); e.Size != want {
			t.Errorf("%s: size %d, want %d", e.Statement.URL, e.Size, want)
		}
	}
	for _, name := range []string{"flower-cdn.json", "flower-cdn-manifest.json"} {
		fi, err := os.Stat(filepath.Join(root, ".well-known", name))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: mode %v, %v", name, fi.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, ".well-known"))
	if len(ents) != 3 {
		t.Fatalf(".well-known holds %d entries (temporary files left?)", len(ents))
	}

	// Deterministic, and the outputs are not signed on the next run.
	res2, err := SignDir(k, root, "https://example.org", Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	mData2, _ := os.ReadFile(filepath.Join(root, ".well-known", "flower-cdn-manifest.json"))
	wkData2, _ := os.ReadFile(filepath.Join(root, ".well-known", "flower-cdn.json"))
	if res2.Objects != res.Objects || !bytes.Equal(mData, mData2) || !bytes.Equal(wkData, wkData2) {
		t.Fatal("a second run with the same clock wrote different files")
	}
	// A later run orders newer.
	if _, err := SignDir(k, root, "https://example.org", Options{Now: func() time.Time { return testNow.Add(time.Minute) }}); err != nil {
		t.Fatal(err)
	}
	mData3, _ := os.ReadFile(filepath.Join(root, ".well-known", "flower-cdn-manifest.json"))
	m3, err := security.ParseManifest(mData3, site)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := m3.Lookup(site + "/"); s.Version != uint64(testNow.Unix()+60) {
		t.Fatalf("re-signed version %d", s.Version)
	}
}

func TestSignDirShareTTLVersion(t *testing.T) {
	k := testKey(t, 2)
	root, files := testSite(t)
	res, err := SignDir(k, root, "http://127.0.0.1:8080", Options{
		Share: []string{"/css/*", "/docs/"}, TTL: 90 * time.Minute, Version: 7, Now: fixedClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Objects != 2 || res.Expires != testNow.Unix()+5400 || res.Version != 7 {
		t.Fatalf("result %+v", res)
	}
	mData, _ := os.ReadFile(filepath.Join(root, ManifestFile))
	m, err := security.ParseManifest(mData, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.Lookup("http://127.0.0.1:8080/docs/")
	if !ok || s.Expires != testNow.Unix()+5400 || s.Version != 7 {
		t.Fatalf("docs/ statement %+v, %v", s, ok)
	}
	if err := security.Verify(k.Public(), s, s.URL, files["docs/index.html"], testNow.Add(91*time.Minute)); !errors.Is(err, security.ErrExpired) {
		t.Fatalf("after the TTL: %v, want ErrExpired", err)
	}
	if _, ok := m.Lookup("http://127.0.0.1:8080/docs/index.html"); ok {
		t.Fatal("signed a URL outside the share patterns")
	}
	var notShared int
	for _, sk := range res.Skipped {
		if strings.Contains(sk.Reason, "matches no share pattern") {
			notShared++
		}
	}
	// Every URL but /css/site.css and /docs/ (link.css is outside /css/*).
	if want := len(files) + 2 - 2; notShared != want {
		t.Fatalf("%d not-shared skips, want %d: %+v", notShared, want, res.Skipped)
	}
}

func TestSignDirLimits(t *testing.T) {
	k := testKey(t, 3)
	root := t.TempDir()
	writeFile(t, root, "ok.txt", []byte("ok"))
	big, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(security.MaxObjectSize + 1); err != nil { // sparse
		t.Fatal(err)
	}
	big.Close()
	long := strings.Repeat("d", 200)
	deep := strings.Repeat(long+"/", 11) + "f.txt"
	writeFile(t, root, deep, []byte("deep"))
	res, err := SignDir(k, root, "https://example.org", Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || len(res.Skipped) != 2 {
		t.Fatalf("result %+v", res)
	}
	reasons := res.Skipped[0].Reason + " | " + res.Skipped[1].Reason
	if !strings.Contains(reasons, "larger than") || !strings.Contains(reasons, "longer than 2048") {
		t.Fatalf("skip reasons %q", reasons)
	}
}

func TestSignDirRefusals(t *testing.T) {
	k := testKey(t, 4)
	outside := t.TempDir()
	writeFile(t, outside, "secret.txt", []byte("not part of the site"))

	root := t.TempDir()
	writeFile(t, root, "index.html", []byte("x"))
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := SignDir(k, root, "https://example.org", Options{}); !errors.Is(err, ErrSymlinkEscape) {
		t.Fatalf("escaping symlink: %v", err)
	}
	os.Remove(filepath.Join(root, "leak.txt"))
	if err := os.Symlink("..", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	if _, err := SignDir(k, root, "https://example.org", Options{}); !errors.Is(err, ErrSymlinkEscape) {
		t.Fatalf("symlink to the parent: %v", err)
	}
	os.Remove(filepath.Join(root, "up"))
	if _, err := os.Stat(filepath.Join(root, ".well-known")); !os.IsNotExist(err) {
		t.Fatalf("a refused run wrote output: %v", err)
	}

	for _, base := range []string{
		"https://example.org/blog/", "https://example.org/index.html", "https://example.org/?x=1",
		"https://example.org/?", "https://example.org/#top", "https://user:pw@example.org/",
		"ftp://example.org/", "example.org", "/", "https://", "https://exa mple.org/", "https://ex\u00e4mple.org/",
	} {
		if _, err := SignDir(k, root, base, Options{}); !errors.Is(err, ErrBadBase) {
			t.Errorf("base %q: %v, want ErrBadBase", base, err)
		}
	}
	for _, opt := range []Options{{TTL: -time.Second}, {TTL: time.Millisecond}, {Now: func() time.Time { return time.Unix(0, 0) }}} {
		if _, err := SignDir(k, root, "https://example.org", opt); !errors.Is(err, ErrBadOption) {
			t.Errorf("options %+v: %v, want ErrBadOption", opt, err)
		}
	}
	if _, err := SignDir(k, root, "https://example.org", Options{Share: []string{"/a/../b"}}); !errors.Is(err, security.ErrBadPattern) {
		t.Errorf("bad share pattern: %v", err)
	}
	if _, err := SignDir(security.SiteKey{}, root, "https://example.org", Options{}); !errors.Is(err, security.ErrInvalidKey) {
		t.Errorf("zero key: %v", err)
	}
	if _, err := SignDir(k, filepath.Join(root, "index.html"), "https://example.org", Options{}); err == nil {
		t.Error("signed a file as a directory")
	}
	if _, err := SignDir(k, filepath.Join(root, "missing"), "https://example.org", Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	// .well-known as a symbolic link is not written through.
	if err := os.Symlink(outside, filepath.Join(root, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if _, err := SignDir(k, root, "https://example.org", Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf(".well-known symlink: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "flower-cdn.json")); !os.IsNotExist(err) {
		t.Fatal("wrote through the .well-known symlink")
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"a/b.txt":           "a/b.txt",
		"a b/c%d.txt":       "a%20b/c%25d.txt",
		"caf\u00e9":         "caf%C3%A9",
		"x?y#z":             "x%3Fy%23z",
		"q\"<>\\^`{|}[]":    "q%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D",
		"-._~!$&'()*+,;=:@": "-._~!$&'()*+,;=:@",
	} {
		if got := EscapePath(in); got != want {
			t.Errorf("EscapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

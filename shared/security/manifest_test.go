package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const testSite = "https://example.org"

func testEntry(t testing.TB, k SiteKey, path string, body string) ManifestEntry {
	t.Helper()
	st := Statement{URL: testSite + path, Digest: BodyDigest([]byte(body)), ContentType: "text/plain; charset=utf-8", Version: 7}
	return ManifestEntry{Statement: Sign(k, st), Size: int64(len(body))}
}

func testManifest(t testing.TB, k SiteKey) Manifest {
	t.Helper()
	m, err := NewManifest(testSite, 1_800_000_000, []ManifestEntry{
		testEntry(t, k, "/z.txt", "zzz"),
		testEntry(t, k, "/", "<h1>home</h1>"),
		testEntry(t, k, "/index.html", "<h1>home</h1>"),
		testEntry(t, k, "/a%20b.txt?v=1", "ab"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	k := mustKey(t, 4)
	m := testManifest(t, k)
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The documented shape, objects sorted by URL.
	var doc struct {
		Site      string `json:"site"`
		Generated int64  `json:"generated"`
		Objects   []struct {
			URL       string `json:"url"`
			Size      int64  `json:"size"`
			Statement string `json:"statement"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Site != testSite || doc.Generated != 1_800_000_000 || len(doc.Objects) != 4 {
		t.Fatalf("document %s", data)
	}
	wantURLs := []string{testSite + "/", testSite + "/a%20b.txt?v=1", testSite + "/index.html", testSite + "/z.txt"}
	for i, o := range doc.Objects {
		s, err := DecodeStatementHeader(o.Statement)
		if err != nil {
			t.Fatal(err)
		}
		if o.URL != wantURLs[i] || s.URL != o.URL {
			t.Fatalf("objects[%d]: url %q, statement about %q, want %q", i, o.URL, s.URL, wantURLs[i])
		}
	}
	if !strings.HasPrefix(string(data), `{"site":"https://example.org","generated":1800000000,"objects":[{"url":"https://example.org/","size":13,"statement":"`) {
		t.Fatalf("member order or formatting changed: %.120s", data)
	}

	back, err := ParseManifest(data, testSite)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if back.Site() != testSite || back.Generated() != m.Generated() || back.Len() != 4 {
		t.Fatalf("parsed %+v", back)
	}
	again, err := back.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-marshal differs (%v):\n%s\n%s", err, again, data)
	}
	for _, e := range m.Objects() {
		s, ok := back.Lookup(e.Statement.URL)
		if !ok || s != e.Statement {
			t.Fatalf("Lookup(%q) = %v, %v", e.Statement.URL, s, ok)
		}
		body := map[int64]string{13: "<h1>home</h1>", 3: "zzz", 2: "ab"}[e.Size]
		if err := Verify(k.Public(), s, e.Statement.URL, []byte(body), testNow); err != nil {
			t.Fatalf("verify %s: %v", e.Statement.URL, err)
		}
	}
	for _, u := range []string{testSite + "/a%20b.txt", testSite + "/missing", "", testSite} {
		if _, ok := back.Lookup(u); ok {
			t.Fatalf("Lookup(%q) found an entry", u)
		}
	}
	// Objects is a copy.
	objs := back.Objects()
	objs[0].Statement.URL = testSite + "/changed"
	if _, ok := back.Lookup(testSite + "/"); !ok {
		t.Fatal("changing Objects() changed the manifest")
	}
}

func TestManifestDeterministic(t *testing.T) {
	k := mustKey(t, 4)
	a, b := testEntry(t, k, "/a", "a"), testEntry(t, k, "/b", "b")
	m1, err := NewManifest(testSite, 5, []ManifestEntry{a, b})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewManifest(testSite, 5, []ManifestEntry{b, a})
	if err != nil {
		t.Fatal(err)
	}
	d1, err1 := m1.Marshal()
	d2, err2 := m2.Marshal()
	if err1 != nil || err2 != nil || !bytes.Equal(d1, d2) {
		t.Fatalf("order of entries changed the document (%v, %v)", err1, err2)
	}
	empty, err := NewManifest("http://127.0.0.1:8080", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := empty.Marshal()
	if err != nil || string(d) != `{"site":"http://127.0.0.1:8080","generated":0,"objects":[]}` {
		t.Fatalf("empty manifest: %s, %v", d, err)
	}
	if _, err := (Manifest{}).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("zero Manifest marshals: %v", err)
	}
}

func TestNewManifestErrors(t *testing.T) {
	k := mustKey(t, 4)
	e := testEntry(t, k, "/a", "a")
	withURL := func(u string) ManifestEntry {
		x := e
		x.Statement.URL = u
		return x
	}
	withSize := func(n int64) ManifestEntry {
		x := e
		x.Size = n
		return x
	}
	cases := []struct {
		name    string
		site    string
		gen     int64
		entries []ManifestEntry
		want    error
	}{
		{"site with path", testSite + "/", 0, nil, ErrMalformed},
		{"upper-case host", "https://Example.org", 0, nil, ErrMalformed},
		{"negative generated", testSite, -1, nil, ErrMalformed},
		{"duplicate", testSite, 0, []ManifestEntry{e, e}, ErrMalformed},
		{"other host", testSite, 0, []ManifestEntry{withURL("https://example.com/a")}, ErrMalformed},
		{"other scheme", testSite, 0, []ManifestEntry{withURL("http://example.org/a")}, ErrMalformed},
		{"other port", testSite, 0, []ManifestEntry{withURL("https://example.org:8443/a")}, ErrMalformed},
		{"host prefix", testSite, 0, []ManifestEntry{withURL("https://example.org.evil/a")}, ErrMalformed},
		{"invalid statement", testSite, 0, []ManifestEntry{withURL("/a")}, ErrMalformed},
		{"negative size", testSite, 0, []ManifestEntry{withSize(-1)}, ErrMalformed},
		{"size over limit", testSite, 0, []ManifestEntry{withSize(MaxObjectSize + 1)}, ErrMalformed},
		{"too many", testSite, 0, make([]ManifestEntry, MaxManifestObjects+1), ErrTooLarge},
	}
	for _, c := range cases {
		if _, err := NewManifest(c.site, c.gen, c.entries); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := NewManifest(testSite, 0, []ManifestEntry{withSize(MaxObjectSize), withSize(0)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("same URL with two sizes: %v", err)
	}
	if _, err := NewManifest(testSite, 0, []ManifestEntry{withSize(MaxObjectSize)}); err != nil {
		t.Errorf("size at the limit: %v", err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	k := mustKey(t, 4)
	good, err := testManifest(t, k).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st, err := EncodeStatementHeader(testEntry(t, k, "/a", "a").Statement)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(site string, objects string) []byte {
		return []byte(fmt.Sprintf(`{"site":%q,"generated":1,"objects":[%s]}`, site, objects))
	}
	obj := func(u string, size int64, s string) string {
		return fmt.Sprintf(`{"url":%q,"size":%d,"statement":%q}`, u, size, s)
	}
	aURL := testSite + "/a"
	manyEmpty := doc(testSite, strings.TrimSuffix(strings.Repeat("{},", MaxManifestObjects+1), ","))
	cases := []struct {
		name string
		in   []byte
		site string
		want error
	}{
		{"empty", nil, testSite, ErrMalformed},
		{"not an object", []byte(`[]`), testSite, ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), " {}"...), testSite, ErrMalformed},
		{"trailing garbage", append(append([]byte{}, good...), 'x'), testSite, ErrMalformed},
		{"other site", good, "https://example.com", ErrMalformed},
		{"bad expected site", good, "https://example.org/", ErrMalformed},
		{"missing site", []byte(`{"objects":[]}`), testSite, ErrMalformed},
		{"negative generated", []byte(`{"site":"https://example.org","generated":-1}`), testSite, ErrMalformed},
		{"fractional size", doc(testSite, `{"url":"https://example.org/a","size":1.5,"statement":"`+st+`"}`), testSite, ErrMalformed},
		{"url mismatch", doc(testSite, obj(testSite+"/b", 1, st)), testSite, ErrMalformed},
		{"duplicate", doc(testSite, obj(aURL, 1, st)+","+obj(aURL, 1, st)), testSite, ErrMalformed},
		{"negative size", doc(testSite, obj(aURL, -1, st)), testSite, ErrMalformed},
		{"size over limit", doc(testSite, obj(aURL, MaxObjectSize+1, st)), testSite, ErrMalformed},
		{"statement missing", doc(testSite, `{"url":"https://example.org/a","size":1}`), testSite, ErrTruncated},
		{"statement padded", doc(testSite, obj(aURL, 1, st+"=")), testSite, ErrMalformed},
		{"statement too long", doc(testSite, obj(aURL, 1, strings.Repeat("A", MaxStatementHeaderLen+1))), testSite, ErrTooLarge},
		{"off-site statement", doc("https://example.com", obj(aURL, 1, st)), "https://example.com", ErrMalformed},
		{"too many objects", manyEmpty, testSite, ErrTooLarge},
		{"too large", append(doc(testSite, ""), bytes.Repeat([]byte(" "), MaxManifestSize)...), testSite, ErrTooLarge},
	}
	for _, c := range cases {
		_, err := ParseManifest(c.in, c.site)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "security: parse manifest: ") {
			t.Errorf("%s: error without context: %v", c.name, err)
		}
	}
}

func TestParseManifestIgnoresUnknownMembers(t *testing.T) {
	k := mustKey(t, 4)
	st, err := EncodeStatementHeader(testEntry(t, k, "/a", "a").Statement)
	if err != nil {
		t.Fatal(err)
	}
	in := `{"future":[1,{"x":2}],"site":"https://example.org","generated":3,` +
		`"objects":[{"url":"https://example.org/a","size":1,"statement":"` + st + `","etag":"x"}]}`
	m, err := ParseManifest([]byte(in), testSite)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.Lookup(testSite + "/a"); !ok || s.URL != testSite+"/a" || m.Generated() != 3 {
		t.Fatalf("parsed %+v", m)
	}
	// Missing objects: an empty manifest.
	m, err = ParseManifest([]byte(`{"site":"https://example.org"}`), testSite)
	if err != nil || m.Len() != 0 {
		t.Fatalf("no objects: %v, %d", err, m.Len())
	}
}

package security

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseManifest feeds ParseManifest untrusted documents for the site
// https://example.org. It must never panic; every error must wrap a documented
// sentinel and carry context; an accepted manifest must list only URLs of the
// site, each once, sorted, with sizes in range, each found by Lookup; it must
// marshal deterministically and parse back to the same bytes. Seeds:
// testdata/fuzz/FuzzParseManifest plus the ones added here.
func FuzzParseManifest(f *testing.F) {
	k := mustKey(f, 6)
	good, err := testManifest(f, k).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"site":"https://example.org","generated":0,"objects":[]}`))
	f.Add([]byte(`{"site":"https://example.org","objects":[{"url":"https://example.org/","size":0,"statement":"AQ"}]}`))
	f.Add([]byte(`{"site":"https://example.org"} []`))
	f.Add([]byte(``))
	sentinels := []error{ErrTooLarge, ErrMalformed, ErrTruncated, ErrVersion}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b, testSite)
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("error %v wraps none of the documented sentinels", err)
			}
			if !strings.HasPrefix(err.Error(), "security: parse manifest: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if m.Site() != testSite || m.Generated() < 0 || m.Len() > MaxManifestObjects {
			t.Fatalf("accepted manifest breaks the rules: %q %d %d", m.Site(), m.Generated(), m.Len())
		}
		objs := m.Objects()
		for i, e := range objs {
			if !strings.HasPrefix(e.Statement.URL, testSite+"/") && !strings.HasPrefix(e.Statement.URL, testSite+"?") {
				t.Fatalf("accepted an off-site URL %q", e.Statement.URL)
			}
			if e.Size < 0 || e.Size > MaxObjectSize {
				t.Fatalf("accepted size %d", e.Size)
			}
			if i > 0 && objs[i-1].Statement.URL >= e.Statement.URL {
				t.Fatalf("objects not sorted and unique at %d", i)
			}
			if s, ok := m.Lookup(e.Statement.URL); !ok || s != e.Statement {
				t.Fatalf("Lookup(%q) misses its own entry", e.Statement.URL)
			}
			_ = Verify(k.Public(), e.Statement, e.Statement.URL, nil, testNow)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		back, err := ParseManifest(out, testSite)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		again, err := back.Marshal()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("marshal is not stable (%v):\n%s\n%s", err, out, again)
		}
	})
}

// FuzzDecodeStatementHeader feeds DecodeStatementHeader untrusted header
// values. It must never panic; every error must wrap exactly one decode
// sentinel; an accepted value must be the canonical form of its statement
// (EncodeStatementHeader gives it back). Seeds:
// testdata/fuzz/FuzzDecodeStatementHeader plus the ones added here.
func FuzzDecodeStatementHeader(f *testing.F) {
	k := mustKey(f, 6)
	good, err := EncodeStatementHeader(Sign(k, testStatement()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good + "==")
	f.Add(good[:50] + "\n" + good[50:])
	f.Add("")
	f.Add(strings.Repeat("A", MaxStatementHeaderLen+1))
	f.Fuzz(func(t *testing.T, v string) {
		s, err := DecodeStatementHeader(v)
		if err != nil {
			if n := decodeSentinels(err); n != 1 {
				t.Fatalf("error %v wraps %d decode sentinels, want 1", err, n)
			}
			return
		}
		enc, err := EncodeStatementHeader(s)
		if err != nil {
			t.Fatalf("decoded statement does not encode: %v", err)
		}
		if enc != v {
			t.Fatalf("not canonical:\n in %q\nout %q", v, enc)
		}
	})
}

package security

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"slices"
)

// ManifestPath is where a static site serves its Manifest, as a plain file
// next to the WellKnown document.
const ManifestPath = "/.well-known/flower-cdn-manifest.json"

// Limits of a Manifest.
const (
	// MaxManifestSize is the largest manifest document, in bytes, that
	// ParseManifest reads and Manifest.Marshal writes.
	MaxManifestSize = 64 << 20
	// MaxManifestObjects is the largest number of objects in a manifest.
	MaxManifestObjects = 200_000
	// MaxObjectSize is the largest object size a manifest entry may state, in
	// bytes. `flower sign` leaves larger files out.
	MaxObjectSize = 1 << 30
)

// ManifestEntry is one object of a Manifest: its signed statement (the URL is
// Statement.URL) and its size in bytes. The size is informative (a prefetching
// peer uses it to plan its quota); the statement's digest is what binds the
// body.
type ManifestEntry struct {
	Statement Signed
	Size      int64
}

// Manifest lists the signed statements of a static site's objects. The origin
// serves it at ManifestPath as a plain file:
//
//	{"site":"https://example.org","generated":1800000000,
//	 "objects":[{"url":"https://example.org/","size":1234,"statement":"AQAAAB5o..."}]}
//
// site is the origin in canonical form (as in WellKnown), generated the Unix
// time in seconds at which the manifest was written (informative), and each
// object's statement the StatementHeader form (unpadded base64url) of its
// Signed. Each statement carries its own signature, so the manifest as a whole
// is not signed: a peer checks a statement with Verify and the site's key
// (from the origin) when it uses it, exactly as one received in a
// StatementHeader.
//
// A Manifest is immutable: make one with NewManifest or ParseManifest. Its
// objects are kept sorted by URL, without duplicates.
type Manifest struct {
	site      string
	generated int64
	objects   []ManifestEntry
}

// NewManifest checks and sorts the entries of the site's manifest: site in
// canonical origin form, generated >= 0, at most MaxManifestObjects entries,
// each statement within the statement limits with a URL of the site (same
// scheme, host and port), no URL twice, and sizes in [0, MaxObjectSize].
// Errors wrap ErrTooLarge or ErrMalformed. Signatures are not checked.
func NewManifest(site string, generated int64, objects []ManifestEntry) (Manifest, error) {
	m, err := newManifest(site, generated, slices.Clone(objects))
	if err != nil {
		return Manifest{}, fmt.Errorf("security: new manifest: %w", err)
	}
	return m, nil
}

func newManifest(site string, generated int64, objects []ManifestEntry) (Manifest, error) {
	if err := checkOrigin(site); err != nil {
		return Manifest{}, fmt.Errorf("site %s: %w", clip(site), err)
	}
	if generated < 0 {
		return Manifest{}, fmt.Errorf("negative generated time %d: %w", generated, ErrMalformed)
	}
	if len(objects) > MaxManifestObjects {
		return Manifest{}, fmt.Errorf("%d objects, limit %d: %w", len(objects), MaxManifestObjects, ErrTooLarge)
	}
	for i, e := range objects {
		if err := checkEntry(site, e); err != nil {
			return Manifest{}, fmt.Errorf("objects[%d]: %w", i, err)
		}
	}
	slices.SortFunc(objects, func(a, b ManifestEntry) int { return cmp.Compare(a.Statement.URL, b.Statement.URL) })
	for i := 1; i < len(objects); i++ {
		if objects[i].Statement.URL == objects[i-1].Statement.URL {
			return Manifest{}, fmt.Errorf("url %s listed twice: %w", clip(objects[i].Statement.URL), ErrMalformed)
		}
	}
	return Manifest{site: site, generated: generated, objects: objects}, nil
}

func checkEntry(site string, e ManifestEntry) error {
	if err := e.Statement.validate(); err != nil {
		return fmt.Errorf("statement: %w", err)
	}
	if e.Size < 0 || e.Size > MaxObjectSize {
		return fmt.Errorf("size %d out of range [0, %d]: %w", e.Size, MaxObjectSize, ErrMalformed)
	}
	// validate has checked that the URL parses, with a host.
	u, err := neturl.Parse(e.Statement.URL)
	if err != nil || u.Scheme+"://"+u.Host != site {
		return fmt.Errorf("url %s is not on site %s: %w", clip(e.Statement.URL), clip(site), ErrMalformed)
	}
	return nil
}

// Site returns the manifest's site origin.
func (m Manifest) Site() string { return m.site }

// Generated returns the Unix time in seconds at which the manifest was made.
func (m Manifest) Generated() int64 { return m.generated }

// Len returns the number of objects.
func (m Manifest) Len() int { return len(m.objects) }

// Objects returns a copy of the entries, sorted by URL.
func (m Manifest) Objects() []ManifestEntry { return slices.Clone(m.objects) }

// Lookup returns the statement for url (compared exactly, query included), if
// the manifest lists it. The statement is not verified: call Verify with the
// site's key before using the object.
func (m Manifest) Lookup(url string) (Signed, bool) {
	i, ok := slices.BinarySearchFunc(m.objects, url, func(e ManifestEntry, u string) int { return cmp.Compare(e.Statement.URL, u) })
	if !ok {
		return Signed{}, false
	}
	return m.objects[i].Statement, true
}

// manifestJSON and entryJSON are the document's JSON shape.
type manifestJSON struct {
	Site      string      `json:"site"`
	Generated int64       `json:"generated"`
	Objects   []entryJSON `json:"objects"`
}

type entryJSON struct {
	URL       string `json:"url"`
	Size      int64  `json:"size"`
	Statement string `json:"statement"`
}

// Marshal returns the manifest document: deterministic (objects sorted by URL,
// fixed member order, no HTML escaping, no trailing newline), so the same
// manifest always gives the same bytes. It fails for the zero Manifest
// (ErrMalformed) and for a document over MaxManifestSize (ErrTooLarge).
func (m Manifest) Marshal() ([]byte, error) {
	const op = "security: marshal manifest"
	if err := checkOrigin(m.site); err != nil {
		return nil, fmt.Errorf("%s: site %s: %w", op, clip(m.site), err)
	}
	doc := manifestJSON{Site: m.site, Generated: m.generated, Objects: make([]entryJSON, len(m.objects))}
	for i, e := range m.objects {
		st, err := EncodeStatementHeader(e.Statement)
		if err != nil {
			return nil, fmt.Errorf("%s: objects[%d]: %w", op, i, err)
		}
		doc.Objects[i] = entryJSON{URL: e.Statement.URL, Size: e.Size, Statement: st}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > MaxManifestSize {
		return nil, fmt.Errorf("%s: %d bytes, limit %d: %w", op, len(out), MaxManifestSize, ErrTooLarge)
	}
	return out, nil
}

// ParseManifest parses a manifest document from untrusted bytes for site, the
// canonical origin the caller expects (from its WellKnown document). It never
// panics and rejects: a document over MaxManifestSize or with more than
// MaxManifestObjects objects (ErrTooLarge); anything after the JSON object; a
// "site" other than site; a negative "generated"; an entry whose statement is
// not a valid StatementHeader value, whose "url" differs from the statement's
// URL, whose URL is not on the site, or whose "size" is outside
// [0, MaxObjectSize]; and a URL listed twice. Errors wrap ErrTooLarge or
// ErrMalformed or, for a statement that does not decode, the sentinel of
// DecodeStatementHeader (which may also be ErrTruncated or ErrVersion). Member names are matched as encoding/json
// does (case-insensitively) and unknown members are ignored, so that later
// versions can add fields.
//
// ParseManifest does NOT verify signatures (it has no key): a peer verifies
// each statement it uses with Verify and the site's public key, obtained from
// the origin, never from a peer.
func ParseManifest(data []byte, site string) (Manifest, error) {
	const op = "security: parse manifest"
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%s: %d bytes, limit %d: %w", op, len(data), MaxManifestSize, ErrTooLarge)
	}
	if err := checkOrigin(site); err != nil {
		return Manifest{}, fmt.Errorf("%s: expected site %s: %w", op, clip(site), err)
	}
	var doc manifestJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return Manifest{}, fmt.Errorf("%s: %v: %w", op, err, ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, fmt.Errorf("%s: data after the JSON object: %w", op, ErrMalformed)
	}
	if doc.Site != site {
		return Manifest{}, fmt.Errorf("%s: site %s, want %s: %w", op, clip(doc.Site), clip(site), ErrMalformed)
	}
	if len(doc.Objects) > MaxManifestObjects {
		return Manifest{}, fmt.Errorf("%s: %d objects, limit %d: %w", op, len(doc.Objects), MaxManifestObjects, ErrTooLarge)
	}
	objects := make([]ManifestEntry, len(doc.Objects))
	for i, e := range doc.Objects {
		s, err := DecodeStatementHeader(e.Statement)
		if err != nil {
			return Manifest{}, fmt.Errorf("%s: objects[%d] (%s): %w", op, i, clip(e.URL), err)
		}
		if s.URL != e.URL {
			return Manifest{}, fmt.Errorf("%s: objects[%d]: url %s but the statement is about %s: %w", op, i, clip(e.URL), clip(s.URL), ErrMalformed)
		}
		objects[i] = ManifestEntry{Statement: s, Size: e.Size}
	}
	m, err := newManifest(site, doc.Generated, objects)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	return m, nil
}

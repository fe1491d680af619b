// Package signer holds the site operator's signing tools: SignDir signs every
// file of a static site and writes the two files a static web server then
// serves as they are (the well-known document and the signed manifest), and
// Middleware adds a signed statement to the shareable responses of a dynamic
// Go origin. docs/signing.md describes the formats and shows both in use.
//
// The formats themselves (security.StatementHeader, security.Manifest,
// security.WellKnown) live in shared/security, which peers use to read them.
package signer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/atomicfile"
	"github.com/flowercdn/flower/shared/security"
)

// Errors of SignDir; the returned errors wrap them with context.
var (
	// ErrBadBase: the base URL is not an http(s) origin (with at most "/" as
	// its path, no query, fragment or user info).
	ErrBadBase = errors.New("bad base URL")
	// ErrSymlinkEscape: a symbolic link under the site directory points
	// outside it.
	ErrSymlinkEscape = errors.New("symbolic link leaves the site directory")
	// ErrBadOption: an Options field is out of range.
	ErrBadOption = errors.New("bad option")
)

// The files SignDir writes, relative to the site directory.
var (
	WellKnownFile = filepath.FromSlash(strings.TrimPrefix(security.WellKnownPath, "/"))
	ManifestFile  = filepath.FromSlash(strings.TrimPrefix(security.ManifestPath, "/"))
)

// DefaultShare is the share pattern list SignDir publishes when
// Options.Share is empty: every path of the site.
var DefaultShare = []string{"/*"}

// Options tunes SignDir. The zero value is ready to use.
type Options struct {
	// Share lists the URL path patterns peers may share (see
	// security.ValidatePattern), written to the well-known document. Empty
	// means DefaultShare. Files outside the patterns are not signed.
	Share []string
	// TTL bounds how long each statement stays valid: Expires is the signing
	// time plus TTL, rounded down to the second. 0 means the statements never
	// expire (re-signing with a higher Version still replaces them in peers'
	// caches). Otherwise it must be at least one second.
	TTL time.Duration
	// Version is the version of every statement. 0 means the signing time in
	// Unix seconds, so that a later run orders newer.
	Version uint64
	// Now is the clock; nil means time.Now. With a fixed clock SignDir is
	// deterministic: the same directory gives the same files, byte for byte.
	Now func() time.Time
}

// Skipped is a file SignDir left out, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Result describes a SignDir run.
type Result struct {
	// Site is the canonical origin the objects were signed for.
	Site string `json:"site"`
	// PublicKey is the key that verifies the statements.
	PublicKey security.PublicKey `json:"public_key"`
	// Files is the number of files signed, Bytes their total size.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Objects is the number of manifest entries: one per file, plus one per
	// index.html for its directory's URL.
	Objects int `json:"objects"`
	// Version and Expires are the values of every statement.
	Version uint64 `json:"version"`
	Expires int64  `json:"expires"`
	// WellKnownFile and ManifestFile are the paths written.
	WellKnownFile string `json:"well_known_file"`
	ManifestFile  string `json:"manifest_file"`
	// Skipped lists the files left out (not shareable, too large, a URL over
	// the limit, a symbolic link to a directory, not a regular file).
	// Dot files and dot directories are left out without being listed.
	Skipped []Skipped `json:"skipped"`
}

// SignDir signs every regular file under dir for the site at base and writes
// dir/.well-known/flower-cdn.json (the security.WellKnown document: the site,
// key.Public() and the share patterns) and dir/.well-known/flower-cdn-manifest.json
// (the security.Manifest of all statements), each atomically (a temporary
// file renamed over the old one) with mode 0644. Any static web server that
// serves dir at base then serves everything a peer needs.
//
// base is the site's origin, such as "https://example.org" or
// "https://example.org/"; a path other than "/", a query, a fragment or user
// info is refused (ErrBadBase). The scheme and host are lower-cased and a
// default port dropped, as browsers do.
//
// The URL of dir/a/b c.html is base + "/a/b%20c.html": every byte of the
// path outside RFC 3986's pchar set (letters, digits, "-._~!$&'()*+,;=:@") is
// percent-encoded. A file named index.html is also signed for its directory's
// URL ending in "/" (base + "/a/"), which is what browsers request. Each
// statement names the body's SHA-256, the content type (from the extension:
// a built-in table of web types, then the system's MIME table, then content
// sniffing), Options.Version and the expiry from Options.TTL.
//
// Files and directories whose names start with "." are left out (so are
// the outputs in .well-known). A symbolic link is followed when it points to
// a regular file inside dir; one that points outside dir is an error
// (ErrSymlinkEscape); other links and special files are left out and listed
// in Result.Skipped, as are files over security.MaxObjectSize, files whose
// URL is over security.MaxURLLen and files no share pattern matches.
func SignDir(key security.SiteKey, dir string, base string, opt Options) (Result, error) {
	const op = "signer: sign directory"
	if key.IsZero() {
		return Result{}, fmt.Errorf("%s: zero site key: %w", op, security.ErrInvalidKey)
	}
	site, err := security.CanonicalOrigin(base)
	if err != nil {
		return Result{}, fmt.Errorf("%s: base URL: %w (%w)", op, ErrBadBase, err)
	}
	share := opt.Share
	if len(share) == 0 {
		share = DefaultShare
	}
	wk := security.WellKnown{Site: site, PublicKey: key.Public(), Share: share}
	wkData, err := wk.Marshal()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", op, err)
	}
	if opt.TTL < 0 || opt.TTL > 0 && opt.TTL < time.Second {
		return Result{}, fmt.Errorf("%s: TTL %v: must be 0 (never expires) or at least 1s: %w", op, opt.TTL, ErrBadOption)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	t := now()
	version := opt.Version
	if version == 0 {
		if t.Unix() <= 0 {
			return Result{}, fmt.Errorf("%s: clock %v is before 1970: %w", op, t, ErrBadOption)
		}
		version = uint64(t.Unix())
	}
	var expires int64
	if opt.TTL > 0 {
		expires = t.Add(opt.TTL).Unix()
	}
	root, err := filepath.EvalSymlinks(dir)
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", op, dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return Result{}, fmt.Errorf("%s: %w", op, err)
	} else if !fi.IsDir() {
		return Result{}, fmt.Errorf("%s: %s is not a directory", op, dir)
	}

	s := &dirSigner{key: key, wk: wk, root: root, version: version, expires: expires}
	if err := filepath.WalkDir(root, s.visit); err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", op, dir, err)
	}
	m, err := security.NewManifest(site, t.Unix(), s.entries)
	if err == nil {
		s.manifest, err = m.Marshal()
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s %s: %w", op, dir, err)
	}
	wkDir := filepath.Join(root, filepath.Dir(WellKnownFile))
	if err := ensureDir(wkDir); err != nil {
		return Result{}, fmt.Errorf("%s: %w", op, err)
	}
	// The manifest first: a well-known document with a new key never comes
	// before the statements it verifies.
	if err := atomicfile.Write(filepath.Join(root, ManifestFile), s.manifest, 0o644, true); err != nil {
		return Result{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := atomicfile.Write(filepath.Join(root, WellKnownFile), wkData, 0o644, true); err != nil {
		return Result{}, fmt.Errorf("%s: %w", op, err)
	}
	return Result{
		Site: site, PublicKey: key.Public(),
		Files: s.files, Bytes: s.bytes, Objects: len(s.entries),
		Version: version, Expires: expires,
		WellKnownFile: filepath.Join(dir, WellKnownFile),
		ManifestFile:  filepath.Join(dir, ManifestFile),
		Skipped:       s.skipped,
	}, nil
}

// dirSigner is the state of one SignDir walk.
type dirSigner struct {
	key      security.SiteKey
	wk       security.WellKnown
	root     string
	version  uint64
	expires  int64
	entries  []security.ManifestEntry
	skipped  []Skipped
	files    int
	bytes    int64
	manifest []byte
}

func (s *dirSigner) skip(rel, reason string) {
	s.skipped = append(s.skipped, Skipped{Path: rel, Reason: reason})
}

func (s *dirSigner) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	if p == s.root {
		return nil
	}
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	if strings.HasPrefix(d.Name(), ".") {
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	if d.IsDir() {
		return nil
	}
	src := p
	if d.Type()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			s.skip(rel, "broken symbolic link")
			return nil
		}
		if r, err := filepath.Rel(s.root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
			return fmt.Errorf("%s -> %s: %w", rel, target, ErrSymlinkEscape)
		}
		src = target
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		s.skip(rel, "symbolic link to a directory (not followed)")
		return nil
	case !fi.Mode().IsRegular():
		s.skip(rel, "not a regular file")
		return nil
	case fi.Size() > security.MaxObjectSize:
		s.skip(rel, fmt.Sprintf("larger than %d bytes", security.MaxObjectSize))
		return nil
	}
	urls := []string{s.wk.Site + "/" + EscapePath(rel)}
	if path.Base(rel) == "index.html" {
		dirURL := s.wk.Site + "/"
		if d := path.Dir(rel); d != "." {
			dirURL += EscapePath(d) + "/"
		}
		urls = append(urls, dirURL)
	}
	var signable []string
	for _, u := range urls {
		switch {
		case len(u) > security.MaxURLLen:
			s.skip(rel, fmt.Sprintf("URL %.60s... is longer than %d bytes", u, security.MaxURLLen))
		case !s.wk.Shares(u):
			s.skip(rel, "URL "+u+" matches no share pattern")
		default:
			signable = append(signable, u)
		}
	}
	if len(signable) == 0 {
		return nil
	}
	digest, size, ctype, err := hashFile(src)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if size > security.MaxObjectSize {
		s.skip(rel, fmt.Sprintf("larger than %d bytes", security.MaxObjectSize))
		return nil
	}
	for _, u := range signable {
		st := security.Statement{URL: u, Digest: digest, ContentType: ctype, Version: s.version, Expires: s.expires}
		if err := st.Validate(); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		s.entries = append(s.entries, security.ManifestEntry{Statement: security.Sign(s.key, st), Size: size})
	}
	s.files++
	s.bytes += size
	return nil
}

// hashFile reads the file at p once: its SHA-256, its size (read up to one
// byte past security.MaxObjectSize) and its content type.
func hashFile(p string) (digest [sha256.Size]byte, size int64, ctype string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return digest, 0, "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return digest, 0, "", fmt.Errorf("read %s: %w", p, err)
	}
	head = head[:n]
	h := sha256.New()
	h.Write(head)
	rest, err := io.Copy(h, io.LimitReader(f, security.MaxObjectSize+1-int64(n)))
	if err != nil {
		return digest, 0, "", fmt.Errorf("read %s: %w", p, err)
	}
	copy(digest[:], h.Sum(nil))
	return digest, int64(n) + rest, ContentType(p, head), nil
}

// webTypes are the content types of common web files, used before the
// system's MIME table so that signing gives the same types on every machine.
var webTypes = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
	".mjs": "text/javascript; charset=utf-8", ".json": "application/json",
	".map": "application/json", ".webmanifest": "application/manifest+json",
	".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".xml": "text/xml; charset=utf-8", ".csv": "text/csv; charset=utf-8",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
	".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
	".avif": "image/avif", ".ico": "image/vnd.microsoft.icon",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".wasm": "application/wasm", ".pdf": "application/pdf",
	".mp4": "video/mp4", ".webm": "video/webm", ".mp3": "audio/mpeg",
	".ogg": "audio/ogg", ".wav": "audio/wav", ".zip": "application/zip",
	".gz": "application/gzip",
}

// ContentType returns the content type SignDir signs for the file name with
// the first bytes head of its content: the built-in table of web types by
// lower-case extension, else the system's MIME table (mime.TypeByExtension),
// else http.DetectContentType(head).
func ContentType(name string, head []byte) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := webTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" && security.CheckContentType(t) == nil {
		return t
	}
	return http.DetectContentType(head)
}

// EscapePath percent-encodes a slash-separated relative file path for a URL:
// every byte outside RFC 3986's pchar set (ALPHA DIGIT - . _ ~ ! $ & ' ( ) *
// + , ; = : @) and "/" becomes %XX (upper-case hex), so "a b/ü.txt" becomes
// "a%20b/%C3%BC.txt".
func EscapePath(rel string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if isPchar(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isPchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// ensureDir makes dir (mode 0755) unless it exists as a real directory; a
// symbolic link or a file in its place is refused.
func ensureDir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory (a symbolic link is not written through)", dir)
	}
	return nil
}

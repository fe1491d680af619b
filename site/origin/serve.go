package origin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/flowercdn/flower/shared/signer"
)

// serve answers one request: a dynamic endpoint or a file of the site.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		h.Set("Cache-Control", "no-store")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case LoginPath:
		s.serveLogin(w, r)
		return
	case LogoutPath:
		s.serveLogout(w, r)
		return
	case LivePath:
		s.serveLive(w, r)
		return
	case BadgePath:
		if c, err := r.Cookie(SessionCookie); err == nil {
			s.serveBadge(w, r, c.Value)
			return
		}
		// The anonymous badge varies with the cookie too, and says so:
		// no cache and no peer may answer a logged-in visitor with it.
		w.Header().Set("Vary", "Cookie")
	}
	s.serveFile(w, r)
}

// cacheControl is the Cache-Control of a file of the site at the URL path p.
func cacheControl(p string) string {
	switch {
	case strings.HasSuffix(p, "/"), strings.HasSuffix(p, ".html"), strings.HasSuffix(p, ".htm"),
		strings.HasPrefix(p, "/.well-known/"), p == "/flower-sw.js":
		return CacheRevalidate
	case strings.HasPrefix(p, "/me/"):
		// Public, but revalidated, so that a browser that logs in later
		// asks the origin again (with its cookie) instead of reusing it.
		return "public, no-cache"
	}
	return CacheStatic
}

// fileName maps a URL path to a name under the site directory, or reports
// false for a path that is not clean or names a dot file other than
// /.well-known/.
func fileName(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.Contains(p, "\x00") {
		return "", false
	}
	name := p[1:]
	if strings.HasSuffix(p, "/") {
		name += "index.html"
	}
	if path.Clean("/"+name) != "/"+name {
		return "", false
	}
	for i, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") && (i != 0 || seg != ".well-known") {
			return "", false
		}
	}
	return name, true
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", CacheRevalidate)
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// serveFile serves a file of the site with Range support (http.ServeContent),
// choosing a precompressed NAME.br or NAME.gz next to it when the client
// accepts it.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	name, ok := fileName(r.URL.Path)
	if !ok {
		notFound(w)
		return
	}
	f, err := s.root.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("open", "name", name, "err", err)
		}
		notFound(w)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.log.Warn("stat", "name", name, "err", err)
		notFound(w)
		return
	}
	if fi.IsDir() {
		// As net/http's FileServer: a directory's URL ends in a slash.
		u := r.URL.Path + "/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		w.Header().Set("Cache-Control", CacheRevalidate)
		http.Redirect(w, r, u, http.StatusMovedPermanently)
		return
	}
	if !fi.Mode().IsRegular() {
		notFound(w)
		return
	}
	h := w.Header()
	ctype, err := s.contentType(name, f)
	if err != nil {
		s.log.Warn("read", "name", name, "err", err)
		http.Error(w, "read error", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheControl(r.URL.Path))
	body, bodyInfo, enc := io.ReadSeeker(f), fi, ""
	if variants := s.variants(name); len(variants) > 0 {
		h.Add("Vary", "Accept-Encoding")
		if e := negotiate(r.Header.Values("Accept-Encoding"), variants); e != "" {
			if vf, err := s.root.Open(name + encodingExt[e]); err == nil {
				defer vf.Close()
				if vi, err := vf.Stat(); err == nil && vi.Mode().IsRegular() {
					body, bodyInfo, enc = vf, vi, e
				}
			}
		}
	}
	if enc != "" {
		// http.ServeContent sends no Content-Length with a Content-Encoding,
		// so a compressed variant is always sent whole, with its length:
		// ignoring Range is allowed, and no browser asks a range of one.
		h.Set("Content-Encoding", enc)
		h.Set("Content-Length", strconv.FormatInt(bodyInfo.Size(), 10))
		r.Header.Del("Range")
	}
	h.Set("ETag", etag(bodyInfo, enc))
	http.ServeContent(w, r, name, bodyInfo.ModTime(), body)
}

// contentType is the type flower sign signs for the file: the same table, so
// that what the origin serves is what peers serve.
func (s *Server) contentType(name string, f io.ReadSeeker) (string, error) {
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return signer.ContentType(name, head[:n]), nil
}

// encodingExt maps a content coding to the suffix of its precompressed file.
var encodingExt = map[string]string{"br": ".br", "gzip": ".gz"}

// variants lists the content codings precompressed next to name, best first.
func (s *Server) variants(name string) []string {
	if strings.HasSuffix(name, ".br") || strings.HasSuffix(name, ".gz") {
		return nil
	}
	var out []string
	for _, e := range []string{"br", "gzip"} {
		if fi, err := s.root.Stat(name + encodingExt[e]); err == nil && fi.Mode().IsRegular() {
			out = append(out, e)
		}
	}
	return out
}

// negotiate picks the first of the available codings (best first) that the
// Accept-Encoding header values allow with a non-zero q, or "" for identity.
func negotiate(accept []string, available []string) string {
	q := map[string]float64{}
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding == "" {
				continue
			}
			weight := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						weight = f
					}
				}
			}
			q[coding] = weight
		}
	}
	for _, e := range available {
		w, ok := q[e]
		if !ok {
			w, ok = q["*"]
		}
		if ok && w > 0 {
			return e
		}
	}
	return ""
}

// etag is a strong validator of one representation: its modification time,
// size and coding.
func etag(fi fs.FileInfo, enc string) string {
	t := strconv.FormatInt(fi.ModTime().UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size(), 36)
	if enc != "" {
		t += "-" + enc
	}
	return fmt.Sprintf("%q", t)
}

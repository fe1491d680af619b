package origin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"net/http"
	"strconv"
	"time"

	"github.com/flowercdn/flower/site/demogen"
)

// The dynamic endpoints, none of which peers may share.
const (
	LoginPath     = "/me/login"
	LogoutPath    = "/me/logout"
	BadgePath     = "/" + demogen.BadgePath
	LivePath      = "/live/now.json"
	SessionCookie = "flower_demo_session"
	// CookiePath scopes the session cookie, so that the rest of the site
	// (its shared /img/, /css/, /js/ and /video/) is requested without it.
	CookiePath = "/me/"
)

// serveLogin starts a demo session: a random id in a cookie scoped to /me/.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		s.log.Error("session id", "err", err)
		http.Error(w, "no session", http.StatusInternalServerError)
		return
	}
	sid := hex.EncodeToString(id[:])
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sid, Path: CookiePath, MaxAge: 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	page(w, r, "Logged in", fmt.Sprintf(`<p>You are logged in as visitor <code>%s</code>. The session cookie is scoped to <code>%s</code>:
your browser sends it only there, so everything else on this site is still fetched without cookies and can come from other visitors.</p>
<p><img src="%s" width="%d" height="%d" alt="your personal badge"></p>
<p><a href="/about.html">Back to the about page</a> · <a href="%s">Log out</a></p>`,
		html.EscapeString(sid[:8]), CookiePath, BadgePath, demogen.BadgeSize, demogen.BadgeSize, LogoutPath))
}

// serveLogout ends the demo session.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: CookiePath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	page(w, r, "Logged out", `<p>You are logged out. <a href="/about.html">Back to the about page</a></p>`)
}

// page writes a small uncacheable HTML page.
func page(w http.ResponseWriter, r *http.Request, title, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	doc := fmt.Sprintf(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s · Flower Gardens</title><link rel="stylesheet" href="/css/site.css"></head>
<body><main class="narrow"><h1>%s</h1>
%s
</main></body></html>
`, html.EscapeString(title), html.EscapeString(title), body)
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(doc))
	}
}

// serveBadge answers a visitor with a session its own badge: private and
// varying with the cookie, so no cache and no peer may keep it for another.
func (s *Server) serveBadge(w http.ResponseWriter, r *http.Request, sid string) {
	hash := fnv.New64a()
	hash.Write([]byte(sid))
	var b bytes.Buffer
	if err := demogen.EncodeJPEG(&b, demogen.Badge(demogen.BadgeSize, hash.Sum64()), 85); err != nil {
		s.log.Error("badge", "err", err)
		http.Error(w, "no badge", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", "private, max-age=60")
	h.Set("Vary", "Cookie")
	http.ServeContent(w, r, "badge.jpg", time.Time{}, bytes.NewReader(b.Bytes()))
}

// liveJSON is the /live/now.json answer.
type liveJSON struct {
	Now    string `json:"now"`
	UnixMs int64  `json:"unix_ms"`
	Seq    int64  `json:"seq"`
}

// serveLive answers the server's clock, never to be stored.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := json.Marshal(liveJSON{Now: now.UTC().Format(time.RFC3339Nano), UnixMs: now.UnixMilli(), Seq: s.live.Add(1)})
	if err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

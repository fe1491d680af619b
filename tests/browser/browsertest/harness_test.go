package browsertest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// testServer serves testdata, a mailbox for WebRTC signalling
// (/signal/<room>/<who>: POST adds a message, GET long-polls for them),
// and /ua, which answers the request's User-Agent. It records the
// User-Agent of every request.
type testServer struct {
	*httptest.Server
	mu      sync.Mutex
	uas     map[string]string // request URI -> User-Agent of its last request
	boxes   map[string][]json.RawMessage
	changed chan struct{}
}

func newTestServer(t *testing.T) *testServer {
	s := &testServer{uas: map[string]string{}, boxes: map[string][]json.RawMessage{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	mux.HandleFunc("/img/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="500"><rect width="300" height="500" fill="#8c4"/></svg>`)
	})
	mux.HandleFunc("/ua", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.UserAgent()) })
	mux.HandleFunc("POST /signal/{room}/{who}", s.post)
	mux.HandleFunc("GET /signal/{room}/{who}", s.poll)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.uas[r.URL.RequestURI()] = r.UserAgent()
		s.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || !json.Valid(body) {
		http.Error(w, "want a JSON body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	key := r.PathValue("room") + "/" + r.PathValue("who")
	s.boxes[key] = append(s.boxes[key], body)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *testServer) poll(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("room") + "/" + r.PathValue("who")
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		msgs, changed := s.boxes[key], s.changed
		delete(s.boxes, key)
		s.mu.Unlock()
		if len(msgs) > 0 {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(msgs)
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			_, _ = io.WriteString(w, "[]")
			return
		case <-r.Context().Done():
			return
		}
	}
}

// count is how many distinct request URIs start with prefix.
func (s *testServer) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for uri := range s.uas {
		if strings.HasPrefix(uri, prefix) {
			n++
		}
	}
	return n
}

func (s *testServer) userAgent(uri string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ua, ok := s.uas[uri]
	return ua, ok
}

// TestServiceWorker: a page registers a worker that answers /sw-hello;
// the console and uncaught exceptions of page and worker reach the log;
// the worker's own requests carry the visitor's User-Agent; after
// StopWorkers the worker starts again on the next fetch.
func TestServiceWorker(t *testing.T) {
	srv := newTestServer(t)
	v := NewVisitor(t, "a", Options{})
	v.Navigate(srv.URL + "/sw.html")
	v.WaitEval("window.swReady", 10*time.Second)
	v.WaitLog("[a page] log: page: controlled by "+srv.URL+"/sw.js", 5*time.Second)
	v.WaitLog("[a service_worker] log: sw: started at", 10*time.Second)

	const hello = "hello from the service worker"
	var body string
	v.MustEval(`fetch('/sw-hello').then(r => r.text())`, &body)
	if body != hello {
		t.Fatalf("/sw-hello answered %q, want %q", body, hello)
	}
	if _, ok := srv.userAgent("/sw-hello"); ok {
		t.Fatal("/sw-hello reached the server: the service worker did not answer it")
	}
	v.WaitLog("[a service_worker] log: sw: answering /sw-hello", 5*time.Second)

	// Every request says which visitor it comes from: the page's, the
	// worker script's and the worker's own.
	var navUA, fromSW string
	v.MustEval(`navigator.userAgent`, &navUA)
	v.MustEval(`fetch('/ua?from=page').then(r => r.text())`, nil)
	v.MustEval(`fetch('/sw-upstream').then(r => r.text())`, &fromSW)
	if !strings.HasSuffix(navUA, " flower-visitor/a") {
		t.Errorf("navigator.userAgent %q lacks the visitor suffix", navUA)
	}
	for _, uri := range []string{"/sw.html", "/sw.js", "/ua?from=page", "/ua?from=sw"} {
		if ua, _ := srv.userAgent(uri); ua != navUA {
			t.Errorf("User-Agent of %s: %q, want %q", uri, ua, navUA)
		}
	}
	if fromSW != navUA {
		t.Errorf("the worker's fetch sent User-Agent %q, want %q", fromSW, navUA)
	}
	t.Logf("User-Agent: %s", navUA)

	// Uncaught exceptions, of the page and of the worker.
	v.MustEval(`setTimeout(() => { throw new Error('page boom'); }), 1`, nil)
	v.WaitLog("[a page] exception: Uncaught Error: page boom", 5*time.Second)
	v.MustEval(`fetch('/sw-throw').then(r => r.text())`, nil)
	v.WaitLog("[a service_worker] exception: Uncaught Error: sw boom", 5*time.Second)

	// A stopped worker starts again for the next fetch.
	starts := v.CountLog("[a service_worker] log: sw: started at")
	v.StopWorkers()
	restart := time.Now()
	v.MustEval(`fetch('/sw-hello').then(r => r.text())`, &body)
	if body != hello {
		t.Fatalf("/sw-hello after StopWorkers answered %q, want %q", body, hello)
	}
	t.Logf("fetch through the stopped worker answered in %v", time.Since(restart).Round(time.Millisecond))
	v.WaitLogCount("[a service_worker] log: sw: started at", starts+1, 10*time.Second)
	if _, ok := srv.userAgent("/sw-hello"); ok {
		t.Fatal("/sw-hello reached the server after StopWorkers")
	}
	v.Screenshot("sw.png")
}

// TestWebRTCBetweenVisitors: two separate Chromium processes open a data
// channel to each other through a signalling mailbox on the test server,
// and exchange messages both ways.
func TestWebRTCBetweenVisitors(t *testing.T) {
	srv := newTestServer(t)
	a := NewVisitor(t, "a", Options{})
	b := NewVisitor(t, "b", Options{})
	if a.PID() == b.PID() {
		t.Fatalf("visitors share the process %d", a.PID())
	}
	t.Logf("visitor start: a %v, b %v", a.Started.Round(time.Millisecond), b.Started.Round(time.Millisecond))

	start := time.Now()
	a.Navigate(srv.URL + "/rtc.html?role=offerer&room=r1")
	b.Navigate(srv.URL + "/rtc.html?role=answerer&room=r1")
	for _, v := range []*Visitor{a, b} {
		v.WaitEval(`rtc.state === 'open'`, 20*time.Second)
	}
	var openMs float64
	a.MustEval(`rtc.openMs`, &openMs)
	var pair string
	a.MustEval(`selectedPair()`, &pair)
	t.Logf("data channel open %v after the first navigation (offerer page: %.0f ms after its script started); pair %s",
		time.Since(start).Round(time.Millisecond), openMs, pair)

	a.MustEval(`dc.send('hello from a'), true`, nil)
	b.WaitEval(`rtc.received.includes('hello from a')`, 5*time.Second)
	b.MustEval(`dc.send('hello from b'), true`, nil)
	a.WaitEval(`rtc.received.includes('hello from b')`, 5*time.Second)
	b.WaitLog("[b page] log: rtc: received hello from a", 5*time.Second)

	// When a visitor closes its browser, pagehide runs and the page closes
	// its connection (rtc.html does that), so the other visitor's channel
	// closes at once. (With no such handler, the other side notices only
	// when ICE consent checks fail: about 7.6 s here.)
	closed := time.Now()
	a.Close()
	b.WaitEval(`rtc.state === 'closed'`, 5*time.Second)
	t.Logf("b saw the channel close %v after a closed its browser", time.Since(closed).Round(time.Millisecond))
}

// TestScrollAndOffline: ScrollToBottom makes every lazy image load;
// SetOffline cuts the page's HTTP and restores it.
func TestScrollAndOffline(t *testing.T) {
	srv := newTestServer(t)
	v := NewVisitor(t, "s", Options{})
	v.Navigate(srv.URL + "/lazy.html")
	if n := srv.count("/img/"); n >= 20 {
		t.Fatalf("%d lazy images loaded before scrolling: the test page is too short", n)
	}
	before := srv.count("/img/")
	v.ScrollToBottom()
	var complete int
	v.MustEval(`[...document.images].filter(i => i.complete && i.naturalWidth > 0).length`, &complete)
	if n := srv.count("/img/"); n != 20 || complete != 20 {
		t.Fatalf("after scrolling: %d images requested, %d complete; want 20", n, complete)
	}
	t.Logf("images loaded: %d before scrolling, 20 after", before)

	v.SetOffline(true)
	var r string
	v.MustEval(`fetch('/ua?offline').then(r => 'fetched', e => 'failed: ' + e.message)`, &r)
	if !strings.HasPrefix(r, "failed") {
		t.Fatalf("offline fetch: %s", r)
	}
	var online bool
	v.MustEval(`navigator.onLine`, &online)
	if online {
		t.Error("navigator.onLine is true while offline")
	}
	v.SetOffline(false)
	v.MustEval(`fetch('/ua?online').then(r => 'fetched', e => 'failed: ' + e.message)`, &r)
	if r != "fetched" {
		t.Fatalf("fetch back online: %s", r)
	}
}

// TestCloseAndKillLeaveNoProcess: after Close or Kill, no process of the
// visitor's browser is left.
func TestCloseAndKillLeaveNoProcess(t *testing.T) {
	for _, kill := range []bool{false, true} {
		v := NewVisitor(t, "c", Options{})
		if len(processesUsing(v.dataDir)) < 2 {
			t.Fatalf("only %v use the profile of a running browser: the check cannot see Chromium's children", processesUsing(v.dataDir))
		}
		start := time.Now()
		if kill {
			v.Kill()
		} else {
			v.Close()
		}
		if err := syscall.Kill(v.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill %v: browser process %d still there (%v)", kill, v.PID(), err)
		}
		if pids := processesUsing(v.dataDir); len(pids) > 0 {
			t.Errorf("kill %v: processes %v left", kill, pids)
		}
		t.Logf("kill %v: browser gone in %v", kill, time.Since(start).Round(time.Millisecond))
	}
}

// TestBootstrap runs the real flower-bootstrap and stops it.
func TestBootstrap(t *testing.T) {
	b := RunBootstrap(t, "*", 2)
	resp, err := http.Get(b.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	b.Stop()
	if resp, err := http.Get(b.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("bootstrap still answers after Stop")
	}
}

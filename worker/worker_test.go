package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
	"github.com/flowercdn/flower/worker"
)

// memStore is a worker.Store in memory with an LRU clock.
type memStore struct {
	mu    sync.Mutex
	clock int
	objs  map[ids.ObjectID]*memObj
	trims int // Trim calls
}

func (m *memStore) trimCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trims
}

type memObj struct {
	e    peer.Entry
	body []byte
	used int
}

func newMemStore() *memStore { return &memStore{objs: make(map[ids.ObjectID]*memObj)} }

func (m *memStore) Get(_ ids.SiteID, obj ids.ObjectID) (peer.Entry, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[obj]
	if !ok {
		return peer.Entry{}, nil, peer.ErrNotFound
	}
	return o.e, o.body, nil
}

func (m *memStore) Put(e peer.Entry, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock++
	m.objs[ids.ObjectOf(e.URL)] = &memObj{e: e, body: body, used: m.clock}
	return nil
}

func (m *memStore) Delete(_ ids.SiteID, obj ids.ObjectID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, obj)
	return nil
}

func (m *memStore) Touch(_ ids.SiteID, obj ids.ObjectID, _ peer.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objs[obj]; ok {
		m.clock++
		o.used = m.clock
	}
	return nil
}

func (m *memStore) Trim(quota int64) ([]peer.Entry, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trims++
	var all []*memObj
	var total int64
	for _, o := range m.objs {
		all = append(all, o)
		total += o.e.Size
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used < all[j].used })
	var gone []peer.Entry
	for _, o := range all {
		if total <= quota {
			break
		}
		delete(m.objs, ids.ObjectOf(o.e.URL))
		total -= o.e.Size
		gone = append(gone, o.e)
	}
	return gone, total, nil
}

func (m *memStore) has(url string) bool {
	_, _, err := m.Get(0, ids.ObjectOf(url))
	return err == nil
}

// fakePeers answers Ask with a fixed answer and records Fetched.
type fakePeers struct {
	mu      sync.Mutex
	answer  worker.Answer
	asked   int
	fetched []string
}

func (f *fakePeers) Ask(context.Context, string, string, time.Duration) (worker.Answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.answer, nil
}

func (f *fakePeers) Fetched(url string, ok, stored bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := "failed"
	switch {
	case stored:
		s = "stored"
	case ok:
		s = "private"
	}
	f.fetched = append(f.fetched, url+" "+s)
}

func setup(t *testing.T, quota int64) (*peertest.Origin, *worker.Worker, *memStore, *fakePeers, *peer.SiteClient) {
	t.Helper()
	o := peertest.NewOrigin(t, map[string]int{
		"/static/a.bin": 100 << 10, "/static/b.bin": 60 << 10, "/static/c.bin": 60 << 10,
		"/private/nostore": 1000, "/other/x": 10,
	})
	sc, err := peer.NewSiteClient(context.Background(), peer.SiteClientConfig{Origin: o.URL})
	if err != nil {
		t.Fatal(err)
	}
	st, fp := newMemStore(), &fakePeers{}
	w, err := worker.New(worker.Config{Site: sc, Store: st, Peers: fp, Quota: quota})
	if err != nil {
		t.Fatal(err)
	}
	return o, w, st, fp, sc
}

func handle(t *testing.T, w *worker.Worker, url string, h http.Header) *worker.Response {
	t.Helper()
	r, err := w.Handle(context.Background(), worker.Request{URL: url, Header: h})
	if err != nil {
		t.Fatalf("handle %s: %v", url, err)
	}
	return r
}

// TestOriginThenCache: a miss with no page-side peer goes to the origin,
// is stored and announced; the next request is a verified cache hit, and a
// Range request gets its part.
func TestOriginThenCache(t *testing.T) {
	o, w, st, fp, _ := setup(t, 0)
	url := o.URL + "/static/a.bin"
	r := handle(t, w, url, nil)
	if r.Source != "origin" || r.Status != 200 || !bytes.Equal(r.Body, o.Body("/static/a.bin")) {
		t.Fatalf("first request: %s %d", r.Source, r.Status)
	}
	peertest.Eventually(t, "the object is stored and announced", 2*time.Second, func() bool {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		return st.has(url) && len(fp.fetched) == 1 && fp.fetched[0] == url+" stored"
	})
	r = handle(t, w, url, nil)
	if r.Source != "cache" || !bytes.Equal(r.Body, o.Body("/static/a.bin")) || o.Hits("/static/a.bin") != 1 {
		t.Fatalf("second request: %s, origin hits %d", r.Source, o.Hits("/static/a.bin"))
	}
	if fp.asked != 1 {
		t.Fatalf("page-side peer asked %d times, want 1 (a hit asks nobody)", fp.asked)
	}
	r = handle(t, w, url, http.Header{"Range": {"bytes=10-19"}})
	if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, o.Body("/static/a.bin")[10:20]) || r.Header.Get("Content-Range") == "" {
		t.Fatalf("range: %d %q %d bytes", r.Status, r.Header.Get("Content-Range"), len(r.Body))
	}
	if s := w.Stats(); s.FromOrigin != 1 || s.FromCache != 2 || s.BytesFromOrigin != 100<<10 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := w.Handle(context.Background(), worker.Request{URL: o.URL + "/other/x"}); !errors.Is(err, worker.ErrPass) {
		t.Fatalf("a URL off the whitelist: %v, want ErrPass", err)
	}
}

// TestFromPeer: the page-side peer's object is verified before use; a
// tampered one is refused and the origin answers.
func TestFromPeer(t *testing.T) {
	o, w, _, fp, sc := setup(t, 0)
	url := o.URL + "/static/b.bin"
	body := o.Body("/static/b.bin")
	or, err := sc.Fetch(context.Background(), url)
	if err != nil || or.Entry == nil {
		t.Fatalf("fetch entry: %v", err)
	}
	hits := o.Hits("/static/b.bin")
	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: *or.Entry, Body: body}
	r := handle(t, w, url, nil)
	if r.Source != "peer" || !bytes.Equal(r.Body, body) || o.Hits("/static/b.bin") != hits {
		t.Fatalf("from peer: %s, origin hits %d -> %d", r.Source, hits, o.Hits("/static/b.bin"))
	}
	bad := bytes.Clone(body)
	bad[100] ^= 1
	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: *or.Entry, Body: bad}
	r = handle(t, w, o.URL+"/static/b.bin", http.Header{"Cache-Control": {"no-cache"}})
	// The first answer was not stored by the worker (the page's peer stores
	// what it gets), so this request asks again and gets the bad copy.
	if r.Source != "origin" || !bytes.Equal(r.Body, body) {
		t.Fatalf("tampered object: served from %s", r.Source)
	}
	if s := w.Stats(); s.VerifyFailures != 1 || s.FromPeers != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestKeep: an object the page-side peer got from a peer and did not store
// (Answer.Keep) is stored by the worker after it answers, and the page is
// told; a tampered one is neither used nor stored.
func TestKeep(t *testing.T) {
	o, w, st, fp, sc := setup(t, 0)
	url := o.URL + "/static/c.bin"
	or, err := sc.Fetch(context.Background(), url)
	if err != nil || or.Entry == nil {
		t.Fatalf("fetch entry: %v", err)
	}
	body := o.Body("/static/c.bin")
	bad := bytes.Clone(body)
	bad[7] ^= 1
	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: peer.Entry{Statement: or.Entry.Statement}, Body: bad, Keep: true}
	if r := handle(t, w, url, nil); r.Source != "origin" {
		t.Fatalf("tampered object: served from %s", r.Source)
	}
	peertest.Eventually(t, "the origin's copy is stored", 2*time.Second, func() bool { return st.has(url) })
	_, got, err := st.Get(0, ids.ObjectOf(url))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("stored copy: %v, intact %v", err, bytes.Equal(got, body))
	}
	if err := st.Delete(0, ids.ObjectOf(url)); err != nil {
		t.Fatal(err)
	}
	fp.mu.Lock()
	fp.fetched = nil
	fp.mu.Unlock()

	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: peer.Entry{Statement: or.Entry.Statement}, Body: body, Keep: true}
	if r := handle(t, w, url, nil); r.Source != "peer" || !bytes.Equal(r.Body, body) {
		t.Fatalf("from peer: %s", r.Source)
	}
	peertest.Eventually(t, "the worker stores the peer's object and tells the page", 2*time.Second, func() bool {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		return st.has(url) && len(fp.fetched) == 1 && fp.fetched[0] == url+" stored"
	})
	if r := handle(t, w, url, nil); r.Source != "cache" {
		t.Fatalf("after keeping: %s, want cache", r.Source)
	}
}

// TestDigest: a digest the glue computed (WebCrypto) is what the worker
// checks against the statement: the right one is accepted, a wrong one
// refused (the origin answers).
func TestDigest(t *testing.T) {
	o, w, _, fp, sc := setup(t, 0)
	url := o.URL + "/static/b.bin"
	or, err := sc.Fetch(context.Background(), url)
	if err != nil || or.Entry == nil {
		t.Fatalf("fetch entry: %v", err)
	}
	body := o.Body("/static/b.bin")
	good := sha256.Sum256(body)
	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: peer.Entry{Statement: or.Entry.Statement}, Body: body, Digest: &good}
	if r := handle(t, w, url, nil); r.Source != "peer" {
		t.Fatalf("the right digest: served from %s", r.Source)
	}
	bad := good
	bad[0] ^= 1
	fp.answer.Digest = &bad
	if r := handle(t, w, url, nil); r.Source != "origin" || !bytes.Equal(r.Body, body) {
		t.Fatalf("a wrong digest: served from %s", r.Source)
	}
	if s := w.Stats(); s.VerifyFailures != 1 {
		t.Fatalf("verification failures %d, want 1", s.VerifyFailures)
	}
}

// TestNotShared: a no-store response is answered, never stored, and the
// page-side peer's waiting query is told it was not stored.
func TestNotShared(t *testing.T) {
	o, w, st, fp, _ := setup(t, 0)
	fp.answer = worker.Answer{Kind: worker.ToOrigin}
	url := o.URL + "/private/nostore"
	for i := range 2 {
		r := handle(t, w, url, nil)
		if r.Source != "origin" || st.has(url) {
			t.Fatalf("request %d: %s, stored %v", i, r.Source, st.has(url))
		}
	}
	if len(fp.fetched) != 2 || fp.fetched[0] != url+" private" || o.Hits("/private/nostore") != 2 {
		t.Fatalf("announced %v, origin hits %d", fp.fetched, o.Hits("/private/nostore"))
	}
}

// TestQuota: the store keeps at most the quota, least recently used out
// first.
func TestQuota(t *testing.T) {
	o, w, st, _, _ := setup(t, 170<<10)
	a, b, c := o.URL+"/static/a.bin", o.URL+"/static/b.bin", o.URL+"/static/c.bin"
	stored := func(u string) func() bool { return func() bool { return st.has(u) } }
	handle(t, w, a, nil)
	peertest.Eventually(t, "a stored, the store trimmed", 2*time.Second, func() bool { return st.has(a) && st.trimCalls() == 1 })
	handle(t, w, b, nil)
	peertest.Eventually(t, "b stored", 2*time.Second, stored(b))
	if n := st.trimCalls(); n != 1 {
		t.Fatalf("%d trims after storing b within the quota, want none since a's", n-1)
	}
	handle(t, w, a, nil) // a is now more recent than b
	handle(t, w, c, nil) // 220 KiB > 170 KiB: b goes
	peertest.Eventually(t, "the LRU object is evicted", 2*time.Second, func() bool { return !st.has(b) })
	if !st.has(a) || !st.has(c) {
		t.Fatalf("kept a %v c %v", st.has(a), st.has(c))
	}
}

// TestFirstByteParam: the script tag's data-first-byte-ms reaches the
// worker through its script URL; nonsense is refused, not half-used.
func TestFirstByteParam(t *testing.T) {
	for _, c := range []struct {
		url  string
		want time.Duration
		ok   bool
	}{
		{"https://example.org/flower-sw.js", 0, true},
		{"https://example.org/flower-sw.js?log=debug", 0, true},
		{"https://example.org/flower-sw.js?log=debug&first-byte-ms=500", 500 * time.Millisecond, true},
		{"https://example.org/flower-sw.js?first-byte-ms=10000", 10 * time.Second, true},
		{"https://example.org/flower-sw.js?first-byte-ms=10", 0, false},
		{"https://example.org/flower-sw.js?first-byte-ms=20000", 0, false},
		{"https://example.org/flower-sw.js?first-byte-ms=0.5", 0, false},
		{"https://example.org/flower-sw.js?first-byte-ms=-300", 0, false},
	} {
		got, err := worker.FirstByteParam(c.url)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("%s: %v, %v; want %v, ok %v", c.url, got, err, c.want, c.ok)
		}
	}
}

// TestSiteCounters: the worker's counters, as the operator metrics'
// reports carry them: requests and bytes by source, one TTFB bucket count
// per peer or origin answer, and they survive a restart (Snapshot,
// Restore) with their buckets.
func TestSiteCounters(t *testing.T) {
	o, w, _, fp, sc := setup(t, 0)
	handle(t, w, o.URL+"/static/a.bin", nil) // origin
	or, err := sc.Fetch(context.Background(), o.URL+"/static/b.bin")
	if err != nil || or.Entry == nil {
		t.Fatalf("fetch entry: %v", err)
	}
	fp.answer = worker.Answer{Kind: worker.FromPeer, Entry: *or.Entry, Body: o.Body("/static/b.bin")}
	handle(t, w, o.URL+"/static/b.bin", nil) // peer
	s := w.Stats()
	c := s.SiteCounters()
	if c.Requests != [3]uint64{0, 1, 1} || c.Bytes[opmetrics.SourcePeer] != uint64(len(o.Body("/static/b.bin"))) ||
		c.Bytes[opmetrics.SourceOrigin] != 100<<10 || c.PeerTTFB.Count() != 1 || c.OriginTTFB.Count() != 1 {
		t.Fatalf("site counters %+v", c)
	}
	w2, err := worker.New(worker.Config{Site: sc, Store: newMemStore(), Peers: fp})
	if err != nil {
		t.Fatal(err)
	}
	w2.Restore(s)
	if got := w2.Stats().SiteCounters(); got != c {
		t.Fatalf("restored %+v, want %+v", got, c)
	}
}

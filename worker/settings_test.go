package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowercdn/flower/worker"
)

// TestLeftPassesThrough: once the visitor left the site, the worker
// handles none of its requests, not even a cache hit: the browser fetches
// them itself; coming back restores the cache hit.
func TestLeftPassesThrough(t *testing.T) {
	o, w, _, fp, _ := setup(t, 0)
	url := o.URL + "/static/a.bin"
	handle(t, w, url, nil)
	w.SetLeft(true)
	if w.Shares(url) || !w.Left() {
		t.Fatalf("left: Shares %v, Left %v", w.Shares(url), w.Left())
	}
	if _, err := w.Handle(context.Background(), worker.Request{URL: url}); !errors.Is(err, worker.ErrPass) {
		t.Fatalf("left: Handle: %v, want ErrPass", err)
	}
	if n := o.Hits("/static/a.bin"); n != 1 || fp.asked != 1 {
		t.Fatalf("left: origin hits %d, page asked %d", n, fp.asked)
	}
	w.SetLeft(false)
	waitStored(t, w, url)
}

// waitStored waits for url to be a cache hit.
func waitStored(t *testing.T, w *worker.Worker, url string) {
	t.Helper()
	for range 200 {
		if r, err := w.Handle(context.Background(), worker.Request{URL: url}); err == nil && r.Source == "cache" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never a cache hit", url)
}

// TestParseSettings: the settings document round-trips, an empty one is
// the defaults, a damaged one is an error, a negative cap is none.
func TestParseSettings(t *testing.T) {
	s := worker.Settings{Paused: true, UploadLimit: 50000, Left: true}
	got, err := worker.ParseSettings(s.Marshal())
	if err != nil || got != s {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, err := worker.ParseSettings(nil); err != nil || got != (worker.Settings{}) {
		t.Fatalf("empty: %+v, %v", got, err)
	}
	if _, err := worker.ParseSettings([]byte("{")); err == nil {
		t.Fatal("a damaged document parsed")
	}
	if got, _ := worker.ParseSettings([]byte(`{"uploadLimit":-5}`)); got.UploadLimit != 0 {
		t.Fatalf("negative cap: %+v", got)
	}
}

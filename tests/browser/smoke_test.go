package browser_test

import "testing"

// TestSmoke: A gets a picture from the origin through its service worker;
// B, same locality, then gets it from A's page-side peer.
func TestSmoke(t *testing.T) {
	d := startDemo(t, 1)
	a := d.visitor(t, "a", "/index.html")
	src, n := fetchSource(t, a, "/img/daisy-meadow.jpg")
	t.Logf("a: %s %d", src, n)
	if src != "origin" {
		t.Fatalf("a got the picture from %q, want origin", src)
	}
	b := d.visitor(t, "b", "/index.html")
	src, n = fetchSource(t, b, "/img/daisy-meadow.jpg")
	t.Logf("b: %s %d", src, n)
	if src != "peer" {
		t.Fatalf("b got the picture from %q, want peer", src)
	}
}

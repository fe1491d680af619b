package peertest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/shared/ids"
)

// Eventually polls cond until it holds, failing the test after d.
func Eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitDirectory waits until the bootstrap service at boot (http://host:port)
// lists peer id as a directory of origin in locality loc: a peer that
// starts before the service knows the petal's directory founds D-ring
// again.
func WaitDirectory(t testing.TB, boot, origin string, loc int, id ids.PeerID) {
	t.Helper()
	Eventually(t, fmt.Sprintf("the bootstrap lists %s as directory of locality %d", id.Short(), loc), 10*time.Second, func() bool {
		e, err := client.FetchEntries(context.Background(), http.DefaultClient, boot, origin, loc)
		return err == nil && slices.ContainsFunc(e.Local, func(m ids.Member) bool { return m.ID == id })
	})
}

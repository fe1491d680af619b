package peertest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	u := fmt.Sprintf("%s/v1/entry?site=%s&loc=%d", boot, url.QueryEscape(origin), loc)
	Eventually(t, fmt.Sprintf("the bootstrap lists %s as directory of locality %d", id.Short(), loc), 10*time.Second, func() bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		e, err := client.ParseEntriesJSON(b)
		return err == nil && slices.ContainsFunc(e.Local, func(m ids.Member) bool { return m.ID == id })
	})
}

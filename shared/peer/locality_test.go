package peer_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/peer/peertest"
)

// TestLocalityFromLandmarks: a peer given no locality times the landmarks
// the bootstrap service announces and takes the nearest one's (landmark
// binning, index modulo k).
func TestLocalityFromLandmarks(t *testing.T) {
	landmark := func(delay time.Duration) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	o := peertest.NewOrigin(t, map[string]int{"/static/a.bin": 1000})
	for _, c := range []struct {
		delays []time.Duration
		want   int
	}{
		{[]time.Duration{150 * time.Millisecond, 0, 150 * time.Millisecond}, 1},
		{[]time.Duration{150 * time.Millisecond, 150 * time.Millisecond, 0}, 2},
	} {
		var lms []string
		for _, d := range c.delays {
			lms = append(lms, landmark(d))
		}
		boot := startBootstrapWith(t, 3, []string{o.URL}, lms)
		p := startPeerWith(t, boot, o, newHub().factory(), 0, nil, nil, func(cfg *peer.Config) { cfg.Locality = -1 })
		if got := p.Locality(); got != c.want {
			t.Errorf("landmark delays %v: locality %d, want %d", c.delays, got, c.want)
		}
	}
}

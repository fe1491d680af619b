package browsertest

import (
	"testing"

	"github.com/flowercdn/flower/tests/bootstraptest"
)

// Bootstrap is a running flower-bootstrap process: URL is its base URL;
// Stop ends it (for a "bootstrap down" test).
type Bootstrap = bootstraptest.Bootstrap

// StartBootstrap runs the real flower-bootstrap binary (built once per
// test binary) on 127.0.0.1:0 for the website origin allowOrigin ("*":
// any) with the given number of localities, and returns its base URL. It
// stops at the end of the test.
func StartBootstrap(t testing.TB, allowOrigin string, localities int) string {
	t.Helper()
	return bootstraptest.Start(t, allowOrigin, localities).URL
}

// RunBootstrap is StartBootstrap returning the process, to stop it early.
func RunBootstrap(t testing.TB, allowOrigin string, localities int) *Bootstrap {
	t.Helper()
	return bootstraptest.Start(t, allowOrigin, localities)
}

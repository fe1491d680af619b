package browsertest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/flowercdn/flower/tests/bootstraptest"
)

// dataDirs are the profile dirs of every visitor of this test binary.
var dataDirs sync.Map

func registerDataDir(dir string) { dataDirs.Store(dir, true) }

// Main runs the tests of m; then it checks that no Chromium process of a
// visitor outlived its test (killing any, and failing the run), removes the
// flower-bootstrap binary that StartBootstrap built, and exits. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
func Main(m *testing.M) {
	code := bootstraptest.Run(m)
	n := 0
	dataDirs.Range(func(k, _ any) bool {
		n += killProcessesUsing(k.(string))
		return true
	})
	if n > 0 {
		fmt.Fprintf(os.Stderr, "browsertest: %d Chromium processes outlived their tests (killed now)\n", n)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// killProcessesUsing kills (SIGKILL) the processes started with
// --user-data-dir=dir, which Chromium passes to all its children, and
// returns how many there were.
func killProcessesUsing(dir string) int {
	n := 0
	for _, pid := range processesUsing(dir) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// processesUsing lists the processes started with --user-data-dir=dir.
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	// Chromium rewrites the command line of its zygote's children with
	// spaces between the arguments: an argument ends at a NUL or a space.
	want := []byte("--user-data-dir=" + dir)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmdline = append(cmdline, 0)
		for rest := cmdline; ; {
			i := bytes.Index(rest, want)
			if i < 0 {
				break
			}
			if c := rest[i+len(want)]; c == 0 || c == ' ' {
				pids = append(pids, pid)
				break
			}
			rest = rest[i+len(want):]
		}
	}
	return pids
}

// Package bootstraptest runs the real flower-bootstrap binary for tests: it
// builds the binary once per test binary (on first use) and starts it on a
// free loopback port.
//
// A package that uses it calls Main from its TestMain, which removes the
// built binary when the tests end:
//
//	func TestMain(m *testing.M) { bootstraptest.Main(m) }
package bootstraptest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	mainCalled atomic.Bool
	buildOnce  sync.Once
	buildDir   string
	binPath    string
	buildErr   error
)

// Main runs the tests of m, removes the binary that Start built, and exits
// with the tests' status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the tests' status, for a
// TestMain with more to check afterwards.
func Run(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// Binary returns the path of the flower-bootstrap binary, building it on
// the first call of the test binary.
func Binary(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("bootstraptest: call bootstraptest.Main(m) (or Run, or browsertest.Main) from TestMain; it removes the built binary")
	}
	buildOnce.Do(func() {
		start := time.Now()
		buildDir, buildErr = os.MkdirTemp("", "flower-bootstrap-bin")
		if buildErr != nil {
			buildErr = fmt.Errorf("bootstraptest: temp dir: %w", buildErr)
			return
		}
		binPath = filepath.Join(buildDir, "flower-bootstrap")
		cmd := exec.Command(goTool(), "build", "-o", binPath, "github.com/flowercdn/flower/cmd/flower-bootstrap")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("bootstraptest: go build flower-bootstrap: %w\n%s", err, out)
			return
		}
		t.Logf("built flower-bootstrap in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// goTool is the go command of the running toolchain, so that the test
// works without go in PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Bootstrap is a running flower-bootstrap process.
type Bootstrap struct {
	// URL is its base URL, such as http://127.0.0.1:40123.
	URL string

	t        testing.TB
	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Start runs flower-bootstrap on 127.0.0.1:0 for the website origin
// allowOrigin ("*": any) with the given number of localities, at debug log
// level, its log going to the test log. It stops at the end of the test.
func Start(t testing.TB, allowOrigin string, localities int) *Bootstrap {
	t.Helper()
	bin := Binary(t)
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--allow-origins", allowOrigin,
		"--localities", fmt.Sprint(localities), "--log-level", "debug")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("bootstrap stderr pipe: %v", err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bootstrap: %v", err)
	}
	b := &Bootstrap{t: t, cmd: cmd, done: make(chan struct{})}
	t.Cleanup(b.Stop)
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			t.Log("bootstrap: " + line)
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		// Wait only after the log is read to its end (os/exec's rule), so
		// every line reaches the test log before Stop returns.
		<-logDone
		_ = cmd.Wait()
		close(b.done)
	}()
	select {
	case a := <-addr:
		b.URL = "http://" + a
		return b
	case <-b.done:
		t.Fatalf("bootstrap exited before listening: %v", cmd.ProcessState)
	case <-time.After(15 * time.Second):
		t.Fatal("bootstrap did not report its address within 15s")
	}
	return nil
}

// Stop interrupts the process and waits for it to exit (killing it after
// 10 s). It is safe to call more than once; the test's cleanup calls it.
func (b *Bootstrap) Stop() {
	b.stopOnce.Do(func() {
		_ = b.cmd.Process.Signal(os.Interrupt)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
}

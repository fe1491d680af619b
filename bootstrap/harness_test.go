package bootstrap_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
)

// binPath is the real flower-bootstrap binary, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flower-bootstrap-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "flower-bootstrap")
	build := exec.Command("go", "build", "-race", "-o", binPath, "github.com/flowercdn/flower/cmd/flower-bootstrap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		// -race needs cgo; fall back to a plain build.
		build = exec.Command("go", "build", "-o", binPath, "github.com/flowercdn/flower/cmd/flower-bootstrap")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build flower-bootstrap:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one running flower-bootstrap process.
type instance struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  string
	done chan error
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// start runs the binary on a free loopback port with args (and env, as
// KEY=VALUE) and stops it when the test ends.
func start(t *testing.T, env []string, args ...string) *instance {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "bootstrap.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start bootstrap: %v", err)
	}
	in := &instance{t: t, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait(); lf.Close() }()
	t.Cleanup(func() {
		_ = in.stop(syscall.SIGTERM)
		// The binary is built with -race: a race it reports fails the test.
		if log := in.logText(); strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("the bootstrap process reported a data race:\n%s", log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if m := listenRE.FindSubmatch(b); m != nil {
			in.addr = string(m[1])
			break
		}
		select {
		case err := <-in.done:
			in.done <- err
			t.Fatalf("bootstrap exited early: %v\n%s", err, b)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if in.addr == "" {
		t.Fatalf("bootstrap did not log its address:\n%s", in.logText())
	}
	in.waitReady()
	return in
}

func (in *instance) logText() string {
	b, _ := os.ReadFile(in.log)
	return string(b)
}

func (in *instance) waitReady() {
	in.t.Helper()
	eventually(in.t, 10*time.Second, "readyz", func() bool {
		code, _ := in.get("/readyz", "")
		return code == http.StatusOK
	})
}

// stop signals the process and waits; it is idempotent.
func (in *instance) stop(sig syscall.Signal) error {
	select {
	case err := <-in.done: // already exited
		in.done <- err
		return err
	default:
	}
	_ = in.cmd.Process.Signal(sig)
	select {
	case err := <-in.done:
		in.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = in.cmd.Process.Kill()
		err := <-in.done
		in.done <- err
		return errors.New("bootstrap did not stop within 20s")
	}
}

func (in *instance) ws() string { return "ws://" + in.addr + "/v1/ws" }

func (in *instance) get(path, origin string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of every sample of name whose labels contain sel.
func (in *instance) metric(name, sel string) float64 {
	in.t.Helper()
	code, body := in.get("/metrics", "")
	if code != http.StatusOK {
		in.t.Fatalf("metrics: %d %s", code, body)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		if sel != "" && !strings.Contains(rest, sel) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opt client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(ctxT(t), url, opt)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// recvType reads frames until one of type typ arrives (others fail the test).
func recvType(t *testing.T, c *client.Client, typ frame.Type) frame.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("recv %s: %v", typ, err)
	}
	if f.Type != typ {
		t.Fatalf("recv: got %s (%+v), want %s", f.Type, f, typ)
	}
	return f
}

func expectError(t *testing.T, c *client.Client, code frame.Code) frame.Frame {
	t.Helper()
	f := recvType(t, c, frame.TError)
	if f.Code != code {
		t.Fatalf("error frame: got %s (%q), want %s", f.Code, f.Text, code)
	}
	return f
}

// ping round-trips an application ping: the connection is alive and served.
func ping(t *testing.T, c *client.Client, id uint32) {
	t.Helper()
	if err := c.Send(ctxT(t), &frame.Frame{Type: frame.TPing, ReqID: id}); err != nil {
		t.Fatal(err)
	}
	if f := recvType(t, c, frame.TPong); f.ReqID != id {
		t.Fatalf("pong %d, want %d", f.ReqID, id)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

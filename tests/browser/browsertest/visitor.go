// Package browsertest drives real headless Chromium processes for the
// browser end-to-end tests: one process per visitor, each with its own
// fresh profile, with the console of its page and of its service workers
// in the test log. See docs/testing-browser.md.
//
// A test package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds each browser action whose method takes no timeout.
const DefaultTimeout = 30 * time.Second

// Chromium returns the path of the Chromium binary: $FLOWER_CHROMIUM,
// /usr/bin/chromium or chromium in PATH. It fails the test when there is
// none: the browser tests are part of `make test` and never skipped.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FLOWER_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FLOWER_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no Chromium: run scripts/install-browser.sh (installs Debian's chromium), or set FLOWER_CHROMIUM to the binary")
	return ""
}

// Options are how a visitor's browser differs from the default.
type Options struct {
	// Flags are extra command-line flags, without the leading "--": a string
	// value gives --name=value, true gives --name, false removes a default
	// flag.
	Flags map[string]any
}

// Visitor is one person with one browser: a separate Chromium process with
// its own profile, showing one page.
type Visitor struct {
	// Name tells the visitor apart in the test log, in the User-Agent
	// (" flower-visitor/<Name>") and in screenshot names.
	Name string
	// Started is how long the browser took to start and show about:blank.
	Started time.Duration

	t           testing.TB
	dataDir     string
	allocCancel context.CancelFunc
	ctx         context.Context // the page's chromedp context
	cancel      context.CancelFunc
	pid         int
	swEnabled   bool
	net         netTracker
	workers     sync.WaitGroup // goroutines attaching to worker targets
	closeOnce   sync.Once

	mu       sync.Mutex
	ended    bool          // after Close: no more t.Log
	logs     []string      // every console line, in order
	changed  chan struct{} // closed and replaced when logs grows
	attached map[target.ID]context.CancelFunc
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// NewVisitor starts a Chromium process for the visitor name (letters,
// digits, ".", "_", "-") with a fresh profile in a test temp dir, and opens
// about:blank. The browser closes at the end of the test.
func NewVisitor(t testing.TB, name string, opts Options) *Visitor {
	t.Helper()
	if !nameRE.MatchString(name) {
		t.Fatalf("visitor name %q: want letters, digits, '.', '_' or '-'", name)
	}
	bin := Chromium(t)
	ua, err := userAgent(bin, name)
	if err != nil {
		t.Fatal(err)
	}
	v := &Visitor{
		Name: name, t: t, dataDir: t.TempDir(),
		changed: make(chan struct{}), attached: make(map[target.ID]context.CancelFunc),
	}
	registerDataDir(v.dataDir)
	flags := map[string]any{
		// New headless mode: the real browser without a window, with
		// service workers and WebRTC as a visitor has them.
		"headless": "new",
		// The tests run as root in a container, where the sandbox cannot start.
		"no-sandbox":  true,
		"disable-gpu": true,
		// Plain HTTP/1.1 and HTTP/2 to the test servers.
		"disable-quic": true,
		// No first-run UI, no background requests to Google that race with
		// the test's traffic or slow the start.
		"no-first-run":                  true,
		"disable-background-networking": true,
		"disable-component-update":      true,
		"disable-sync":                  true,
		// Two or three browsers share the machine's cores: none of them
		// may decide that its page is in the background and throttle its
		// timers or stop producing frames (chromedp's defaults do the
		// same).
		"disable-background-timer-throttling":    true,
		"disable-backgrounding-occluded-windows": true,
		"disable-renderer-backgrounding":         true,
		// Plain host candidates (another headless instance may fail to resolve
		// mDNS .local names), and every navigation through the service worker.
		"disable-features": "WebRtcHideLocalIpsWithMdns,ServiceWorkerAutoPreload",
		"window-size":      "1280,800",
		"user-agent":       ua,
		"user-data-dir":    v.dataDir,
	}
	for k, val := range opts.Flags {
		flags[k] = val
	}
	aopts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin)}
	for k, val := range flags {
		if b, ok := val.(bool); ok && !b {
			continue
		}
		aopts = append(aopts, chromedp.Flag(k, val))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), aopts...)
	v.allocCancel = allocCancel
	v.ctx, v.cancel = chromedp.NewContext(allocCtx,
		chromedp.WithListener(v.listener("page")),
		chromedp.WithErrorf(func(f string, a ...any) { v.logf("chromedp: "+f, a...) }),
	)
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(func() { v.cleanup() })

	start := time.Now()
	// The first Run starts the browser; it lives as long as v.ctx, so this
	// call must have no timeout of its own: a timer ends a hung start.
	timer := time.AfterFunc(60*time.Second, v.cancel)
	err = chromedp.Do(v.ctx)
	timer.Stop()
	if err != nil {
		t.Fatalf("visitor %s: start Chromium: %v", name, err)
	}
	v.Started = time.Since(start)
	v.pid = chromedp.FromContext(v.ctx).Browser.Process().Pid
	if err := chromedp.ListenBrowser(v.ctx, v.onBrowserEvent); err != nil {
		t.Fatalf("visitor %s: listen to the browser: %v", name, err)
	}
	// Workers that exist already (none on about:blank, but be exact).
	tctx, cancel := context.WithTimeout(v.ctx, DefaultTimeout)
	defer cancel()
	infos, err := chromedp.Targets(tctx)
	if err != nil {
		t.Fatalf("visitor %s: list targets: %v", name, err)
	}
	for _, info := range infos {
		v.maybeAttach(info)
	}
	t.Logf("visitor %s: Chromium pid %d started in %v", name, v.pid, v.Started.Round(time.Millisecond))
	return v
}

var (
	uaOnce    sync.Once
	uaVersion string
	uaErr     error
)

// userAgent is the User-Agent that headless Chromium sends by default,
// with " flower-visitor/<name>" appended. A --user-agent flag covers every
// request of the browser, including those of service workers.
func userAgent(bin, name string) (string, error) {
	uaOnce.Do(func() {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			uaErr = fmt.Errorf("%s --version: %w", bin, err)
			return
		}
		m := regexp.MustCompile(`(\d+)\.\d+\.\d+\.\d+`).FindStringSubmatch(string(out))
		if m == nil {
			uaErr = fmt.Errorf("%s --version: no version in %q", bin, out)
			return
		}
		// Chromium reduces the User-Agent to the major version.
		uaVersion = m[1] + ".0.0.0"
	})
	if uaErr != nil {
		return "", uaErr
	}
	return "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/" +
		uaVersion + " Safari/537.36 flower-visitor/" + name, nil
}

// PID is the process id of the visitor's browser.
func (v *Visitor) PID() int { return v.pid }

// onBrowserEvent runs on chromedp's reading goroutine: it must not block
// or run commands.
func (v *Visitor) onBrowserEvent(ev any) {
	switch ev := ev.(type) {
	case *target.EventTargetCreated:
		v.maybeAttach(ev.TargetInfo)
	case *target.EventTargetInfoChanged:
		v.maybeAttach(ev.TargetInfo)
	case *target.EventTargetDestroyed:
		v.mu.Lock()
		cancel := v.attached[ev.TargetID]
		delete(v.attached, ev.TargetID)
		ended := v.ended
		v.mu.Unlock()
		if cancel != nil && !ended {
			v.logf("worker target %s gone", ev.TargetID)
			go cancel()
		}
	}
}

// maybeAttach attaches to a worker target that is not attached yet, so that
// its console reaches the log. Attaching replays the messages the worker
// logged before.
func (v *Visitor) maybeAttach(info *target.Info) {
	if info == nil || !strings.Contains(info.Type, "worker") {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended || v.attached[info.TargetID] != nil {
		return
	}
	wctx, cancel := chromedp.NewContext(v.ctx, chromedp.WithTargetID(info.TargetID),
		chromedp.WithDetachOnCancel(), chromedp.WithListener(v.listener(info.Type)))
	v.attached[info.TargetID] = cancel
	v.workers.Add(1)
	go func() {
		defer v.workers.Done()
		// The target lives as long as the context of its first Run: no
		// timeout on that context, a timer that cancels it instead.
		timer := time.AfterFunc(10*time.Second, cancel)
		err := chromedp.Do(wctx)
		timer.Stop()
		if err != nil {
			v.logf("attach to %s %s (%s): %v", info.Type, info.TargetID, info.URL, err)
			return
		}
		v.logf("attached to %s %s", info.Type, info.URL)
	}()
}

// Close closes the browser as a visitor does: the page closes first
// (Page.close: pagehide and unload run, the document's RTCPeerConnections
// close, so peers see their data channels close at once), then the browser
// (Browser.close), killed if that takes more than 5 s. It is safe to call
// more than once; the test's cleanup calls it.
func (v *Visitor) Close() { v.shutdown(false) }

// Kill ends the browser with SIGKILL, as a crash or a power cut would: the
// pages get no chance to say goodbye.
func (v *Visitor) Kill() { v.shutdown(true) }

func (v *Visitor) shutdown(kill bool) {
	v.closeOnce.Do(func() {
		start := time.Now()
		if kill {
			if p, err := os.FindProcess(v.pid); err == nil {
				_ = p.Kill()
			}
		} else {
			v.closePage()
			ctx, cancel := context.WithTimeout(v.ctx, 5*time.Second)
			err := chromedp.Cancel(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				v.logf("close: %v", err)
			}
		}
		v.cancel()
		v.allocCancel()
		v.mu.Lock()
		cancels := v.attached
		v.attached = map[target.ID]context.CancelFunc{}
		v.mu.Unlock()
		for _, c := range cancels {
			c()
		}
		v.workers.Wait()
		if n := killProcessesUsing(v.dataDir); n > 0 {
			v.logf("killed %d leftover Chromium processes", n)
		}
		v.logf("closed in %v", time.Since(start).Round(time.Millisecond))
		v.mu.Lock()
		v.ended = true
		v.mu.Unlock()
	})
}

// closePage closes the page and waits (at most 3 s) until it is gone.
// Browser.close alone tears pages down without unloading them: a peer then
// notices only when ICE consent checks fail, about 7 s later.
func (v *Visitor) closePage() {
	detached, err := chromedp.Detached(v.ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(v.ctx, 3*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.Close, cdp.Empty{}); err != nil {
		v.logf("close the page: %v", err)
		return
	}
	select {
	case <-detached:
	case <-ctx.Done():
		v.logf("the page did not close within 3 s")
	}
}

// cleanup saves a screenshot when the test failed, then closes the browser.
func (v *Visitor) cleanup() {
	v.mu.Lock()
	ended := v.ended
	v.mu.Unlock()
	if v.t.Failed() && !ended {
		name := "failed-" + v.Name + ".png"
		if err := v.screenshot(name); err != nil {
			v.logf("screenshot on failure: %v", err)
		}
	}
	v.Close()
}

// call runs a protocol command on the page with the default timeout.
func call[P, R any](v *Visitor, cmd cdp.Command[P, R], params P) (R, error) {
	ctx, cancel := context.WithTimeout(v.ctx, DefaultTimeout)
	defer cancel()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		return r, fmt.Errorf("visitor %s: %s: %w", v.Name, cmd.Method, err)
	}
	return r, nil
}

// ScreenshotDir is where relative screenshot paths go:
// $FLOWER_SCREENSHOTS, or flower-screenshots in the system temp dir.
func ScreenshotDir() string {
	if d := os.Getenv("FLOWER_SCREENSHOTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "flower-screenshots")
}

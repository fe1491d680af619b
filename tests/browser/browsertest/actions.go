package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

// Navigate opens url in the visitor's page and waits for its load event;
// it fails the test on error or after DefaultTimeout.
func (v *Visitor) Navigate(url string) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, DefaultTimeout)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		v.t.Fatalf("visitor %s: navigate to %s: %v", v.Name, url, err)
	}
	v.logf("loaded %s in %v", url, time.Since(start).Round(time.Millisecond))
}

// Eval evaluates the JavaScript expression js in the page, awaits it when
// it is a promise, and decodes its JSON value into out (nil: ignore the
// value). An exception or a rejected promise is an error.
func (v *Visitor) Eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(v.ctx, DefaultTimeout)
	defer cancel()
	return v.eval(ctx, js, out)
}

func (v *Visitor) eval(ctx context.Context, js string, out any) error {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("visitor %s: eval %s: %w", v.Name, abbrev(js), err)
	}
	if out == nil {
		return nil
	}
	if len(raw) == 0 {
		return fmt.Errorf("visitor %s: eval %s: undefined, want a value for %T", v.Name, abbrev(js), out)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("visitor %s: eval %s: decode %s: %w", v.Name, abbrev(js), raw, err)
	}
	return nil
}

// MustEval is Eval that fails the test on error.
func (v *Visitor) MustEval(js string, out any) {
	v.t.Helper()
	if err := v.Eval(js, out); err != nil {
		v.t.Fatal(err)
	}
}

// WaitEval evaluates the JavaScript expression js (awaited when a promise)
// every 50 ms until its value is truthy; it fails the test after timeout,
// showing the last value or error.
func (v *Visitor) WaitEval(js string, timeout time.Duration) {
	v.t.Helper()
	wrapped := `Promise.resolve((` + js + `)).then(v => {
		let s; try { s = JSON.stringify(v); } catch (e) {}
		return {ok: !!v, v: s === undefined ? String(v) : s};
	})`
	deadline := time.Now().Add(timeout)
	last := "none (no evaluation finished)"
	for {
		ctx, cancel := context.WithDeadline(v.ctx, deadline)
		r, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			OK bool   `json:"ok"`
			V  string `json:"v"`
		}](wrapped, chromedp.EvalAwaitPromise))
		cancel()
		switch {
		case err == nil && r.OK:
			return
		case err == nil:
			last = "value " + r.V
		case ctx.Err() == nil:
			last = "error " + err.Error()
		}
		if time.Now().After(deadline) || v.ctx.Err() != nil {
			v.t.Fatalf("visitor %s: %s still not truthy after %v; last %s", v.Name, abbrev(js), timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ScrollToBottom scrolls the page down in steps of 3/4 of a screen, as a
// reader would, so that lazy images start to load, then waits until the
// page's network is idle-ish and every <img> is complete (at most 15 s).
func (v *Visitor) ScrollToBottom() {
	v.t.Helper()
	const step = `(async () => {
		const el = document.scrollingElement || document.documentElement;
		const before = el.scrollTop;
		window.scrollBy(0, Math.max(100, innerHeight * 0.75));
		// A timer, not requestAnimationFrame: a renderer that produces no
		// frame for a while (it happened in CI) must not hang the step.
		await new Promise(r => setTimeout(r, 80));
		return {moved: el.scrollTop !== before,
			bottom: el.scrollTop + innerHeight >= el.scrollHeight - 2};
	})()`
	start := time.Now()
	for steps := 0; ; steps++ {
		var r struct{ Moved, Bottom bool }
		if err := v.Eval(step, &r); err != nil {
			v.t.Fatal(err)
		}
		if r.Bottom || !r.Moved || steps > 500 {
			break
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var imagesDone bool
		err := v.Eval(`[...document.images].every(i => i.complete)`, &imagesDone)
		if err != nil {
			v.t.Fatal(err)
		}
		if imagesDone && v.net.idle(300*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			v.logf("scroll: network or images still busy after 15 s; going on")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.logf("scrolled to the bottom in %v", time.Since(start).Round(time.Millisecond))
}

// StopWorkers stops every service worker of the browser
// (ServiceWorker.stopAllWorkers), as Chromium does to an idle worker. The
// next event that needs a worker starts it again, with fresh global state.
func (v *Visitor) StopWorkers() {
	v.t.Helper()
	if !v.swEnabled {
		if _, err := call(v, serviceworker.Enable, cdp.Empty{}); err != nil {
			v.t.Fatal(err)
		}
		v.swEnabled = true
	}
	if _, err := call(v, serviceworker.StopAllWorkers, cdp.Empty{}); err != nil {
		v.t.Fatal(err)
	}
	v.logf("stopped all service workers")
}

// SetOffline cuts (or restores) the page's and its service workers' HTTP
// access, and sets navigator.onLine. It emulates at the network layer of
// the browser: WebRTC connections are not cut.
func (v *Visitor) SetOffline(offline bool) {
	v.t.Helper()
	yes := offline
	conds := []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}}
	if !offline {
		conds = []*network.Conditions{}
	}
	if _, err := call(v, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		EmulateOfflineServiceWorker: &yes, MatchedNetworkConditions: conds,
	}); err != nil {
		v.t.Fatal(err)
	}
	if _, err := call(v, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
	}); err != nil {
		v.t.Fatal(err)
	}
	v.logf("offline %v", offline)
}

// SetSaveData overrides the page's navigator.connection.saveData (the
// browser's Save-Data setting) with Emulation.setDataSaverOverride; false
// sets it off, as a visitor without Save-Data has it. Chromium fires no
// "change" event on navigator.connection for it: a page sees it when it
// reads the attribute again.
func (v *Visitor) SetSaveData(on bool) {
	v.t.Helper()
	if _, err := call(v, emulation.SetDataSaverOverride, emulation.SetDataSaverOverrideParams{DataSaverEnabled: &on}); err != nil {
		v.t.Fatal(err)
	}
	v.logf("save-data %v", on)
}

// Screenshot saves a PNG of the visible page to path; a relative path is
// taken under ScreenshotDir()/<test name>. It logs where the file went.
func (v *Visitor) Screenshot(path string) {
	v.t.Helper()
	if err := v.screenshot(path); err != nil {
		v.t.Fatal(err)
	}
}

func (v *Visitor) screenshot(path string) error {
	if !filepath.IsAbs(path) {
		path = filepath.Join(ScreenshotDir(), sanitize(v.t.Name()), path)
	}
	ctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("visitor %s: screenshot: %w", v.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("visitor %s: screenshot: %w", v.Name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("visitor %s: screenshot: %w", v.Name, err)
	}
	v.logf("screenshot %s", path)
	return nil
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func abbrev(js string) string {
	if len(js) > 80 {
		js = js[:77] + "..."
	}
	return fmt.Sprintf("%q", js)
}

//go:build !js

// Command serve runs the wasmsmoke page in headless Chromium: it builds the
// wasm, serves it on 127.0.0.1, starts Chromium, and prints what the page
// reports (exit status 1 unless it reports PASS).
//
//	go run ./shared/rtc/internal/wasmsmoke/serve [-chromium PATH]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

const page = `<!doctype html><html><body><script src="wasm_exec.js"></script><script>
function post(kind, s) { fetch("/" + kind, {method: "POST", body: String(s)}); }
const log = console.log; console.log = (...a) => { post("log", a.join(" ")); log(...a); };
window.report = (s) => post("report", s);
const go = new Go();
WebAssembly.instantiateStreaming(fetch("smoke.wasm"), go.importObject)
  .then(r => go.run(r.instance)).catch(e => post("report", "FAIL: " + e));
</script></body></html>`

func main() {
	chromium := flag.String("chromium", "chromium", "browser binary")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	if err := run(*chromium, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "wasmsmoke:", err)
		os.Exit(1)
	}
}

func run(chromium string, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "wasmsmoke")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	wasm := filepath.Join(dir, "smoke.wasm")
	build := exec.Command("go", "build", "-o", wasm, "github.com/flowercdn/flower/shared/rtc/internal/wasmsmoke")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	execJS := filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js")
	report := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, page)
		case "/wasm_exec.js":
			http.ServeFile(w, r, execJS)
		case "/smoke.wasm":
			w.Header().Set("Content-Type", "application/wasm")
			http.ServeFile(w, r, wasm)
		case "/log", "/report":
			b, _ := io.ReadAll(r.Body)
			fmt.Println(strings.TrimPrefix(r.URL.Path, "/")+":", string(b))
			if r.URL.Path == "/report" {
				select {
				case report <- string(b):
				default:
				}
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	browser := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--disable-features=WebRtcHideLocalIpsWithMdns", "--remote-debugging-port=0",
		"http://"+ln.Addr().String()+"/")
	if err := browser.Start(); err != nil {
		return fmt.Errorf("start %s: %w", chromium, err)
	}
	defer func() { _ = browser.Process.Kill(); _ = browser.Wait() }()
	select {
	case r := <-report:
		if r != "PASS" {
			return fmt.Errorf("page reported %q", r)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no report within %v", timeout)
	}
}

package browser_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowercdn/flower/tests/browser/browsertest"
)

// BenchmarkBrowserRTC measures object transfers between two rtc.Managers
// compiled to wasm, each in its own visitor (a separate Chromium process),
// over the browsers' own data channels. It runs the whole measurement once
// whatever b.N is:
//
//	go test -run '^$' -bench BrowserRTC -benchtime 1x ./tests/browser/
//
// FLOWER_BENCH_RUNS (default 5) sets the runs the medians are taken over;
// FLOWER_BENCH_HASH=0 drops the SHA-256 in the receiving Sink;
// FLOWER_BENCH_SIZES (default 65536,1048576,2097152) the object sizes;
// FLOWER_BENCH_RAW=0 skips the plain-JavaScript data channel baseline.
func BenchmarkBrowserRTC(b *testing.B) {
	runs := envInt("FLOWER_BENCH_RUNS", 5)
	sizes := []int{64 << 10, 1 << 20, 2 << 20}
	if s := os.Getenv("FLOWER_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("FLOWER_BENCH_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	srv := newBenchServer(b)
	b.ResetTimer()
	for range b.N {
		x := browsertest.NewVisitor(b, "x", browsertest.Options{})
		y := browsertest.NewVisitor(b, "y", browsertest.Options{})
		x.Navigate(srv.URL + "/page.html?me=1&room=r")
		y.Navigate(srv.URL + "/page.html?me=2&room=r")
		for _, v := range []*browsertest.Visitor{x, y} {
			v.WaitEval(`window.bench && bench.state === "ready"`, 30*time.Second)
		}
		if os.Getenv("FLOWER_BENCH_GO") == "0" {
			rawBaseline(b, x, y, runs)
			continue
		}
		spec, _ := json.Marshal(map[string]any{"sizes": sizes, "seq": 8, "par": 8, "hash": os.Getenv("FLOWER_BENCH_HASH") != "0"})
		// Warm up: the first transfers of a connection run in slow start.
		warm, _ := json.Marshal(map[string]any{"sizes": []int{1 << 20}, "seq": 2, "par": 2})
		var res string
		x.MustEval(fmt.Sprintf("bench.run(%q)", warm), &res)
		var goPing float64
		x.MustEval("bench.ping(50)", &goPing)
		out("core message round trip (Go managers, idle): %.2f ms median of 50", goPing)
		var all [][]benchGroup
		for r := range runs {
			x.MustEval(fmt.Sprintf("bench.run(%q)", spec), &res)
			var gs []benchGroup
			if err := json.Unmarshal([]byte(res), &gs); err != nil {
				b.Fatalf("run %d: %v", r, err)
			}
			all = append(all, gs)
		}
		report(b, all)
		if os.Getenv("FLOWER_BENCH_RAW") != "0" {
			rawBaseline(b, x, y, runs)
		}
		uptime, _ := os.ReadFile("/proc/loadavg")
		out("load average after: %s", strings.TrimSpace(string(uptime)))
		x.Close()
		y.Close()
	}
}

type benchGroup struct {
	Size  int     `json:"size"`
	Mode  string  `json:"mode"`
	MBps  float64 `json:"mbps"`
	Xfers []struct {
		TTFB float64 `json:"ttfb"`
		Done float64 `json:"done"`
		Err  string  `json:"err"`
	} `json:"xfers"`
}

// report logs, per size and mode, the median MB/s over the runs and the
// median and maximum time to first byte and to arrival over every transfer.
func report(b *testing.B, all [][]benchGroup) {
	out("%-8s %-4s %8s %28s %28s   MB/s per run", "size", "mode", "MB/s", "TTFB ms med/p90/max", "done ms med/p90/max")
	for i, g := range all[0] {
		var mbps, ttfb, done []float64
		for _, run := range all {
			mbps = append(mbps, run[i].MBps)
			for _, x := range run[i].Xfers {
				if x.Err != "" {
					b.Errorf("%d %s: transfer failed: %s", g.Size, g.Mode, x.Err)
				}
				ttfb = append(ttfb, x.TTFB)
				done = append(done, x.Done)
			}
		}
		per := slices.Clone(mbps)
		out("%-8d %-4s %8.1f %28s %28s   %s", g.Size, g.Mode, median(mbps), quantiles(ttfb), quantiles(done), floats(per))
		b.ReportMetric(median(mbps), fmt.Sprintf("MB/s-%s-%dK", g.Mode, g.Size>>10))
		b.ReportMetric(median(ttfb), fmt.Sprintf("ttfb-ms-%s-%dK", g.Mode, g.Size>>10))
	}
}

// rawBaseline: the same two browsers, a plain RTCDataChannel, no Go.
func rawBaseline(b *testing.B, x, y *browsertest.Visitor, runs int) {
	x.WaitEval(`raw.state === "open"`, 20*time.Second)
	y.WaitEval(`raw.state === "open"`, 20*time.Second)
	var ping float64
	x.MustEval("raw.ping(50)", &ping)
	out("plain JS data channel round trip (idle): %.2f ms median of 50", ping)
	for _, c := range [][2]int{{64 << 10, 1 << 20}, {256 << 10, 1 << 20}, {64 << 10, 8 << 20}, {256 << 10, 8 << 20}} {
		chunk, hw := c[0], c[1]
		var mbps []float64
		const size = 8 << 20
		for range runs + 1 {
			var ms float64
			x.MustEval(fmt.Sprintf("raw.run(%d, %d, %d)", size, chunk, hw), &ms)
			mbps = append(mbps, size/ms/1e3)
		}
		mbps = mbps[1:] // the first warms the connection
		out("plain JS data channel, 8 MiB in %d KiB messages, %d MiB buffered at most: %.1f MB/s median (%s)", chunk>>10, hw>>20, median(mbps), floats(mbps))
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func quantiles(v []float64) string {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f/%.0f", s[len(s)/2], s[len(s)*9/10], s[len(s)-1])
}

func floats(v []float64) string {
	var parts []string
	for _, f := range v {
		parts = append(parts, strconv.FormatFloat(f, 'f', 1, 64))
	}
	return strings.Join(parts, " ")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// newBenchServer builds shared/rtc/internal/browserbench for js/wasm and
// serves it with its page and a signalling mailbox:
// POST /mb/<room>/<to> appends the body; GET /mb/<room>/<me> long-polls and
// answers the waiting bodies as a JSON array (base64).
func newBenchServer(b *testing.B) *httptest.Server {
	dir := b.TempDir()
	wasm := filepath.Join(dir, "bench.wasm")
	build := exec.Command("go", "build", "-o", wasm, "github.com/flowercdn/flower/shared/rtc/internal/browserbench")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build browserbench: %v\n%s", err, out)
	}
	page, err := os.ReadFile("../../shared/rtc/internal/browserbench/page.html")
	if err != nil {
		b.Fatal(err)
	}
	execJS := filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js")
	var mu sync.Mutex
	boxes := map[string][][]byte{}
	changed := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /wasm_exec.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, execJS) })
	mux.HandleFunc("GET /bench.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, wasm)
	})
	mux.HandleFunc("POST /mb/{room}/{to}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		key := r.PathValue("room") + "/" + r.PathValue("to")
		boxes[key] = append(boxes[key], body)
		close(changed)
		changed = make(chan struct{})
		mu.Unlock()
	})
	mux.HandleFunc("GET /mb/{room}/{me}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("room") + "/" + r.PathValue("me")
		timeout := time.NewTimer(5 * time.Second)
		defer timeout.Stop()
		for {
			mu.Lock()
			msgs, ch := boxes[key], changed
			delete(boxes, key)
			mu.Unlock()
			if len(msgs) > 0 {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(msgs)
				return
			}
			select {
			case <-ch:
			case <-timeout.C:
				_, _ = io.WriteString(w, "[]")
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// out prints a result line (benchmark logs are truncated after ten lines).
func out(format string, args ...any) { fmt.Printf("rtcbench: "+format+"\n", args...) }

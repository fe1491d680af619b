package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// serverRSS sums process_resident_memory_bytes over the metrics URLs.
func serverRSS(ctx context.Context, urls []string) (int64, error) {
	var sum int64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		v, err := scanMetric(resp.Body, "process_resident_memory_bytes")
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", u, err)
		}
		sum += int64(v)
	}
	return sum, nil
}

func scanMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			return strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s", name)
}

// errorCounter counts errors by kind and logs the first of each kind.
type errorCounter struct {
	mu  sync.Mutex
	m   map[string]int64
	log io.Writer
}

func (e *errorCounter) add(kind string, err error) {
	e.mu.Lock()
	if e.m[kind] == 0 && e.log != nil {
		fmt.Fprintf(e.log, "first %s error: %v\n", kind, err)
	}
	e.mu.Unlock()
	e.addKind(kind)
}

func (e *errorCounter) addKind(kind string) {
	e.mu.Lock()
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounter) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// histogram is a log-bucketed latency histogram (2% wide buckets, from 1 µs).
type histogram struct {
	b [1024]atomic.Int64
}

const histBase = 1.02

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log(us) / math.Log(histBase))
	}
	i = min(max(i, 0), len(h.b)-1)
	h.b[i].Add(1)
}

func (h *histogram) total() int64 {
	var n int64
	for i := range h.b {
		n += h.b[i].Load()
	}
	return n
}

// quantile returns the q-quantile in milliseconds (bucket midpoint).
func (h *histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(n)))
	var acc int64
	for i := range h.b {
		acc += h.b[i].Load()
		if acc >= want {
			return round3(math.Pow(histBase, float64(i)+0.5) / 1000)
		}
	}
	return 0
}

func (h *histogram) max() float64 {
	for i := len(h.b) - 1; i >= 0; i-- {
		if h.b[i].Load() > 0 {
			return round3(math.Pow(histBase, float64(i+1)) / 1000)
		}
	}
	return 0
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// sparse/merge for worker results.
func (h *histogram) sparse() map[int]int64 {
	m := map[int]int64{}
	for i := range h.b {
		if v := h.b[i].Load(); v > 0 {
			m[i] = v
		}
	}
	return m
}

func (h *histogram) merge(m map[int]int64) {
	for i, v := range m {
		if i >= 0 && i < len(h.b) {
			h.b[i].Add(v)
		}
	}
}

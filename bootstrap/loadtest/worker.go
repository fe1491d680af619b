package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
)

// workerReport is what a worker prints when its load is done.
type workerReport struct {
	Connected  int              `json:"connected"`
	Connect    float64          `json:"connect_seconds"`
	Duration   float64          `json:"duration_seconds"`
	Sent       int64            `json:"sent"`
	Received   int64            `json:"received"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Hist       map[int]int64    `json:"hist"`
}

// WorkerFlag is the hidden flag a worker is started with: --worker FIRST:N.
const WorkerFlag = "worker"

// RunWorker is the worker side: it connects peers [first, first+n), prints
// "connected N", waits for "go", runs the load, prints "loaded {json}",
// waits for "close" and closes.
func RunWorker(ctx context.Context, cfg Config, first, n int, stdin io.Reader, stdout io.Writer) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	RaiseFileLimit()
	in := bufio.NewScanner(stdin)
	wait := func(word string) error {
		for in.Scan() {
			if strings.TrimSpace(in.Text()) == word {
				return nil
			}
		}
		return fmt.Errorf("worker: parent went away waiting for %q", word)
	}
	res := &Result{hist: newHistogram()}
	ph := phases{
		connected: func(k int) error {
			fmt.Fprintf(stdout, "connected %d\n", k)
			return wait("go")
		},
	}
	ph.loaded = func() error {
		rep := workerReport{Connected: res.PeersConnected, Connect: res.ConnectSeconds, Duration: res.DurationSeconds,
			Sent: res.MsgsSent, Received: res.MsgsReceived, Hist: res.hist.sparse()}
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "loaded %s\n", b)
		return wait("close")
	}
	err := runPeers(ctx, cfg, first, n, res, ph)
	if err == nil {
		b, _ := json.Marshal(res.ErrorKinds)
		fmt.Fprintf(stdout, "closed %s\n", b)
	}
	return err
}

type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func runWorkers(ctx context.Context, cfg Config, res *Result) error {
	per := ((cfg.Peers+cfg.Procs-1)/cfg.Procs + 1) &^ 1 // even, so pairs stay in one worker
	var ws []*worker
	defer func() {
		for _, w := range ws {
			_ = w.stdin.Close()
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	}()
	for first := 0; first < cfg.Peers; first += per {
		n := min(per, cfg.Peers-first)
		args := append(append([]string{}, cfg.ExeArgs...), "--"+WorkerFlag, fmt.Sprintf("%d:%d", first, n))
		cmd := exec.CommandContext(ctx, cfg.Exe, args...)
		cmd.Stderr = cfg.Log
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("worker stdin: %w", err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("worker stdout: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		w := &worker{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				w.lines <- sc.Text()
			}
			close(w.lines)
		}()
		ws = append(ws, w)
	}
	expect := func(w *worker, prefix string) (string, error) {
		for {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case l, ok := <-w.lines:
				if !ok {
					return "", fmt.Errorf("worker exited before %q", prefix)
				}
				if strings.HasPrefix(l, prefix+" ") {
					return strings.TrimPrefix(l, prefix+" "), nil
				}
			}
		}
	}
	for _, w := range ws {
		if _, err := expect(w, "connected"); err != nil {
			return err
		}
	}
	sleepCtx(ctx, cfg.Settle)
	var err error
	if res.ServerRSSBytes.Connected, err = serverRSS(ctx, cfg.MetricsURLs); err != nil {
		return err
	}
	for _, w := range ws {
		fmt.Fprintln(w.stdin, "go")
	}
	res.ErrorKinds = map[string]int64{}
	for _, w := range ws {
		l, err := expect(w, "loaded")
		if err != nil {
			return err
		}
		var rep workerReport
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			return fmt.Errorf("worker report: %w", err)
		}
		res.PeersConnected += rep.Connected
		res.ConnectSeconds = math.Max(res.ConnectSeconds, rep.Connect)
		res.DurationSeconds = math.Max(res.DurationSeconds, rep.Duration)
		res.MsgsSent += rep.Sent
		res.MsgsReceived += rep.Received
		res.hist.merge(rep.Hist)
	}
	sleepCtx(ctx, cfg.Settle)
	if res.ServerRSSBytes.After, err = serverRSS(ctx, cfg.MetricsURLs); err != nil {
		return err
	}
	for _, w := range ws {
		fmt.Fprintln(w.stdin, "close")
	}
	for _, w := range ws {
		l, err := expect(w, "closed")
		if err != nil {
			return err
		}
		var kinds map[string]int64
		_ = json.Unmarshal([]byte(l), &kinds)
		for k, v := range kinds {
			res.ErrorKinds[k] += v
		}
	}
	return nil
}

// ParseWorker parses the --worker FIRST:N value.
func ParseWorker(v string) (first, n int, err error) {
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, fmt.Errorf("--worker %q: want FIRST:N", v)
	}
	if first, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("--worker %q: %w", v, err)
	}
	if n, err = strconv.Atoi(b); err != nil {
		return 0, 0, fmt.Errorf("--worker %q: %w", v, err)
	}
	return first, n, nil
}

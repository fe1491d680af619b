package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowercdn/flower/bootstrap"
	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/rtc"
	"github.com/flowercdn/flower/shared/security"
)

// benchResult is what `flower bench-transfer --json` prints.
type benchResult struct {
	Size          int64     `json:"size"`
	RunsMBs       []float64 `json:"runs_mb_s"`
	MedianMBs     float64   `json:"median_mb_s"`
	MinMBs        float64   `json:"min_mb_s"`
	MaxMBs        float64   `json:"max_mb_s"`
	TTFBOpenMs    float64   `json:"ttfb_open_ms"`
	TTFBNewConnMs float64   `json:"ttfb_new_conn_ms"`
	OriginTTFBMs  float64   `json:"origin_ttfb_ms"`
}

// runBenchTransfer is `flower bench-transfer`: two native peers on
// 127.0.0.1 with the bootstrap service (in process) and a signed local
// origin. A seeder fetches each object from the origin; the measured peer
// then gets it from the seeder over WebRTC. Each run is one object of the
// given size, timed from the Get to its last verified byte (MB/s = 10^6
// bytes per second).
func runBenchTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower bench-transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizeFlag := fs.String("size", "16MiB", "object `size` (e.g. 16MiB, 1MiB)")
	runs := fs.Int("runs", 10, "number of transfers")
	newConns := fs.Int("new-conns", 3, "fresh peers timed for the first byte over a new connection")
	warmup := fs.Int("warmup", 3, "untimed transfers first (the connection's SCTP window and the heap reach their steady size)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	size, err := parseSize(*sizeFlag)
	switch {
	case err != nil:
		return fmt.Errorf("bench-transfer: --size: %w", err)
	case size < 1 || size > 1<<30:
		return fmt.Errorf("bench-transfer: --size %d: want 1 B to 1 GiB", size)
	case *runs < 1 || *runs > 1000:
		return fmt.Errorf("bench-transfer: --runs %d: want 1 to 1000", *runs)
	case *newConns < 1 || *newConns > 50:
		return fmt.Errorf("bench-transfer: --new-conns %d: want 1 to 50", *newConns)
	case *warmup < 1 || *warmup > 100:
		return fmt.Errorf("bench-transfer: --warmup %d: want 1 to 100", *warmup)
	}
	tunePeerGC()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench-transfer: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench-transfer: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := benchTransfer(ctx, size, *warmup, *runs, *newConns)
	if err != nil {
		return fmt.Errorf("bench-transfer: %w", err)
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	fmt.Fprintf(stdout, "size %d B, %d runs: median %.1f MB/s (min %.1f, max %.1f)\n", res.Size, len(res.RunsMBs), res.MedianMBs, res.MinMBs, res.MaxMBs)
	fmt.Fprintf(stdout, "time to first byte: P2P open connection %.2f ms, P2P new connection %.2f ms, origin %.2f ms\n",
		res.TTFBOpenMs, res.TTFBNewConnMs, res.OriginTTFBMs)
	return nil
}

func benchTransfer(ctx context.Context, size int64, warmup, runs, newConns int) (*benchResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Objects [0, warmup) warm up, then one per run, then one per new
	// connection.
	org, err := startBenchOrigin(ctx, size, warmup+runs+newConns)
	if err != nil {
		return nil, err
	}
	bcfg := bootstrap.DefaultConfig()
	bcfg.Localities = 1
	bcfg.AllowedOrigins = []string{org.url}
	bcfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := bootstrap.New(bcfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, []net.Listener{ln}) }()
	defer func() { cancel(); <-done }()
	boot := "http://" + ln.Addr().String()

	start := func() (*peer.Peer, error) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		rc := rtc.Config{}
		rc.Native.IncludeLoopback = true
		ccfg := core.DefaultConfig()
		ccfg.CacheBytes = 4 * size // objects come and go: the heap stays small
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		return peer.Start(sctx, peer.Config{
			Bootstrap: boot, Sites: []string{org.url}, Store: peer.NewMemStore(), Key: key,
			Net: peer.RTC(rc), Core: ccfg, Locality: 0, MaxObjectSize: max(size, 64<<20),
		})
	}
	seeder, err := start()
	if err != nil {
		return nil, err
	}
	defer seeder.Close()
	seed := func(i int) error {
		if _, err := seeder.Get(ctx, org.objURL(i)); err != nil {
			return fmt.Errorf("seeder: %w", err)
		}
		return nil
	}
	// The seeder founds the site's petal; the client starts once the
	// bootstrap service lists it (else the client would found its own).
	if err := seed(0); err != nil {
		return nil, err
	}
	for {
		e, err := client.FetchEntries(ctx, http.DefaultClient, boot, org.url, 0)
		if err == nil && slices.ContainsFunc(e.Local, func(m ids.Member) bool { return m.ID == seeder.ID() }) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	cl, err := start()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// Warm up: the client joins the petal and opens its connection to the
	// seeder, whose SCTP window opens; both heaps reach their size.
	for i := range warmup {
		if i > 0 {
			if err := seed(i); err != nil {
				return nil, err
			}
		}
		if _, err := cl.Get(ctx, org.objURL(i)); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	res := &benchResult{Size: size}
	var ttfb []float64
	for i := range runs {
		if err := seed(warmup + i); err != nil {
			return nil, err
		}
		begin := time.Now()
		r, err := cl.Get(ctx, org.objURL(warmup+i))
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
		if r.Source != core.SourcePeer {
			return nil, fmt.Errorf("run %d: the object came from %s, not the seeder", i, r.Source)
		}
		res.RunsMBs = append(res.RunsMBs, float64(size)/time.Since(begin).Seconds()/1e6)
		ttfb = append(ttfb, ms(r.Lookup))
	}
	var ttfbNew []float64
	for i := range newConns {
		if err := seed(warmup + runs + i); err != nil {
			return nil, err
		}
		p, err := start()
		if err != nil {
			return nil, err
		}
		r, err := p.Get(ctx, org.objURL(warmup+runs+i))
		_ = p.Close()
		if err != nil {
			return nil, fmt.Errorf("new connection %d: %w", i, err)
		}
		if r.Source != core.SourcePeer {
			return nil, fmt.Errorf("new connection %d: the object came from %s", i, r.Source)
		}
		ttfbNew = append(ttfbNew, ms(r.Lookup))
	}
	var originTTFB []float64
	for i := range runs {
		d, err := org.ttfb(ctx, org.objURL(warmup+i))
		if err != nil {
			return nil, err
		}
		originTTFB = append(originTTFB, ms(d))
	}
	res.MedianMBs, res.MinMBs, res.MaxMBs = median(res.RunsMBs), slices.Min(res.RunsMBs), slices.Max(res.RunsMBs)
	res.TTFBOpenMs, res.TTFBNewConnMs, res.OriginTTFBMs = median(ttfb), median(ttfbNew), median(originTTFB)
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchOrigin serves n signed objects of one size at /bench/<i>.bin, with
// their statements in the Flower-Statement header.
type benchOrigin struct {
	url  string
	body []byte
	hdr  []string
}

func (o *benchOrigin) objURL(i int) string { return fmt.Sprintf("%s/bench/%d.bin", o.url, i) }

func startBenchOrigin(ctx context.Context, size int64, n int) (*benchOrigin, error) {
	key, err := security.GenerateSiteKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &benchOrigin{url: "http://" + ln.Addr().String(), body: make([]byte, size)}
	_, _ = rand.Read(o.body)
	digest := security.BodyDigest(o.body)
	for i := range n {
		h, err := security.EncodeStatementHeader(security.Sign(key, security.Statement{
			URL: o.objURL(i), Digest: digest, ContentType: "application/octet-stream", Version: 1,
		}))
		if err != nil {
			return nil, err
		}
		o.hdr = append(o.hdr, h)
	}
	wk, err := security.WellKnown{Site: o.url, PublicKey: key.Public(), Share: []string{"/bench/*"}}.Marshal()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(security.WellKnownPath, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(wk) })
	mux.HandleFunc("/bench/", func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/bench/"), "%d.bin", &i); err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(security.StatementHeader, o.hdr[i])
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(o.body)))
		_, _ = w.Write(o.body)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	go func() { <-ctx.Done(); _ = hs.Close() }()
	return o, nil
}

// ttfb times an HTTP GET of u from the origin to its first body byte.
func (o *benchOrigin) ttfb(ctx context.Context, u string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	begin := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("origin: %w", err)
	}
	defer resp.Body.Close()
	var b [1]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil {
		return 0, fmt.Errorf("origin: %w", err)
	}
	d := time.Since(begin)
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New("origin: " + resp.Status)
	}
	return d, nil
}

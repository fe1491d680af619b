package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flowercdn/flower/bootstrap/loadtest"
)

// runLoadtest is `flower loadtest`: load a bootstrap deployment with simulated
// peers and report throughput, relay latency, errors and server RSS.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("url", "ws://127.0.0.1:7700/v1/ws", "comma-separated bootstrap WebSocket `URLs` (several: instances of one deployment)")
	metrics := fs.String("metrics", "", "comma-separated /metrics `URLs` to read server RSS from (default: derived from --url)")
	cfg := loadtest.Config{}
	fs.IntVar(&cfg.Peers, "peers", 1000, "number of peer connections")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the signalling load")
	fs.Float64Var(&cfg.Rate, "rate", 1, "signalling messages per second sent by each peer")
	fs.IntVar(&cfg.Payload, "payload", 200, "bytes per signalling message (>= 8)")
	fs.Float64Var(&cfg.Directory, "directory", 0.05, "fraction of peers registering as directory peers (with D-ring keys in the layout the server announces)")
	fs.StringVar(&cfg.Site, "site", "https://loadtest.example", "website origin the peers register")
	fs.IntVar(&cfg.Localities, "localities", 6, "localities the peers spread over (capped at the number the server announces)")
	fs.IntVar(&cfg.Dialers, "dialers", 64, "connections set up concurrently")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "pause before each server RSS reading")
	srcs := fs.String("source-ips", "", "comma-separated local `addresses` to dial from (default: 127.0.0.x for loopback targets)")
	fs.BoolVar(&cfg.CrossInstance, "cross-instance", false, "pair peers on different instances (signalling crosses NATS)")
	fs.IntVar(&cfg.Procs, "procs", 0, "client worker processes (0: as few as the open-file limit allows)")
	fs.StringVar(&cfg.Origin, "origin", "", "Origin header to send (as a browser page of that site)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	workerSpec := fs.String(loadtest.WorkerFlag, "", "internal: run as a worker for peers FIRST:N")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.URLs = split(*urls)
	cfg.MetricsURLs = split(*metrics)
	cfg.SourceIPs = split(*srcs)
	cfg.Log = stderr
	if *workerSpec != "" {
		first, n, err := loadtest.ParseWorker(*workerSpec)
		if err != nil {
			return err
		}
		return loadtest.RunWorker(ctx, cfg, first, n, os.Stdin, stdout)
	}
	if exe, err := os.Executable(); err == nil {
		cfg.Exe = exe
		cfg.ExeArgs = append([]string{"loadtest"}, args...)
	}
	res, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "peers connected      %d/%d (in %.1fs, %d client process(es), %d server instance(s))\n",
		res.PeersConnected, res.PeersTarget, res.ConnectSeconds, res.Procs, res.Instances)
	fmt.Fprintf(stdout, "relay                %.0f msg/s (%d sent, %d received in %.1fs)\n",
		res.RelayMsgsPerS, res.MsgsSent, res.MsgsReceived, res.DurationSeconds)
	fmt.Fprintf(stdout, "relay latency        p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		res.RelayP50Ms, res.RelayP90Ms, res.RelayP99Ms, res.RelayMaxMs)
	fmt.Fprintf(stdout, "errors               %d %v\n", res.Errors, res.ErrorKinds)
	fmt.Fprintf(stdout, "server RSS           before %d MiB, connected %d MiB, after load %d MiB\n",
		res.ServerRSSBytes.Before>>20, res.ServerRSSBytes.Connected>>20, res.ServerRSSBytes.After>>20)
	fmt.Fprintf(stdout, "server RSS per peer  %.0f B idle, %.0f B after load\n", res.RSSPerPeerBytes, res.RSSPerPeerLoad)
	return nil
}

func split(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

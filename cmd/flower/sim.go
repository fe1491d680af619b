package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/sim"
)

const simUsage = `usage: flower sim [flags]

Runs one workload (peers, websites, queries, churn) through Flower-CDN (the
real protocol core), three Squirrel baselines (home-store over Chord;
home-store and directory scheme over Pastry with proximity neighbour
selection) and origin-only, and prints their metrics. docs/simulator.md
describes the model and the metrics.

flags:
`

// runSim is `flower sim`.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := sim.DefaultConfig()
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, simUsage)
		fs.PrintDefaults()
	}

	fs.IntVar(&cfg.Peers, "peers", cfg.Peers, "number of peers")
	fs.IntVar(&cfg.Sites, "sites", cfg.Sites, "number of websites")
	fs.IntVar(&cfg.Objects, "objects", cfg.Objects, "objects per website")
	fs.IntVar(&cfg.Localities, "localities", cfg.Localities, "number of localities k")
	fs.IntVar(&cfg.Queries, "queries", cfg.Queries, "queries to issue (then in-flight ones may finish within --drain)")
	fs.DurationVar(&cfg.QueryInterval, "query-interval", cfg.QueryInterval, "mean time between two queries of one online peer (Poisson)")
	churn := fs.String("churn", "60m/60m", `churn as mean ONLINE/OFFLINE times (exponential), or "none" for a static run`)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, `"exp": --peers peers with exponential --churn; "browser": visitors online while a page is open (--peers is then the mean online count)`)
	fs.IntVar(&cfg.Seeders, "seeders", cfg.Seeders, "browser workload: always-on peers per locality, on top of the visitors")
	fs.DurationVar(&cfg.SessionMedian, "session-median", cfg.SessionMedian, "browser workload: median session (log-normal)")
	fs.Float64Var(&cfg.SessionSigma, "session-sigma", cfg.SessionSigma, "browser workload: sigma of the log-normal session")
	fs.Float64Var(&cfg.ReturnFrac, "return-frac", cfg.ReturnFrac, "browser workload: fraction of departing visitors that come back")
	fs.DurationVar(&cfg.ReturnMean, "return-mean", cfg.ReturnMean, "browser workload: mean time before a visitor comes back (exponential)")
	seed := fs.String("seed", "1", "random seed (unsigned 64-bit integer)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the table")
	plot := fs.String("plot", "", "write an SVG plot (hit ratio and lookup latency over time) to this file")
	systems := fs.String("systems", strings.Join(sim.AllSystems, ","), "comma-separated systems to run: "+strings.Join(sim.AllSystems, ","))
	fs.IntVar(&cfg.MaxInterests, "max-interests", cfg.MaxInterests, "each peer is interested in 1..N websites (drawn by website popularity)")
	zipf := fs.String("zipf", "", "Zipf exponent of both website and object popularity (sets --site-zipf and --object-zipf)")
	fs.Float64Var(&cfg.SiteZipf, "site-zipf", cfg.SiteZipf, "Zipf exponent of website popularity")
	fs.Float64Var(&cfg.ObjectZipf, "object-zipf", cfg.ObjectZipf, "Zipf exponent of object popularity")
	fs.Float64Var(&cfg.ObjectKB, "object-kb", cfg.ObjectKB, "median object size in KB (log-normal)")
	fs.Float64Var(&cfg.ObjectSigma, "object-sigma", cfg.ObjectSigma, "sigma of the log-normal object size")
	cacheMB := fs.Float64("cache-mb", float64(cfg.Core.CacheBytes)/(1<<20), "cache quota per website of interest, in MB (the baselines get the same total per peer)")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "simulated time allowed after the last query for in-flight ones to finish")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "leave the first N queries out of the metrics")
	fs.BoolVar(&cfg.Wire, "wire", false, "send every Flower-CDN message through the wire codec (same results, slower)")
	fs.IntVar(&cfg.Buckets, "buckets", cfg.Buckets, "time buckets of the series (JSON and plot)")

	cc := &cfg.Core
	fs.IntVar(&cc.ViewSize, "view", cc.ViewSize, "Flower-CDN: gossip view size V")
	fs.IntVar(&cc.GossipSubset, "gossip-subset", cc.GossipSubset, "Flower-CDN: view entries sent per shuffle")
	fs.DurationVar(&cc.GossipPeriod, "gossip", cc.GossipPeriod, "Flower-CDN: gossip period")
	fs.IntVar(&cc.PushThreshold, "push-threshold", cc.PushThreshold, "Flower-CDN: cache changes that trigger a push to the directory")
	fs.DurationVar(&cc.KeepalivePeriod, "keepalive", cc.KeepalivePeriod, "Flower-CDN: keepalive period")
	fs.DurationVar(&cc.StabilizePeriod, "stabilize", cc.StabilizePeriod, "D-ring (and Squirrel's modelled Chord) stabilization period")
	fs.DurationVar(&cc.FixFingersPeriod, "fix-fingers", cc.FixFingersPeriod, "D-ring (and Squirrel's modelled Chord) finger refresh period")
	fs.IntVar(&cc.QueryTries, "query-tries", cc.QueryTries, "Flower-CDN: petal contacts asked before the directory")
	fs.IntVar(&cc.PetalMaxPeers, "petal-max", cc.PetalMaxPeers, "Flower-CDN (PetalUp): content peers per directory instance before a split")
	fs.IntVar(&cc.InstanceBits, "instance-bits", cc.InstanceBits, "Flower-CDN (PetalUp): key bits for directory instances")
	fs.BoolVar(&cc.LeaveHandover, "leave-handover", cc.LeaveHandover, "Flower-CDN: a peer leaving cleanly tells its directory, and a directory names its successor (core.Config.LeaveHandover)")
	fs.Float64Var(&cfg.CleanLeave, "clean-leave", cfg.CleanLeave, "fraction of departures in which the page can still send its last messages (used by --leave-handover)")

	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("sim: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.ChurnOn, cfg.ChurnOff, err = sim.ParseChurn(*churn); err != nil {
		return fmt.Errorf("sim: --churn: %w", err)
	}
	if cfg.Seed, err = strconv.ParseUint(*seed, 10, 64); err != nil {
		return fmt.Errorf("sim: --seed %q: want an unsigned 64-bit integer", *seed)
	}
	if cfg.Systems, err = sim.ParseSystems(*systems); err != nil {
		return fmt.Errorf("sim: --%w", err)
	}
	if *zipf != "" {
		z, err := strconv.ParseFloat(*zipf, 64)
		if err != nil {
			return fmt.Errorf("sim: --zipf %q: want a number", *zipf)
		}
		cfg.SiteZipf, cfg.ObjectZipf = z, z
	}
	if *cacheMB < 0 || *cacheMB > 1<<20 {
		return fmt.Errorf("sim: --cache-mb %g out of range [0,1048576]", *cacheMB)
	}
	cc.CacheBytes = int64(*cacheMB * (1 << 20))
	cc.Localities = cfg.Localities
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}

	tuneGC()
	start := time.Now()
	res, err := sim.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	res.ElapsedS = float64(time.Since(start).Milliseconds()) / 1000
	res.PeakRSSBytes = peakRSS()

	if *plot != "" {
		if err := writePlot(*plot, res); err != nil {
			return fmt.Errorf("sim: --plot: %w", err)
		}
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	if err := sim.WriteTable(stdout, res); err != nil {
		return err
	}
	if *plot != "" {
		fmt.Fprintf(stdout, "plot written to %s\n", *plot)
	}
	return nil
}

// tuneGC trades memory for speed: the simulator's heap is mostly long-lived
// node state, so collecting less often saves about a tenth of the run time.
// A soft memory limit keeps the peak bounded. GOGC and GOMEMLIMIT override.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1536 << 20)
	}
}

func writePlot(path string, res *sim.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := sim.WritePlot(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// peakRSS is the process's peak resident set size (VmHWM), 0 if unknown.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the result as a human-readable table, one column per
// system.
func WriteTable(out io.Writer, r *Result) error {
	c := &r.Config
	var names []string
	for _, s := range AllSystems {
		if _, ok := r.Systems[s]; ok {
			names = append(names, s)
		}
	}
	fmt.Fprintf(out, "Flower-CDN simulation: %d peers, %d localities, %d websites x %d objects, %d queries (mean interval %s per peer), churn %s, seed %d\n",
		c.Peers, c.Localities, c.Sites, c.Objects, c.Queries, c.QueryInterval, c.Churn, c.Seed)
	fmt.Fprintf(out, "trace: %.0f s simulated, %.0f online peer-minutes; warm-up queries excluded: %d\n\n",
		c.TraceEndS, c.OnlinePeerMinutes, c.Warmup)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(m *Metrics) string) {
		fmt.Fprintf(tw, "%-28s\t", label)
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t", f(r.Systems[n]))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "%-28s\t", "metric")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", n)
	}
	fmt.Fprintln(tw)
	i := func(f func(m *Metrics) int64) func(m *Metrics) string {
		return func(m *Metrics) string { return fmt.Sprint(f(m)) }
	}
	fl := func(format string, f func(m *Metrics) float64) func(m *Metrics) string {
		return func(m *Metrics) string { return fmt.Sprintf(format, f(m)) }
	}
	row("queries", i(func(m *Metrics) int64 { return m.Queries }))
	row("answered", i(func(m *Metrics) int64 { return m.Answered }))
	row("failed queries", i(func(m *Metrics) int64 { return m.FailedQueries }))
	row("abandoned (requester left)", i(func(m *Metrics) int64 { return m.AbandonedQueries }))
	row("local hits", i(func(m *Metrics) int64 { return m.LocalHits }))
	row("peer hits", i(func(m *Metrics) int64 { return m.PeerHits }))
	row("origin fetches", i(func(m *Metrics) int64 { return m.OriginFetches }))
	row("hit ratio (excl. local)", fl("%.3f", func(m *Metrics) float64 { return m.HitRatio }))
	row("hit ratio (incl. local)", fl("%.3f", func(m *Metrics) float64 { return m.HitRatioWithLocal }))
	row("lookup ms mean", fl("%.1f", func(m *Metrics) float64 { return m.LookupMsMean }))
	row("lookup ms p50", fl("%.1f", func(m *Metrics) float64 { return m.LookupMsP50 }))
	row("lookup ms p95", fl("%.1f", func(m *Metrics) float64 { return m.LookupMsP95 }))
	row("lookup hops mean", fl("%.2f", func(m *Metrics) float64 { return m.LookupHopsMean }))
	row("transfer ms mean", fl("%.1f", func(m *Metrics) float64 { return m.TransferMsMean }))
	row("transfer ms p95", fl("%.1f", func(m *Metrics) float64 { return m.TransferMsP95 }))
	row("origin fraction (bytes)", fl("%.3f", func(m *Metrics) float64 { return m.OriginFraction }))
	row("overhead B/peer/min", fl("%.0f", func(m *Metrics) float64 { return m.OverheadBytesPerPeerMin }))
	row("messages", i(func(m *Metrics) int64 { return m.Messages }))
	row("events", i(func(m *Metrics) int64 { return m.Events }))
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, n := range names {
		m := r.Systems[n]
		if len(m.OverheadByType) > 0 {
			fmt.Fprintf(out, "\n%s overhead by type (B/peer/min): %s\n", n, kv(m.OverheadByType))
		}
		if d := m.Directory; d != nil {
			fmt.Fprintf(out, "%s directory: %d failures, %d repairs (mean %.1f s, p95 %.1f s), %d vacant at end; %d positions, %d petals with a directory; PetalUp: %d petals split, max %d instances per petal; %d holder conflicts (max %d holders of one key)\n",
				n, d.Failures, d.Repairs, d.RepairMsMean/1000, d.RepairMsP95/1000, d.VacantAtEnd,
				d.PositionsEnd, d.PetalsWithDir, d.PetalsSplit, d.MaxInstancesPerPetal, d.HolderConflicts, d.MaxHoldersPerKey)
			fmt.Fprintf(out, "%s roles of online peers at end: %s\n", n, kvInt(d.RolesEnd))
		}
		if len(m.OriginReasons) > 0 {
			fmt.Fprintf(out, "%s origin fetches by reason (whole run): %s\n", n, kvInt(m.OriginReasons))
		}
		if len(m.Anomalies) > 0 {
			fmt.Fprintf(out, "%s notes: %s\n", n, kvInt(m.Anomalies))
		}
	}
	fmt.Fprintf(out, "\nelapsed %.1f s, peak RSS %.0f MB\n", r.ElapsedS, float64(r.PeakRSSBytes)/(1<<20))
	return nil
}

func kv(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.0f", k, m[k])
	}
	return strings.Join(parts, " ")
}

func kvInt(m map[string]int64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

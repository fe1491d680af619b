package sim

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
)

var plotColors = map[string]string{
	SysFlower:         "#2ca02c",
	SysSquirrel:       "#1f77b4",
	SysSquirrelPNS:    "#ff7f0e",
	SysSquirrelPNSDir: "#9467bd",
	SysOrigin:         "#7f7f7f",
}

// plotDash distinguishes the lines beyond their colour; origin-only (0 in
// both panels) is dashed and drawn above the x axis.
var plotDash = map[string]string{
	SysSquirrelPNS:    "8,3",
	SysSquirrelPNSDir: "2,3",
	SysOrigin:         "6,4",
}

// WritePlot writes a standalone SVG: hit ratio (excluding local hits) and
// mean lookup latency of each system per time bucket of simulated time.
func WritePlot(out io.Writer, r *Result) error {
	const (
		W, H       = 960.0, 720.0
		left       = 90.0
		right      = 190.0 // legend column
		panelH     = 250.0
		top1, top2 = 80.0, 410.0
	)
	b := bufio.NewWriter(out)
	c := &r.Config
	var names []string
	for _, s := range AllSystems {
		if _, ok := r.Systems[s]; ok {
			names = append(names, s)
		}
	}
	xMax := c.TraceEndS / 60
	if xMax <= 0 {
		xMax = 1
	}
	pw := W - left - right
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%g" y="28" font-size="17" text-anchor="middle" font-weight="bold">%s</text>`+"\n", W/2,
		html.EscapeString("Flower-CDN vs Squirrel (Chord; Pastry with PNS: home-store, directory) vs origin-only"))
	fmt.Fprintf(b, `<text x="%g" y="50" text-anchor="middle" fill="#444">%s</text>`+"\n", W/2, html.EscapeString(fmt.Sprintf(
		"%d peers, %d localities, %d websites x %d objects, %d queries, churn %s, seed %d", c.Peers, c.Localities, c.Sites, c.Objects, c.Queries, c.Churn, c.Seed)))

	yMaxLookup := 0.0
	for _, n := range names {
		for _, bk := range r.Systems[n].Series {
			if bk.NonLocal > 0 {
				yMaxLookup = max(yMaxLookup, bk.LookupMsMean)
			}
		}
	}
	panels := []struct {
		top    float64
		title  string
		ylabel string
		yMax   float64
		val    func(Bucket) float64
	}{
		{top1, "P2P hit ratio (queries served by another peer / queries that were not local hits)", "hit ratio", 1, func(k Bucket) float64 { return k.HitRatio }},
		{top2, "Mean lookup latency (query issued until it reaches the serving peer or the origin request)", "lookup latency (ms)", niceMax(yMaxLookup), func(k Bucket) float64 { return k.LookupMsMean }},
	}
	for _, p := range panels {
		x0, y0, y1 := left, p.top+panelH, p.top
		// The y axis starts a little below 0, so that a line at 0 (origin-only)
		// stays visible above the frame.
		yMin := -0.04 * p.yMax
		sx := func(v float64) float64 { return x0 + v/xMax*pw }
		sy := func(v float64) float64 { return y0 - (v-yMin)/(p.yMax-yMin)*panelH }
		fmt.Fprintf(b, `<text x="%g" y="%g" font-size="13" font-weight="bold">%s</text>`+"\n", x0, y1-10, html.EscapeString(p.title))
		fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#000"/>`+"\n", x0, y1, pw, panelH)
		for _, t := range ticks(p.yMax) {
			y := sy(t)
			fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, x0, y, x0+pw, y)
			fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#000"/>`, x0-5, y, x0, y)
			fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-8, y+4, tickLabel(t))
		}
		for _, t := range ticks(xMax) {
			x := sx(t)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#000"/>`, x, y0, x, y0+5)
			fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, y0+19, tickLabel(t))
		}
		fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle">simulated time (minutes)</text>`+"\n", x0+pw/2, y0+38)
		fmt.Fprintf(b, `<text transform="translate(%g,%g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", x0-60, y1+panelH/2, html.EscapeString(p.ylabel))
		for _, n := range names {
			m := r.Systems[n]
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="`, plotColors[n], dashAttr(n))
			for i, bk := range m.Series {
				if bk.NonLocal == 0 {
					continue
				}
				end := xMax
				if i+1 < len(m.Series) {
					end = m.Series[i+1].StartS / 60
				}
				mid := (bk.StartS/60 + end) / 2
				fmt.Fprintf(b, "%.1f,%.1f ", sx(mid), sy(min(p.val(bk), p.yMax)))
			}
			fmt.Fprintf(b, `"/>`+"\n")
		}
		// Legend.
		lx := x0 + pw + 20
		for i, n := range names {
			ly := y1 + 20 + float64(i)*22
			fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"%s/>`, lx, ly, lx+28, ly, plotColors[n], dashAttr(n))
			fmt.Fprintf(b, `<text x="%g" y="%g">%s</text>`+"\n", lx+36, ly+4, legendName(n))
		}
	}
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}

func dashAttr(s string) string {
	if d, ok := plotDash[s]; ok {
		return fmt.Sprintf(` stroke-dasharray="%s"`, d)
	}
	return ""
}

func legendName(s string) string {
	switch s {
	case SysFlower:
		return "Flower-CDN"
	case SysSquirrel:
		return "Squirrel, Chord"
	case SysSquirrelPNS:
		return "Squirrel, PNS home"
	case SysSquirrelPNSDir:
		return "Squirrel, PNS dir."
	}
	return "origin-only (0)"
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceMax(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// ticks returns about five round tick values from 0 to max inclusive.
func ticks(maxV float64) []float64 {
	raw := maxV / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var out []float64
	for t := 0.0; t <= maxV*(1+1e-9); t += step {
		out = append(out, t)
	}
	return out
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

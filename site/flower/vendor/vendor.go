// Package vendor holds the third-party browser code Flower-CDN ships
// (uPlot 1.6.32, README.md), for the Go programs that serve it themselves:
// the bootstrap service's operator page embeds it from here. The demo site
// and the embed script take the same files from this folder
// (scripts/build-site.sh copies site/flower/).
package vendor

import _ "embed"

// UPlotJS and UPlotCSS are uPlot's minified script and stylesheet.
var (
	//go:embed uplot/uPlot.iife.min.js
	UPlotJS []byte
	//go:embed uplot/uPlot.min.css
	UPlotCSS []byte
)

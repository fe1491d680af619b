//go:build js && wasm

package main

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/flowercdn/flower/shared/idb"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/worker"
)

// reportedDoc holds the counters the page-side peers of this browser
// profile have reported so far: the service worker's counters outlive
// every page, so the next page reports from there, not from zero.
const reportedDoc = "metrics-reported"

// minReportPeriod bounds the script tag's report period from below.
const minReportPeriod = 200 * time.Millisecond

// reportOptions reads the page's options (metrics=off, report-ms=N).
func reportOptions(opts []string) (noReport bool, every time.Duration) {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "metrics":
			noReport = v == "off"
		case "report-ms":
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
				every = max(time.Duration(ms)*time.Millisecond, minReportPeriod)
			}
		}
	}
	return noReport, every
}

// pageCounters are the site's counters for the reports: the service
// worker's (every request of the site, as it answered them; persisted in
// IndexedDB each second) and the verification failures of objects this
// page's peer got from other peers.
func pageCounters(st *idb.Store, pp *pagePeer) opmetrics.SiteCounters {
	w, _ := worker.SavedStats(st)
	c := w.SiteCounters()
	if pp.p != nil {
		c.VerifyFailures += uint64(max(pp.p.Stats().VerifyFailures, 0))
	}
	return c
}

func reportedBase(st *idb.Store, log *slog.Logger) opmetrics.SiteCounters {
	var c opmetrics.SiteCounters
	b, err := st.Doc(reportedDoc)
	if err != nil || b == nil {
		return c
	}
	if err := json.Unmarshal(b, &c); err != nil {
		log.Info("reported counters unreadable: reporting from zero", "err", err)
		return opmetrics.SiteCounters{}
	}
	return c
}

func saveReported(st *idb.Store, c opmetrics.SiteCounters, log *slog.Logger) {
	b, err := json.Marshal(c)
	if err == nil {
		err = st.SetDoc(reportedDoc, b)
	}
	if err != nil {
		log.Info("save reported counters", "err", err)
	}
}

package bootstrap

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowercdn/flower/bootstrap/frame"
)

type metrics struct {
	reg *prometheus.Registry

	conns        *prometheus.CounterVec
	framesIn     [256]prometheus.Counter
	framesBad    prometheus.Counter
	relayLocal   prometheus.Counter
	relayRemote  prometheus.Counter
	relayUnknown prometheus.Counter
	relayBusy    prometheus.Counter
	relayIn      prometheus.Counter
	errorsSent   *prometheus.CounterVec
	rateLimited  prometheus.Counter
	slowDrops    prometheus.Counter
	entryHTTP    prometheus.Counter
	entryWS      prometheus.Counter
	natsErrors   prometheus.Counter
	reports      *prometheus.CounterVec
}

const ns = "flower_bootstrap"

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.conns = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_total",
		Help: "WebSocket connection attempts by result."}, []string{"result"})
	m.reg.MustRegister(m.conns)
	framesIn := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "frames_in_total",
		Help: "Frames received from authenticated peers, by type."}, []string{"type"})
	m.reg.MustRegister(framesIn)
	for _, t := range []frame.Type{frame.THello, frame.TRegister, frame.TSignal, frame.TEntryReq, frame.TPing, frame.TReport} {
		m.framesIn[t] = framesIn.WithLabelValues(t.String())
	}
	other := framesIn.WithLabelValues("other")
	for i := range m.framesIn {
		if m.framesIn[i] == nil {
			m.framesIn[i] = other
		}
	}
	m.framesBad = f("frames_bad_total", "Frames rejected as malformed, unknown, out of order or too large.")
	relay := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "relay_total",
		Help: "Signalling messages by outcome: queued for a local peer, forwarded over NATS, unknown target, refused because the target's queue had no room for that sender (busy), received from NATS."}, []string{"result"})
	m.reg.MustRegister(relay)
	m.relayLocal = relay.WithLabelValues("local")
	m.relayRemote = relay.WithLabelValues("remote")
	m.relayUnknown = relay.WithLabelValues("unknown")
	m.relayBusy = relay.WithLabelValues("busy")
	m.relayIn = relay.WithLabelValues("from_nats")
	m.errorsSent = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_sent_total",
		Help: "Error frames sent to peers, by code."}, []string{"code"})
	m.reg.MustRegister(m.errorsSent)
	m.rateLimited = f("rate_limited_total", "Frames dropped by the per-peer rate limit.")
	m.slowDrops = f("slow_reader_drops_total", "Peers dropped as slow readers: their own answers overflowed their send queue, or a write to them timed out.")
	m.entryHTTP = f("entry_requests_http_total", "Entry-point requests over HTTP.")
	m.entryWS = f("entry_requests_ws_total", "Entry-point requests over the WebSocket.")
	m.natsErrors = f("nats_errors_total", "NATS publish/subscribe failures.")
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reports_total",
		Help: "Counter reports from peers by result: accepted, or refused (malformed, rate_limited, unregistered, bad_origin, site_cap) and counted nothing."}, []string{"result"})
	m.reg.MustRegister(m.reports, newSiteCollector(s))
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "peers", Help: "Connected, authenticated peers."},
			func() float64 { return float64(s.npeers.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "directory_local", Help: "D-ring members (directory keys) registered by local peers."},
			func() float64 { l, _ := s.reg.Counts(); return float64(l) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "directory_remote", Help: "D-ring members (directory keys) learnt from other instances."},
			func() float64 { _, r := s.reg.Counts(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "send_queue_bytes", Help: "Bytes waiting in every peer's send queue."},
			func() float64 { return float64(s.queued.Load()) }),
	)
	return m
}

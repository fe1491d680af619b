package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// makeBrowserTrace generates the browser workload (docs/simulator.md): a
// visitor is online while a page of the site is open.
//
//   - Sessions are log-normal (median SessionMedian, sigma SessionSigma).
//   - Peers is the mean number of visitors online. At time 0, Peers visitors
//     are online, each in a session drawn from the stationary distribution:
//     a length-biased session (log-normal with mu + sigma^2), of which a
//     uniform fraction remains.
//   - A visitor that leaves returns with probability ReturnFrac after an
//     exponential time of mean ReturnMean, as the same peer (with the state
//     it stored), for a new session; otherwise it never comes back.
//   - Visitors arrive for the first time as a Poisson process whose rate
//     keeps the online count stationary: all arrivals together come at
//     Peers / E[session], and the returns of visitors who left before time 0
//     (a flow that decays as exp(-t / ReturnMean)) are new to the
//     simulation, so first arrivals come at Peers / E[session] times
//     1 - ReturnFrac (1 - exp(-t / ReturnMean)).
//   - Seeders always-on peers per locality are online throughout.
//
// Queries are drawn as in makeTrace: one Poisson stream of rate
// online / QueryInterval, from a uniformly random online peer.
func (w *World) makeBrowserTrace(rng *rand.Rand) {
	cfg := &w.cfg
	mu := math.Log(float64(cfg.SessionMedian))
	sig := cfg.SessionSigma
	session := func() time.Duration { return time.Duration(math.Exp(mu + sig*rng.NormFloat64())) }
	meanSession := float64(cfg.SessionMedian) * math.Exp(sig*sig/2)
	arrivalMean := meanSession / float64(cfg.Peers) // mean gap between arrivals, ns

	var onl, pos []int32 // online peers; each peer's position in onl, -1 offline
	add := func(i int32) {
		for int(i) >= len(pos) {
			pos = append(pos, -1)
		}
		pos[i] = int32(len(onl))
		onl = append(onl, i)
	}
	del := func(i int32) {
		p := pos[i]
		last := onl[len(onl)-1]
		onl[p], pos[last] = last, p
		onl = onl[:len(onl)-1]
		pos[i] = -1
	}
	var churn queue // next departure or return of each peer that has one
	w.InitOnline = make([]bool, cfg.Peers, 2*cfg.Peers)
	for i := 0; i < cfg.Peers; i++ {
		w.InitOnline[i] = true
		add(int32(i))
		biased := math.Exp(mu + sig*sig + sig*rng.NormFloat64())
		churn.push(event{at: time.Duration(rng.Float64() * biased), node: int32(i)})
	}
	w.seedFrom = int32(len(w.PeerIDs))
	w.seedTo = w.seedFrom + int32(w.k*cfg.Seeders)
	for l := 0; l < w.k; l++ {
		for j := 0; j < cfg.Seeders; j++ {
			i := w.addPeer(rng, l)
			w.InitOnline = append(w.InitOnline, true)
			add(i)
		}
	}

	w.Trace = make([]traceEvent, 0, cfg.Queries+cfg.Queries/4)
	w.QueryOf = make([]int32, 0, cfg.Queries+cfg.Queries/4)
	w.QueryPos = make([]int32, 0, cfg.Queries)
	now := time.Duration(0)
	peerNS := 0.0
	advance := func(t time.Duration) {
		peerNS += float64(len(onl)) * float64(t-now)
		now = t
	}
	churnEvent := func(i int32, kind int32) {
		w.Trace = append(w.Trace, traceEvent{At: now, Peer: i, Obj: kind})
		w.QueryOf = append(w.QueryOf, -1)
	}
	nextArrival := time.Duration(rng.ExpFloat64() * arrivalMean)
	for len(w.QueryPos) < cfg.Queries {
		tq := time.Duration(math.MaxInt64)
		if len(onl) > 0 {
			tq = now + time.Duration(rng.ExpFloat64()*float64(cfg.QueryInterval)/float64(len(onl)))
		}
		switch {
		case nextArrival <= tq && (churn.len() == 0 || nextArrival < churn.top().at):
			advance(nextArrival)
			nextArrival = now + time.Duration(rng.ExpFloat64()*arrivalMean)
			// Thinning: a candidate arrival is a first visit with the
			// probability that it is not the return of a visitor who left
			// before time 0.
			if rng.Float64() >= 1-cfg.ReturnFrac*(1-math.Exp(-float64(now)/float64(cfg.ReturnMean))) {
				continue
			}
			i := w.addPeer(rng, -1)
			w.InitOnline = append(w.InitOnline, false)
			add(i)
			churnEvent(i, traceUp)
			churn.push(event{at: now + session(), node: i})
		case churn.len() > 0 && churn.top().at <= tq:
			ev := churn.pop()
			advance(ev.at)
			i := ev.node
			if pos[i] >= 0 {
				del(i)
				churnEvent(i, traceDown)
				if rng.Float64() < cfg.ReturnFrac {
					churn.push(event{at: now + expDur(rng, cfg.ReturnMean), node: i})
				}
			} else {
				add(i)
				churnEvent(i, traceUp)
				churn.push(event{at: now + session(), node: i})
			}
		default:
			advance(tq)
			w.addQuery(now, onl[rng.IntN(len(onl))], rng)
		}
	}
	w.End = now
	w.PeerMins = peerNS / float64(time.Minute)
}

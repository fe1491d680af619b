//go:build js && wasm

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/idb"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/jsutil"
	"github.com/flowercdn/flower/shared/opmetrics"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/shared/rtc"
	"github.com/hack-pad/safejs"
)

// identityDoc holds the peer's private key: the same browser profile is the
// same peer across page loads, so it rejoins its petal from its stored view.
const identityDoc = "identity"

// runPage starts the page-side peer: args are the bootstrap service's URL,
// the site key the script tag names (may be empty), then options as
// name=value (metrics=off: no operator metrics reports; report-ms=N: the
// report period).
func runPage(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) < 1 || args[0] == "" {
		return errors.New("page: no bootstrap service (the script tag's data-bootstrap)")
	}
	boot, wantKey := args[0], ""
	if len(args) > 1 {
		wantKey = args[1]
	}
	noReport, reportEvery := reportOptions(args[min(2, len(args)):])
	loc, err := safejs.Global().Get("location")
	if err != nil {
		return err
	}
	ov, err := loc.Get("origin")
	if err != nil {
		return err
	}
	origin, err := ov.String()
	if err != nil {
		return err
	}
	st, err := idb.Open(idb.Name)
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	key, err := identity(st)
	if err != nil {
		return err
	}
	ctl, err := loadControls(st, log)
	if err != nil {
		return err
	}
	var left []string
	if ctl.set.Left {
		left = []string{origin}
	}
	start, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if wantKey != "" {
		// The key comes from the origin twice (script tag and well-known
		// document); they must agree.
		sc, err := peer.NewSiteClient(start, peer.SiteClientConfig{Origin: origin, Logger: log})
		if err != nil {
			return fmt.Errorf("page: %w", err)
		}
		if got := sc.WellKnown().PublicKey.String(); got != wantKey {
			return fmt.Errorf("page: the script tag names site key %s, the well-known document %s", wantKey, got)
		}
	}
	pp := &pagePeer{} // filled once the peer runs; Counters reads it
	p, err := peer.Start(start, peer.Config{
		Bootstrap: boot, Sites: []string{origin}, Store: st, Key: key,
		Net: peer.RTC(rtc.Config{Logger: log}), Locality: -1, Logger: log, Core: browserCore(),
		// The service worker stores what peers send (worker.Answer.Keep):
		// an IndexedDB put of a large object would stall this page.
		CallerStores: true,
		// The visitor's controls (visitor.go).
		Restrictions: ctl.restrictions(), UploadLimit: ctl.set.UploadLimit, Left: left,
		// Operator metrics: the service worker's counters, which see every
		// request of the site (docs/operator-metrics.md).
		NoReport: noReport, ReportPeriod: reportEvery,
		Counters:   func(string) opmetrics.SiteCounters { return pageCounters(st, pp) },
		ReportBase: func(string) opmetrics.SiteCounters { return reportedBase(st, log) },
		Reported:   func(_ string, c opmetrics.SiteCounters) { saveReported(st, c, log) },
	})
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	*pp = pagePeer{p: p, st: st, ctl: ctl, origin: origin, site: ids.SiteOf(origin), log: log, started: time.Now()}
	if err := pp.install(); err != nil {
		return err
	}
	if ctl.set.Left {
		return nil // no petal to warm up
	}
	// Take part in the petal at once, not at the first miss (a visitor
	// whose requests are all cache hits still serves its petal), and have
	// the connection to the petal's directory open before the page's media
	// ask for anything: flower.js loads them once the peer is ready.
	warm, cancelWarm := context.WithTimeout(ctx, 3*time.Second)
	defer cancelWarm()
	t0 := time.Now()
	if err := p.Warm(warm, origin); err != nil {
		log.Info("warm-up", "err", err)
	}
	log.Debug("warm-up done", "took", time.Since(t0))
	return nil
}

func identity(st *idb.Store) (ed25519.PrivateKey, error) {
	b, err := st.Doc(identityDoc)
	if err != nil {
		return nil, fmt.Errorf("page: identity: %w", err)
	}
	if len(b) == ed25519.PrivateKeySize {
		return ed25519.PrivateKey(b), nil
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("page: identity: %w", err)
	}
	if err := st.SetDoc(identityDoc, key); err != nil {
		return nil, fmt.Errorf("page: identity: %w", err)
	}
	return key, nil
}

type pagePeer struct {
	p       *peer.Peer
	st      *idb.Store
	ctl     *controls
	origin  string
	site    ids.SiteID
	log     *slog.Logger
	started time.Time
}

// install sets globalThis.flowerPeer for the glue (site/flower/flower.js):
//   - lookup(url, onStart) → Promise of {kind: "object", body, statement,
//     local, peer, keep} or {kind: "origin"} (the worker fetches and
//     reports); keep: the worker stores the object and reports it;
//   - fetched(url, ok, stored): the worker's origin fetch;
//   - stats() → Promise of a JSON string (see Stats in docs/browser.md);
//   - close() → Promise: leave the network (the visitor turned it off);
//   - pause(bool), setUploadLimit(bps), leave(bool), clear(), device(obj):
//     the visitor's controls (visitor.go).
func (pp *pagePeer) install() error {
	obj, err := jsutil.NewObject()
	if err != nil {
		return err
	}
	funcs := map[string]func(args []safejs.Value) any{
		"lookup": func(args []safejs.Value) any {
			return jsutil.Promise(func() (any, error) { return pp.lookup(args) })
		},
		"fetched": func(args []safejs.Value) any {
			if len(args) < 3 {
				return nil
			}
			u, _ := args[0].String()
			ok, _ := args[1].Bool()
			stored, _ := args[2].Bool()
			go func() {
				if err := pp.p.Fetched(u, ok, stored); err != nil {
					pp.log.Info("adopt", "url", u, "err", err)
				}
			}()
			return nil
		},
		"stats": func([]safejs.Value) any {
			return jsutil.Promise(func() (any, error) {
				b, err := json.Marshal(pp.stats())
				return string(b), err
			})
		},
		"close": func([]safejs.Value) any {
			return jsutil.Promise(func() (any, error) { return nil, pp.p.Close() })
		},
	}
	for name, fn := range pp.controlFuncs() {
		funcs[name] = fn
	}
	for name, fn := range funcs {
		f, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any { return fn(args) })
		if err != nil {
			return err
		}
		if err := obj.Set(name, f.Value()); err != nil {
			return err
		}
	}
	return safejs.Global().Set("flowerPeer", obj)
}

func (pp *pagePeer) lookup(args []safejs.Value) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("lookup(url, onStart)")
	}
	u, err := args[0].String()
	if err != nil {
		return nil, err
	}
	var onStart func()
	if len(args) > 1 && args[1].Type() == safejs.TypeFunction {
		cb := args[1]
		onStart = func() { _, _ = cb.Invoke() }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := pp.p.Lookup(ctx, u, onStart)
	out, oerr := jsutil.NewObject()
	if oerr != nil {
		return nil, oerr
	}
	if errors.Is(err, peer.ErrOrigin) {
		return out, out.Set("kind", "origin")
	}
	if err != nil {
		return nil, err
	}
	pp.log.Debug("lookup", "url", u, "source", r.Source.String(), "bytes", len(r.Body), "first_byte", r.Lookup, "transfer", r.Transfer)
	body, err := jsutil.ToJS(r.Body)
	if err != nil {
		return nil, err
	}
	statement, err := jsutil.ToJS(r.Statement)
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]any{
		"kind": "object", "body": body, "statement": statement,
		"local": r.Source == core.SourceLocal, "peer": r.Peer.Short(), "keep": r.Keep,
	} {
		if err := out.Set(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// browserCore is the protocol's configuration in the browser: a browser
// peer answers a query after an IndexedDB read and a turn of its page's
// event loop, tens to hundreds of milliseconds even on one machine, so an
// RTT-derived request timeout gets a higher floor than a native peer's
// (which would give up on a holder that is about to send, and ask another
// for the same object).
//
// LeaveHandover: a visitor who pauses sharing, or leaves the site, while
// its peer is a directory hands the position over at once (a successor
// named to the petal) instead of leaving it vacant until the petal notices;
// its peers must understand that goodbye, so every browser peer sets it.
func browserCore() core.Config {
	c := core.DefaultConfig()
	c.MinTimeout = 400 * time.Millisecond
	c.LeaveHandover = true
	return c
}

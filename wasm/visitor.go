//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/idb"
	"github.com/flowercdn/flower/shared/jsutil"
	"github.com/flowercdn/flower/worker"
	"github.com/hack-pad/safejs"
)

// The visitor's controls (docs/browser.md, "The visitor's controls"): the
// settings the visitor chose, persisted in IndexedDB (worker.SettingsDoc),
// and what the browser says of the device, from flower.js. Both decide the
// peer's restrictions.

// device is what the browser says of the device (flower.js reads
// navigator.connection and navigator.getBattery()).
type device struct {
	SaveData     bool `json:"saveData"`     // navigator.connection.saveData
	Metered      bool `json:"metered"`      // a cellular connection, as far as the browser tells
	BatterySaver bool `json:"batterySaver"` // on battery and low, as far as the browser tells
}

// controls are the visitor's settings and the device's state.
type controls struct {
	mu  sync.Mutex
	set worker.Settings
	dev device
	// apply serialises handing the restrictions to the peer: each hand-over
	// reads the latest settings and device, so an older one never lands
	// after a newer one.
	apply sync.Mutex
	// update serialises the visitor's changes: saved and applied in order.
	update sync.Mutex
}

// loadControls reads the settings document and globalThis.flowerDevice
// (set by flower.js before the module starts). A damaged document is
// logged and replaced by the defaults at the next change.
func loadControls(st *idb.Store, log *slog.Logger) (*controls, error) {
	b, err := st.Doc(worker.SettingsDoc)
	if err != nil {
		return nil, fmt.Errorf("page: visitor settings: %w", err)
	}
	s, err := worker.ParseSettings(b)
	if err != nil {
		log.Warn("visitor settings: using the defaults", "err", err)
	}
	c := &controls{set: s}
	if v, err := safejs.Global().Get("flowerDevice"); err == nil && v.Type() == safejs.TypeObject {
		c.dev = readDevice(v)
	}
	return c, nil
}

func readDevice(v safejs.Value) device {
	flag := func(name string) bool {
		x, err := v.Get(name)
		if err != nil {
			return false
		}
		b, _ := x.Bool()
		return b
	}
	return device{SaveData: flag("saveData"), Metered: flag("metered"), BatterySaver: flag("batterySaver")}
}

// restrictions: a paused peer neither serves nor takes a directory role;
// Save-Data stops uploads; a metered or battery-saving device takes no
// directory role. Called under c.mu.
func (c *controls) restrictions() core.Restrictions {
	return core.Restrictions{
		NoServe:     c.set.Paused || c.dev.SaveData,
		NoDirectory: c.set.Paused || c.dev.Metered || c.dev.BatterySaver,
	}
}

// Controls is the "controls" part of flower.stats().
type Controls struct {
	worker.Settings
	Device      device `json:"device"`
	NoServe     bool   `json:"noServe"`
	NoDirectory bool   `json:"noDirectory"`
}

func (c *controls) snapshot() Controls {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.restrictions()
	return Controls{Settings: c.set, Device: c.dev, NoServe: r.NoServe, NoDirectory: r.NoDirectory}
}

// applyRestrictions hands the peer the restrictions of the current
// settings and device.
func (pp *pagePeer) applyRestrictions() {
	c := pp.ctl
	c.apply.Lock()
	defer c.apply.Unlock()
	c.mu.Lock()
	r := c.restrictions()
	c.mu.Unlock()
	pp.p.SetRestrictions(r)
}

// update changes the settings with fn, saves them, and applies them to the
// peer.
func (pp *pagePeer) update(fn func(s *worker.Settings)) error {
	c := pp.ctl
	c.update.Lock()
	defer c.update.Unlock()
	c.mu.Lock()
	was := c.set
	fn(&c.set)
	now := c.set
	c.mu.Unlock()
	if err := pp.st.SetDoc(worker.SettingsDoc, now.Marshal()); err != nil {
		return fmt.Errorf("page: save visitor settings: %w", err)
	}
	pp.applyRestrictions()
	pp.p.SetUploadLimit(now.UploadLimit)
	switch {
	case now.Left && !was.Left:
		// Leaving drops what the peer cached for the site: nobody serves
		// from it any more, and the worker passes the requests through.
		if _, err := pp.p.Clear(pp.origin); err != nil {
			pp.log.Warn("leave: clear", "err", err)
		}
		if err := pp.p.Leave(pp.origin); err != nil {
			return fmt.Errorf("page: leave: %w", err)
		}
	case !now.Left && was.Left:
		if err := pp.p.Rejoin(pp.origin); err != nil {
			return fmt.Errorf("page: rejoin: %w", err)
		}
	}
	pp.log.Info("visitor settings", "paused", now.Paused, "upload_limit", now.UploadLimit, "left", now.Left)
	return nil
}

// controlFuncs are flowerPeer's control methods (flower.js wraps them as
// flower.pause and so on): each returns a Promise.
func (pp *pagePeer) controlFuncs() map[string]func(args []safejs.Value) any {
	arg := func(args []safejs.Value) (safejs.Value, error) {
		if len(args) < 1 {
			return safejs.Value{}, errors.New("page: missing argument")
		}
		return args[0], nil
	}
	boolArg := func(args []safejs.Value) (bool, error) {
		v, err := arg(args)
		if err != nil {
			return false, err
		}
		return v.Truthy()
	}
	return map[string]func(args []safejs.Value) any{
		"pause": func(args []safejs.Value) any {
			return jsutil.Promise(func() (any, error) {
				on, err := boolArg(args)
				if err != nil {
					return nil, err
				}
				return nil, pp.update(func(s *worker.Settings) { s.Paused = on })
			})
		},
		"setUploadLimit": func(args []safejs.Value) any {
			return jsutil.Promise(func() (any, error) {
				v, err := arg(args)
				if err != nil {
					return nil, err
				}
				f, err := v.Float()
				if err != nil {
					return nil, fmt.Errorf("page: upload limit: %w", err)
				}
				return nil, pp.update(func(s *worker.Settings) { s.UploadLimit = max(int64(f), 0) })
			})
		},
		"leave": func(args []safejs.Value) any {
			return jsutil.Promise(func() (any, error) {
				on, err := boolArg(args)
				if err != nil {
					return nil, err
				}
				return nil, pp.update(func(s *worker.Settings) { s.Left = on })
			})
		},
		"clear": func([]safejs.Value) any {
			return jsutil.Promise(func() (any, error) {
				n, err := pp.p.Clear(pp.origin)
				if err != nil {
					return nil, fmt.Errorf("page: clear: %w", err)
				}
				pp.log.Info("cache cleared", "objects", n)
				return n, nil
			})
		},
		// device(obj): what the browser now says of the device.
		"device": func(args []safejs.Value) any {
			v, err := arg(args)
			if err != nil || v.Type() != safejs.TypeObject {
				return nil
			}
			d := readDevice(v)
			c := pp.ctl
			c.mu.Lock()
			changed := c.dev != d
			c.dev = d
			c.mu.Unlock()
			if changed {
				pp.log.Info("device", "save_data", d.SaveData, "metered", d.Metered, "battery_saver", d.BatterySaver)
				go pp.applyRestrictions()
			}
			return nil
		},
	}
}

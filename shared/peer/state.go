package peer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/host"
	"github.com/flowercdn/flower/shared/ids"
)

// savedState is the JSON a peer saves: the node's state with object expiry
// in Unix milliseconds, since the node's clock restarts with the process.
type savedState struct {
	Format  int         `json:"format"`
	Peer    ids.PeerID  `json:"peer"`
	Loc     int         `json:"loc"`
	SavedAt int64       `json:"saved_at"` // Unix ms
	Sites   []savedSite `json:"sites"`
}

type savedSite struct {
	core.SiteState
	Objects []savedObject `json:"Objects"`
}

type savedObject struct {
	Obj       ids.ObjectID
	Size      int64
	ExpiresMs int64 // Unix ms; 0: never
	Version   uint64
}

const stateFormat = 1

// encodeState encodes the node's state for the store.
func (p *Peer) encodeState(st core.State) []byte {
	s := savedState{Format: stateFormat, Peer: p.id, Loc: p.loc, SavedAt: time.Now().UnixMilli()}
	for _, ss := range st.Sites {
		sv := savedSite{SiteState: ss}
		sv.SiteState.Objects = nil
		for _, o := range ss.Objects {
			so := savedObject{Obj: o.Obj, Size: o.Size, Version: o.Version}
			if o.Expires != 0 {
				so.ExpiresMs = p.epoch.Add(o.Expires).UnixMilli()
			}
			sv.Objects = append(sv.Objects, so)
		}
		s.Sites = append(s.Sites, sv)
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("peer: encode state: %v", err)) // plain data: cannot fail
	}
	return b
}

// decodeState turns saved bytes into a core.State on this process's clock.
// Objects that expired meanwhile are dropped; a state saved by another
// identity, or in another locality, keeps only its objects (its view and
// roles belong to another position in the network).
func (p *Peer) decodeState(b []byte) (core.State, error) {
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return core.State{}, fmt.Errorf("peer: stored state: %w", err)
	}
	if s.Format != stateFormat {
		return core.State{}, fmt.Errorf("peer: stored state: format %d, want %d", s.Format, stateFormat)
	}
	sameNode := s.Peer == p.id && s.Loc == p.loc
	var st core.State
	now := time.Now()
	for _, sv := range s.Sites {
		ss := sv.SiteState
		ss.Objects = nil
		if !sameNode || ss.Role == core.RoleNone || ss.Role > core.RoleDirectory {
			ss = core.SiteState{Site: ss.Site, Role: core.RoleClient}
		}
		for _, o := range sv.Objects {
			so := core.StoredObject{Obj: o.Obj, Size: o.Size, Version: o.Version}
			if o.ExpiresMs != 0 {
				exp := time.UnixMilli(o.ExpiresMs)
				if !exp.After(now) {
					continue
				}
				so.Expires = exp.Sub(p.epoch)
			}
			ss.Objects = append(ss.Objects, so)
		}
		st.Sites = append(st.Sites, ss)
	}
	return st, nil
}

// startNode builds the node, from the stored state if there is one, and
// brings it online. Objects the state lists but the store lost are
// invalidated; stored objects the state does not list are adopted while
// their statements hold, and deleted otherwise.
func (p *Peer) startNode(cfg core.Config) error {
	rnd := rand.New(rand.NewPCG(p.cfg.Seed, p.cfg.Seed^0x9e3779b97f4a7c15))
	saved, err := p.cfg.Store.LoadState()
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	var st core.State
	if saved != nil {
		if st, err = p.decodeState(saved); err != nil {
			p.log.Warn("ignoring the stored state", "err", err)
			st = core.State{}
		}
	}
	// Keep only the configured sites' state.
	st.Sites = slices.DeleteFunc(st.Sites, func(ss core.SiteState) bool { return p.sites[ss.Site] == nil })
	stored, err := p.cfg.Store.List()
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	have := make(map[objKey]Entry, len(stored))
	for _, e := range stored {
		have[objKey{e.Site, ids.ObjectOf(e.URL)}] = e
	}
	var node *core.Node
	restored := len(st.Sites) > 0
	if restored {
		node, err = core.Restore(cfg, p.id, p.loc, rnd, st)
	} else {
		node, err = core.New(cfg, p.id, p.loc, rnd)
	}
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	// What the restored node holds, not what the state listed: Restore
	// drops what no longer fits the quota, without an Evict.
	listed := make(map[objKey]bool)
	var lost []objKey
	for _, ss := range node.Snapshot().Sites {
		for _, o := range ss.Objects {
			k := objKey{ss.Site, o.Obj}
			listed[k] = true
			if _, ok := have[k]; !ok {
				lost = append(lost, k)
			}
		}
	}
	// Stored but not listed: stored after the last save, or by another
	// writer of the store (the browser's service worker); adopted below.
	var unlisted []Entry
	for k, e := range have {
		if !listed[k] {
			unlisted = append(unlisted, e)
		}
	}
	drv, err := host.New(node, host.Env{
		Transport: envTransport{p}, Origin: envOrigin{p}, Objects: envObjects{p},
		Bootstrap: p.boot, Persister: envPersister{p}, Answerer: envAnswerer{p},
	}, host.Options{})
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drv = drv
	now := p.now()
	drv.SetRestrictions(now, p.cfg.Restrictions)
	if restored {
		drv.Reconnect(now)
		for _, k := range lost {
			drv.Invalidate(now, k.site, k.obj)
		}
	}
	for id := range p.sites {
		switch role := drv.Node().Role(id); {
		case p.hasLeft(id) && role != core.RoleNone:
			drv.RemoveInterest(now, id) // left while no peer ran
		case !p.hasLeft(id) && role == core.RoleNone:
			drv.AddInterest(now, id)
		}
	}
	p.adoptStored(now, unlisted)
	p.rearm()
	return nil
}

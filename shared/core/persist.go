package core

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/wire"
)

// SiteState is what a peer keeps of one website across navigations and
// restarts (the seed keeps view and directory information in the browser's
// Flower-CDN cache section).
type SiteState struct {
	Site ids.SiteID
	Role Role
	Dir  wire.DirInfo
	View []wire.Contact
	// DirKey is the D-ring position held when the state was taken (0: none).
	DirKey  ids.Key
	Objects []StoredObject
}

// StoredObject is one cached object's metadata; the host keeps the bytes.
// Expires is on the node's clock (see Object): a host whose clock restarts
// (a new page load) rebases it before Restore.
type StoredObject struct {
	Obj     ids.ObjectID
	Size    int64
	Expires time.Duration
	Version uint64
}

// State is a node's persistent state.
type State struct {
	Sites []SiteState
}

// Snapshot returns the node's persistent state (hosts save it when Ready
// says Persist).
func (n *Node) Snapshot() State {
	var st State
	for _, site := range n.interest.Sites() {
		sp := n.sites[site]
		ss := SiteState{Site: site, Role: n.Role(site), Dir: sp.dir, View: sp.view.Contacts()}
		if p := n.positionFor(site); p != nil {
			ss.DirKey = p.key
		} else if sp.ret == returnReclaim {
			ss.DirKey = sp.wasDir
		}
		for _, obj := range sp.cache.Objects() {
			size, exp := sp.cache.Meta(obj)
			ss.Objects = append(ss.Objects, StoredObject{Obj: obj, Size: size, Expires: exp, Version: sp.cache.Version(obj)})
		}
		st.Sites = append(st.Sites, ss)
	}
	return st
}

// Restore builds an offline node from a saved state; the host then calls
// Reconnect, which rejoins each petal from the stored view (or takes a
// former directory position back).
func Restore(cfg Config, id ids.PeerID, loc int, rnd *rand.Rand, st State) (*Node, error) {
	n, err := New(cfg, id, loc, rnd)
	if err != nil {
		return nil, err
	}
	for _, ss := range st.Sites {
		if ss.Role == RoleNone || ss.Role > RoleDirectory {
			return nil, fmt.Errorf("core: restore site %x: bad role %d", uint64(ss.Site), ss.Role)
		}
		sp := n.site(ss.Site)
		for _, o := range ss.Objects {
			sp.cache.PutVersion(o.Obj, o.Size, o.Expires, o.Version, nil)
		}
		sp.cache.TakeChanges()
		for _, c := range ss.View {
			if c.ID != id {
				sp.view.AddContact(c)
			}
		}
		sp.dir = ss.Dir
		switch {
		case ss.Role == RoleDirectory || ss.DirKey != 0:
			sp.ret, sp.wasDir = returnReclaim, ss.DirKey
			n.interest.UpdateRole(ss.Site, RoleContent)
		case ss.Role == RoleContent:
			n.interest.UpdateRole(ss.Site, RoleContent)
		}
	}
	n.ready.reset()
	n.online = false
	return n, nil
}

// Package interest is the seed's interest manager: the whitelist of websites
// a user takes part in, and the peer's role for each (updateRole).
package interest

import (
	"slices"

	"github.com/flowercdn/flower/shared/ids"
)

// Role of the local peer for one website.
type Role uint8

// Roles.
const (
	None Role = iota
	Client
	Content
	Directory
)

func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Content:
		return "content"
	case Directory:
		return "directory"
	}
	return "none"
}

// Manager holds the whitelist and the role per website. Sites() is in the
// order interests were added, so iteration is deterministic.
type Manager struct {
	order []ids.SiteID
	roles map[ids.SiteID]Role
}

// New returns an empty manager.
func New() *Manager { return &Manager{roles: make(map[ids.SiteID]Role)} }

// AddInterest adds ws to the whitelist with role Client. It reports false if
// ws was already there (its role is kept).
func (m *Manager) AddInterest(ws ids.SiteID) bool {
	if _, ok := m.roles[ws]; ok {
		return false
	}
	m.roles[ws] = Client
	m.order = append(m.order, ws)
	return true
}

// RemoveInterest removes ws. It reports whether ws was there.
func (m *Manager) RemoveInterest(ws ids.SiteID) bool {
	if _, ok := m.roles[ws]; !ok {
		return false
	}
	delete(m.roles, ws)
	m.order = slices.DeleteFunc(m.order, func(s ids.SiteID) bool { return s == ws })
	return true
}

// UpdateRole sets the role for ws, which must be whitelisted. It reports
// whether the role changed.
func (m *Manager) UpdateRole(ws ids.SiteID, r Role) bool {
	old, ok := m.roles[ws]
	if !ok || old == r || r == None {
		return false
	}
	m.roles[ws] = r
	return true
}

// Role returns the role for ws (None when not whitelisted).
func (m *Manager) Role(ws ids.SiteID) Role { return m.roles[ws] }

// Sites returns the whitelist in insertion order. The slice is the
// manager's; do not modify it.
func (m *Manager) Sites() []ids.SiteID { return m.order }

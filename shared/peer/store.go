package peer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/security"
)

// Entry is what a store keeps of one shareable object besides its body: the
// site's signed statement, which the peer sends ahead of the body to any
// peer it serves.
type Entry struct {
	Site      ids.SiteID
	URL       string
	Statement []byte // security.Signed, encoded
	Size      int64
}

// Signed decodes the entry's statement.
func (e Entry) Signed() (security.Signed, error) {
	s, err := security.DecodeSigned(e.Statement)
	if err != nil {
		return security.Signed{}, fmt.Errorf("stored statement of %s: %w", e.URL, err)
	}
	return s, nil
}

// ErrNotFound is returned by Store.Open for an object the store lacks.
var ErrNotFound = errors.New("peer: object not in the store")

// Store keeps verified objects and the node's persistent state: a
// directory on disk for a native peer, IndexedDB in the browser. The core
// decides what is cached (quota, LRU, expiry); the store follows its
// Evicts. Implementations are safe for concurrent use.
type Store interface {
	// Put stores a verified object, replacing any previous one. The
	// store may keep body: the caller does not modify it afterwards.
	Put(e Entry, body []byte) error
	// Open returns an object's entry and body (ErrNotFound if absent).
	Open(site ids.SiteID, obj ids.ObjectID) (Entry, io.ReadCloser, error)
	// Delete drops an object; deleting an absent object is not an error.
	Delete(site ids.SiteID, obj ids.ObjectID) error
	// List returns every stored object, for reconciling with the node's
	// state after a restart.
	List() ([]Entry, error)
	// LoadState returns the last saved state (nil, nil when none).
	LoadState() ([]byte, error)
	// SaveState saves the node's state.
	SaveState(b []byte) error
}

// MemStore is a Store in memory: for tests and for peers that keep
// nothing across restarts.
type MemStore struct {
	mu    sync.Mutex
	objs  map[objKey]memObj
	state []byte
}

type objKey struct {
	site ids.SiteID
	obj  ids.ObjectID
}

type memObj struct {
	e    Entry
	body []byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{objs: make(map[objKey]memObj)} }

// Put implements Store.
func (m *MemStore) Put(e Entry, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[objKey{e.Site, ids.ObjectOf(e.URL)}] = memObj{e: e, body: body}
	return nil
}

// Open implements Store.
func (m *MemStore) Open(site ids.SiteID, obj ids.ObjectID) (Entry, io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[objKey{site, obj}]
	if !ok {
		return Entry{}, nil, ErrNotFound
	}
	return o.e, io.NopCloser(bytes.NewReader(o.body)), nil
}

// Delete implements Store.
func (m *MemStore) Delete(site ids.SiteID, obj ids.ObjectID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, objKey{site, obj})
	return nil
}

// List implements Store.
func (m *MemStore) List() ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Entry, 0, len(m.objs))
	for _, o := range m.objs {
		out = append(out, o.e)
	}
	return out, nil
}

// LoadState implements Store.
func (m *MemStore) LoadState() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.state), nil
}

// SaveState implements Store.
func (m *MemStore) SaveState(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = bytes.Clone(b)
	return nil
}

//go:build js && wasm

// Package idb is Flower-CDN's object store in the browser: IndexedDB,
// shared by the service worker (which stores what it fetched from the
// origin and answers the page's requests from it) and the page-side peer
// (which stores what it got from peers and serves other peers from it). It
// implements peer.Store, and keeps small documents (the peer's identity,
// the site's well-known document, the worker's counters) besides.
//
// IndexedDB is reached through github.com/hack-pad/safejs, so a JS
// exception comes back as an error instead of a panic. Every call blocks
// the calling goroutine until IndexedDB answers: never call it from a JS
// callback's own goroutine.
package idb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/jsutil"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/hack-pad/safejs"
)

// Name is the database both sides open.
const Name = "flower-cdn"

const (
	version  = 1
	stMeta   = "meta"   // site/object (hex) → {url, site, statement, size, used}
	stBodies = "bodies" // key → Uint8Array
	stDocs   = "docs"   // name → Uint8Array (state, identity, well-known, counters)
	docState = "state"
)

// Store is the IndexedDB store. It is safe for concurrent use.
type Store struct {
	db     safejs.Value
	mu     sync.Mutex // serialises nothing in IndexedDB; guards closed
	closed bool
}

// Open opens (creating or upgrading) the database.
func Open(name string) (*Store, error) {
	factory, err := safejs.Global().Get("indexedDB")
	if err != nil || factory.IsUndefined() || factory.IsNull() {
		return nil, errors.New("idb: IndexedDB is not available")
	}
	req, err := factory.Call("open", name, version)
	if err != nil {
		return nil, fmt.Errorf("idb: open %s: %w", name, err)
	}
	upgrade, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		db, err := req.Get("result")
		if err != nil {
			return nil
		}
		for _, st := range []string{stMeta, stBodies, stDocs} {
			if has, _ := db.Get("objectStoreNames"); !contains(has, st) {
				_, _ = db.Call("createObjectStore", st)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idb: open %s: %w", name, err)
	}
	defer upgrade.Release()
	if err := req.Set("onupgradeneeded", upgrade.Value()); err != nil {
		return nil, fmt.Errorf("idb: open %s: %w", name, err)
	}
	db, err := await(req)
	if err != nil {
		return nil, fmt.Errorf("idb: open %s: %w", name, err)
	}
	return &Store{db: db}, nil
}

func contains(list safejs.Value, name string) bool {
	ok, err := list.Call("contains", name)
	if err != nil {
		return false
	}
	b, _ := ok.Bool()
	return b
}

// await waits for an IDBRequest's success or error event.
func await(req safejs.Value) (safejs.Value, error) {
	type result struct {
		v   safejs.Value
		err error
	}
	ch := make(chan result, 1)
	ok, err := safejs.FuncOf(func(safejs.Value, []safejs.Value) any {
		v, err := req.Get("result")
		ch <- result{v, err}
		return nil
	})
	if err != nil {
		return safejs.Value{}, err
	}
	defer ok.Release()
	fail, err := safejs.FuncOf(func(safejs.Value, []safejs.Value) any {
		ch <- result{err: jsError(req, "error")}
		return nil
	})
	if err != nil {
		return safejs.Value{}, err
	}
	defer fail.Release()
	if err := req.Set("onsuccess", ok.Value()); err != nil {
		return safejs.Value{}, err
	}
	if err := req.Set("onerror", fail.Value()); err != nil {
		return safejs.Value{}, err
	}
	r := <-ch
	return r.v, r.err
}

// done waits for a transaction to complete.
func done(tx safejs.Value) error {
	ch := make(chan error, 1)
	ok, err := safejs.FuncOf(func(safejs.Value, []safejs.Value) any { ch <- nil; return nil })
	if err != nil {
		return err
	}
	defer ok.Release()
	fail, err := safejs.FuncOf(func(safejs.Value, []safejs.Value) any { ch <- jsError(tx, "error"); return nil })
	if err != nil {
		return err
	}
	defer fail.Release()
	for ev, fn := range map[string]safejs.Func{"oncomplete": ok, "onerror": fail, "onabort": fail} {
		if err := tx.Set(ev, fn.Value()); err != nil {
			return err
		}
	}
	return <-ch
}

// jsError reads the DOMException in v[field].
func jsError(v safejs.Value, field string) error {
	e, err := v.Get(field)
	if err != nil || e.IsNull() || e.IsUndefined() {
		return errors.New("idb: request failed")
	}
	name, _ := e.Get("name")
	msg, _ := e.Get("message")
	ns, _ := name.String()
	ms, _ := msg.String()
	return fmt.Errorf("idb: %s: %s", ns, ms)
}

// tx starts a transaction over stores and returns each store.
func (s *Store) tx(mode string, stores ...string) (safejs.Value, []safejs.Value, error) {
	names := make([]any, len(stores))
	for i, n := range stores {
		names[i] = n
	}
	arr, err := safejs.ValueOf(names)
	if err != nil {
		return safejs.Value{}, nil, err
	}
	tx, err := s.db.Call("transaction", arr, mode)
	if err != nil {
		return safejs.Value{}, nil, fmt.Errorf("idb: transaction: %w", err)
	}
	out := make([]safejs.Value, len(stores))
	for i, n := range stores {
		if out[i], err = tx.Call("objectStore", n); err != nil {
			return safejs.Value{}, nil, fmt.Errorf("idb: store %s: %w", n, err)
		}
	}
	return tx, out, nil
}

func key(site ids.SiteID, obj ids.ObjectID) string {
	return fmt.Sprintf("%016x/%016x", uint64(site), uint64(obj))
}

// Meta is what the store keeps of an object besides its body.
type Meta struct {
	peer.Entry
	Used time.Time // last use, for the LRU order
}

func metaToJS(e peer.Entry, used time.Time) (safejs.Value, error) {
	st, err := jsutil.ToJS(e.Statement)
	if err != nil {
		return safejs.Value{}, err
	}
	obj, err := jsGlobal("Object").New()
	if err != nil {
		return safejs.Value{}, err
	}
	for k, v := range map[string]any{
		"url": e.URL, "site": strconv.FormatUint(uint64(e.Site), 16), "size": float64(e.Size),
		"used": float64(used.UnixMilli()),
	} {
		if err := obj.Set(k, v); err != nil {
			return safejs.Value{}, err
		}
	}
	if err := obj.Set("statement", st); err != nil {
		return safejs.Value{}, err
	}
	return obj, nil
}

func metaFromJS(v safejs.Value) (Meta, error) {
	var m Meta
	get := func(k string) safejs.Value { x, _ := v.Get(k); return x }
	u, err := get("url").String()
	if err != nil {
		return m, fmt.Errorf("idb: bad record: %w", err)
	}
	sh, _ := get("site").String()
	site, err := strconv.ParseUint(sh, 16, 64)
	if err != nil {
		return m, fmt.Errorf("idb: bad record for %s: site %q", u, sh)
	}
	m.Site = ids.SiteID(site)
	size, _ := get("size").Float()
	used, _ := get("used").Float()
	if m.Statement, err = jsutil.ToGo(get("statement")); err != nil {
		return m, err
	}
	m.URL, m.Size, m.Used = u, int64(size), time.UnixMilli(int64(used))
	return m, nil
}

// Put implements peer.Store: meta and body in one transaction.
func (s *Store) Put(e peer.Entry, body []byte) error {
	if int64(len(body)) != e.Size {
		return fmt.Errorf("idb: put %s: %d bytes, entry says %d", e.URL, len(body), e.Size)
	}
	meta, err := metaToJS(e, time.Now())
	if err != nil {
		return fmt.Errorf("idb: put %s: %w", e.URL, err)
	}
	b, err := jsutil.ToJS(body)
	if err != nil {
		return fmt.Errorf("idb: put %s: %w", e.URL, err)
	}
	tx, st, err := s.tx("readwrite", stMeta, stBodies)
	if err != nil {
		return err
	}
	k := key(e.Site, ids.ObjectOf(e.URL))
	if _, err := st[0].Call("put", meta, k); err != nil {
		return fmt.Errorf("idb: put %s: %w", e.URL, err)
	}
	if _, err := st[1].Call("put", b, k); err != nil {
		return fmt.Errorf("idb: put %s: %w", e.URL, err)
	}
	if err := done(tx); err != nil {
		return fmt.Errorf("idb: put %s: %w", e.URL, err)
	}
	return nil
}

// Open implements peer.Store. It reads the entry only; the body is read
// at the first Read, so that a peer serving the object sends its start
// frame (the statement) without waiting for the body.
func (s *Store) Open(site ids.SiteID, obj ids.ObjectID) (peer.Entry, io.ReadCloser, error) {
	m, err := s.meta(site, obj)
	if err != nil {
		return peer.Entry{}, nil, err
	}
	return m.Entry, &lazyBody{s: s, site: site, obj: obj, size: m.Size}, nil
}

// meta reads an object's entry.
func (s *Store) meta(site ids.SiteID, obj ids.ObjectID) (Meta, error) {
	_, st, err := s.tx("readonly", stMeta)
	if err != nil {
		return Meta{}, err
	}
	req, err := st[0].Call("get", key(site, obj))
	if err != nil {
		return Meta{}, fmt.Errorf("idb: get: %w", err)
	}
	v, err := await(req)
	if err != nil {
		return Meta{}, fmt.Errorf("idb: get: %w", err)
	}
	if v.IsUndefined() {
		return Meta{}, peer.ErrNotFound
	}
	return metaFromJS(v)
}

// lazyBody reads an object's body from IndexedDB at its first Read.
type lazyBody struct {
	s    *Store
	site ids.SiteID
	obj  ids.ObjectID
	size int64
	r    *bytes.Reader
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if b.r == nil {
		_, body, err := b.s.Get(b.site, b.obj)
		if err != nil {
			return 0, err
		}
		if int64(len(body)) != b.size {
			return 0, fmt.Errorf("idb: object changed while it was read (%d bytes, %d expected)", len(body), b.size)
		}
		b.r = bytes.NewReader(body)
	}
	return b.r.Read(p)
}

func (b *lazyBody) Close() error { return nil }

// Get returns an object's meta and body (peer.ErrNotFound if absent).
func (s *Store) Get(site ids.SiteID, obj ids.ObjectID) (Meta, []byte, error) {
	_, st, err := s.tx("readonly", stMeta, stBodies)
	if err != nil {
		return Meta{}, nil, err
	}
	k := key(site, obj)
	mreq, err := st[0].Call("get", k)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("idb: get: %w", err)
	}
	breq, err := st[1].Call("get", k)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("idb: get: %w", err)
	}
	mv, err := await(mreq)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("idb: get: %w", err)
	}
	bv, err := await(breq)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("idb: get: %w", err)
	}
	if mv.IsUndefined() || bv.IsUndefined() {
		return Meta{}, nil, peer.ErrNotFound
	}
	m, err := metaFromJS(mv)
	if err != nil {
		return Meta{}, nil, err
	}
	body, err := jsutil.ToGo(bv)
	if err != nil {
		return Meta{}, nil, err
	}
	if int64(len(body)) != m.Size {
		return Meta{}, nil, fmt.Errorf("idb: %s: %d bytes stored, %d recorded", m.URL, len(body), m.Size)
	}
	return m, body, nil
}

// Touch records a use of an object (the LRU order of Trim).
func (s *Store) Touch(site ids.SiteID, obj ids.ObjectID, m Meta) error {
	v, err := metaToJS(m.Entry, time.Now())
	if err != nil {
		return err
	}
	tx, st, err := s.tx("readwrite", stMeta)
	if err != nil {
		return err
	}
	if _, err := st[0].Call("put", v, key(site, obj)); err != nil {
		return fmt.Errorf("idb: touch: %w", err)
	}
	return done(tx)
}

// Delete implements peer.Store.
func (s *Store) Delete(site ids.SiteID, obj ids.ObjectID) error {
	tx, st, err := s.tx("readwrite", stMeta, stBodies)
	if err != nil {
		return err
	}
	k := key(site, obj)
	for _, o := range st {
		if _, err := o.Call("delete", k); err != nil {
			return fmt.Errorf("idb: delete: %w", err)
		}
	}
	return done(tx)
}

// Metas returns every object's meta, least recently used first.
func (s *Store) Metas() ([]Meta, error) {
	_, st, err := s.tx("readonly", stMeta)
	if err != nil {
		return nil, err
	}
	req, err := st[0].Call("getAll")
	if err != nil {
		return nil, fmt.Errorf("idb: list: %w", err)
	}
	all, err := await(req)
	if err != nil {
		return nil, fmt.Errorf("idb: list: %w", err)
	}
	n, err := all.Length()
	if err != nil {
		return nil, fmt.Errorf("idb: list: %w", err)
	}
	out := make([]Meta, 0, n)
	for i := range n {
		v, err := all.Index(i)
		if err != nil {
			return nil, err
		}
		m, err := metaFromJS(v)
		if err != nil {
			continue // a record we cannot read is skipped, not fatal
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Used.Before(out[j].Used) })
	return out, nil
}

// List implements peer.Store.
func (s *Store) List() ([]peer.Entry, error) {
	ms, err := s.Metas()
	if err != nil {
		return nil, err
	}
	out := make([]peer.Entry, len(ms))
	for i, m := range ms {
		out[i] = m.Entry
	}
	return out, nil
}

// Trim deletes least recently used objects until the store holds at most
// quota bytes, and returns what it deleted.
func (s *Store) Trim(quota int64) ([]peer.Entry, int64, error) {
	ms, err := s.Metas()
	if err != nil {
		return nil, 0, err
	}
	var total int64
	for _, m := range ms {
		total += m.Size
	}
	var gone []peer.Entry
	for _, m := range ms {
		if total <= quota {
			break
		}
		if err := s.Delete(m.Site, ids.ObjectOf(m.URL)); err != nil {
			return gone, total, err
		}
		total -= m.Size
		gone = append(gone, m.Entry)
	}
	return gone, total, nil
}

// Doc returns a small document (nil, nil when absent).
func (s *Store) Doc(name string) ([]byte, error) {
	_, st, err := s.tx("readonly", stDocs)
	if err != nil {
		return nil, err
	}
	req, err := st[0].Call("get", name)
	if err != nil {
		return nil, fmt.Errorf("idb: doc %s: %w", name, err)
	}
	v, err := await(req)
	if err != nil {
		return nil, fmt.Errorf("idb: doc %s: %w", name, err)
	}
	return jsutil.ToGo(v)
}

// SetDoc saves a small document.
func (s *Store) SetDoc(name string, b []byte) error {
	v, err := jsutil.ToJS(b)
	if err != nil {
		return err
	}
	tx, st, err := s.tx("readwrite", stDocs)
	if err != nil {
		return err
	}
	if _, err := st[0].Call("put", v, name); err != nil {
		return fmt.Errorf("idb: doc %s: %w", name, err)
	}
	return done(tx)
}

// LoadState implements peer.Store.
func (s *Store) LoadState() ([]byte, error) { return s.Doc(docState) }

// SaveState implements peer.Store.
func (s *Store) SaveState(b []byte) error { return s.SetDoc(docState, b) }

// Clear deletes every object and document.
func (s *Store) Clear() error {
	tx, st, err := s.tx("readwrite", stMeta, stBodies, stDocs)
	if err != nil {
		return err
	}
	for _, o := range st {
		if _, err := o.Call("clear"); err != nil {
			return fmt.Errorf("idb: clear: %w", err)
		}
	}
	return done(tx)
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	_, err := s.db.Call("close")
	return err
}

var _ peer.Store = (*Store)(nil)

func jsGlobal(name string) safejs.Value {
	v, _ := safejs.Global().Get(name)
	return v
}

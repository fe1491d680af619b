//go:build !js

package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowercdn/flower/shared/atomicfile"
	"github.com/flowercdn/flower/shared/ids"
)

// DiskStore is a Store in a directory: objects/<site>/<object>.body and
// .meta (JSON of the Entry), and state.json. Writes go to a temporary file
// renamed into place, so a crash leaves either the old or the new file.
type DiskStore struct {
	dir  string
	lock *os.File
}

// OpenDiskStore opens (creating if needed) a store in dir and locks it
// (ErrDirInUse when another store holds it) until Close.
func OpenDiskStore(dir string) (*DiskStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "objects"), 0o700); err != nil {
		return nil, fmt.Errorf("disk store %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("disk store: %w", err)
	}
	d := &DiskStore{dir: dir, lock: lock}
	if err := d.removeTemps(); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the directory. A Peer closes its store when it stops.
func (d *DiskStore) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}

// Dir is the store's directory.
func (d *DiskStore) Dir() string { return d.dir }

func (d *DiskStore) path(site ids.SiteID, obj ids.ObjectID, ext string) string {
	return filepath.Join(d.dir, "objects", fmt.Sprintf("%016x", uint64(site)), fmt.Sprintf("%016x%s", uint64(obj), ext))
}

type diskMeta struct {
	URL       string `json:"url"`
	Statement []byte `json:"statement"`
	Size      int64  `json:"size"`
}

// Put implements Store: the body first, then the meta file that makes the
// object visible.
func (d *DiskStore) Put(e Entry, body []byte) error {
	obj := ids.ObjectOf(e.URL)
	if err := os.MkdirAll(filepath.Dir(d.path(e.Site, obj, "")), 0o700); err != nil {
		return fmt.Errorf("store %s: %w", e.URL, err)
	}
	// Objects are not synced: a body a crash cut short fails Open's size
	// check, and a stored object is verified again before use.
	if err := atomicfile.Write(d.path(e.Site, obj, ".body"), body, 0o600, false); err != nil {
		return fmt.Errorf("store %s: %w", e.URL, err)
	}
	meta, err := json.Marshal(diskMeta{URL: e.URL, Statement: e.Statement, Size: e.Size})
	if err != nil {
		return fmt.Errorf("store %s: %w", e.URL, err)
	}
	if err := atomicfile.Write(d.path(e.Site, obj, ".meta"), meta, 0o600, false); err != nil {
		return fmt.Errorf("store %s: %w", e.URL, err)
	}
	return nil
}

// Open implements Store. An object whose files disagree (a size that does
// not match) counts as absent.
func (d *DiskStore) Open(site ids.SiteID, obj ids.ObjectID) (Entry, io.ReadCloser, error) {
	e, err := d.readMeta(site, obj)
	if err != nil {
		return Entry{}, nil, err
	}
	f, err := os.Open(d.path(site, obj, ".body"))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, nil, ErrNotFound
	}
	if err != nil {
		return Entry{}, nil, fmt.Errorf("open %s: %w", e.URL, err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != e.Size {
		_ = f.Close()
		return Entry{}, nil, fmt.Errorf("open %s: body does not match its meta: %w", e.URL, ErrNotFound)
	}
	return e, f, nil
}

func (d *DiskStore) readMeta(site ids.SiteID, obj ids.ObjectID) (Entry, error) {
	b, err := os.ReadFile(d.path(site, obj, ".meta"))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read meta: %w", err)
	}
	var m diskMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return Entry{}, fmt.Errorf("meta of %016x: %w", uint64(obj), err)
	}
	if ids.ObjectOf(m.URL) != obj || m.Size < 0 {
		return Entry{}, fmt.Errorf("meta of %016x names %q: %w", uint64(obj), m.URL, ErrNotFound)
	}
	return Entry{Site: site, URL: m.URL, Statement: m.Statement, Size: m.Size}, nil
}

// Delete implements Store.
func (d *DiskStore) Delete(site ids.SiteID, obj ids.ObjectID) error {
	for _, ext := range []string{".meta", ".body"} {
		if err := os.Remove(d.path(site, obj, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %016x: %w", uint64(obj), err)
		}
	}
	return nil
}

// List implements Store; unreadable entries are removed.
func (d *DiskStore) List() ([]Entry, error) {
	var out []Entry
	root := filepath.Join(d.dir, "objects")
	sites, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	for _, s := range sites {
		site, err := strconv.ParseUint(s.Name(), 16, 64)
		if err != nil || !s.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, s.Name()))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.Name(), err)
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".meta")
			if !ok {
				continue
			}
			obj, err := strconv.ParseUint(name, 16, 64)
			if err != nil {
				continue
			}
			e, err := d.readMeta(ids.SiteID(site), ids.ObjectID(obj))
			if err != nil {
				if err := d.Delete(ids.SiteID(site), ids.ObjectID(obj)); err != nil {
					return nil, err
				}
				continue
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// LoadState implements Store.
func (d *DiskStore) LoadState() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	return b, nil
}

// SaveState implements Store.
func (d *DiskStore) SaveState(b []byte) error {
	if err := atomicfile.Write(filepath.Join(d.dir, "state.json"), b, 0o600, true); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// removeTemps deletes the temporary files a crash left behind (the store
// is locked: no writer of ours is running).
func (d *DiskStore) removeTemps() error {
	return filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.Contains(e.Name(), ".tmp-") {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("disk store: %w", err)
			}
		}
		return nil
	})
}

//go:build !js

package peer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

func TestDiskStore(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	site := ids.SiteOf("https://a.example")
	e := Entry{Site: site, URL: "https://a.example/x", Statement: []byte{1, 2, 3}, Size: 5}
	if err := d.Put(e, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, r, err := d.Open(site, ids.ObjectOf(e.URL))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	r.Close()
	if got.URL != e.URL || !bytes.Equal(got.Statement, e.Statement) || string(body) != "hello" {
		t.Fatalf("open: %+v %q", got, body)
	}
	// A body that does not match its meta is not served.
	if err := os.WriteFile(d.path(site, ids.ObjectOf(e.URL), ".body"), []byte("hell"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Open(site, ids.ObjectOf(e.URL)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("truncated body: err %v", err)
	}
	// A meta file that does not parse is removed by List.
	if err := d.Put(e, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "objects", filepath.Base(filepath.Dir(d.path(site, 1, ""))), "00000000000000ff.meta")
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := d.List()
	if err != nil || len(list) != 1 || list[0].URL != e.URL {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bad meta kept: %v", err)
	}
	if err := d.Delete(site, ids.ObjectOf(e.URL)); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(site, ids.ObjectOf(e.URL)); err != nil {
		t.Fatalf("deleting an absent object: %v", err)
	}
	if _, _, err := d.Open(site, ids.ObjectOf(e.URL)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted object: err %v", err)
	}
	if b, err := d.LoadState(); b != nil || err != nil {
		t.Fatalf("fresh state: %q %v", b, err)
	}
	if err := d.SaveState([]byte(`{"format":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := d.LoadState(); string(b) != `{"format":1}` || err != nil {
		t.Fatalf("state: %q %v", b, err)
	}
}

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "identity.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", st, err)
	}
	k2, err := LoadIdentity(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: equal %v, err %v", k1.Equal(k2), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "identity.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil {
		t.Fatal("junk identity accepted")
	}
}

func TestDiskStoreRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	stale := filepath.Join(dir, "objects", ".tmp-123")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a crash's temporary file survived the reopen: %v", err)
	}
}

func TestDiskStoreLock(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDiskStore(dir); !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second store on one directory: %v, want ErrDirInUse", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDiskStore(dir)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	d2.Close()
}

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAndCreate(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := Create(name, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(name, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "one" {
		t.Fatalf("Create replaced the file: %q", b)
	}
	if err := Write(name, []byte("three"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(name)
	if b, _ := os.ReadFile(name); string(b) != "three" || err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("after Write: %q, %v, %v", b, st.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := Write(filepath.Join(dir, "no", "f"), nil, 0o600, false); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}

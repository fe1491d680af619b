// Package atomicfile writes files so that a reader, or a restart after a
// crash, sees the old content or the new one, never a part: the bytes go to
// a temporary file in the same directory, which then takes the name.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces name with data, with mode perm exactly (the umask may
// clear bits, never add any: the mode is set explicitly). With sync the
// data reaches the disk before the rename.
func Write(name string, data []byte, perm fs.FileMode, sync bool) error {
	tmp, err := temp(name, data, perm, sync)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Create writes data to name only if name does not exist (the error then
// wraps fs.ErrExist), synced, with mode perm: a racing writer keeps its own
// file.
func Create(name string, data []byte, perm fs.FileMode) error {
	tmp, err := temp(name, data, perm, true)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, name); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// temp writes data to a new temporary file beside name and returns its path.
func temp(name string, data []byte, perm fs.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return f.Name(), nil
}

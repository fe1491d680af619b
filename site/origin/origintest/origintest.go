// Package origintest builds and serves the signed demo site for tests:
//
//	dir := t.TempDir()
//	srv := origintest.Serve(t, dir)                    // the origin on 127.0.0.1:<free port>
//	key := origintest.BuildSite(t, dir, srv.URL(), boot) // scripts/build-site.sh into dir
//	... srv.Requests() is the origin's access log ...
//
// The origin serves dir from disk, so it may start before the site is built
// (the site's URLs need its port).
package origintest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowercdn/flower/shared/security"
	"github.com/flowercdn/flower/site/origin"
)

// RepoRoot returns the directory of the flowercdn/flower module, found by
// walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/flowercdn/flower\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repo root: no go.mod of github.com/flowercdn/flower above the working directory")
		}
		dir = parent
	}
}

// BuildSite builds the signed demo site into dir (empty, or an earlier
// build) for the origin base and the bootstrap service, with a new key, and
// returns the site's public key. It runs scripts/build-site.sh, whose
// pictures, video and compressed flower.wasm are cached in bin/cache of the
// repository, so only the first build of a machine is slow.
func BuildSite(t testing.TB, dir, base, bootstrap string) security.PublicKey {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "site.key")
	cmd := exec.Command(filepath.Join(root, "scripts", "build-site.sh"), dir, base, bootstrap, keyFile)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("build-site.sh: %v\n%s", err, out.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(security.WellKnownPath, "/"))))
	if err != nil {
		t.Fatalf("built site: %v", err)
	}
	wk, err := security.ParseWellKnown(data)
	if err != nil {
		t.Fatalf("built site: %v", err)
	}
	return wk.PublicKey
}

// Serve starts the demo origin for dir on a free loopback port until the
// test ends; its log goes to the test's output.
func Serve(t testing.TB, dir string) *origin.Server {
	t.Helper()
	s, err := origin.New(origin.Config{
		Dir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("origin: %v", err)
		}
	})
	return s
}

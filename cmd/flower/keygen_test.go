package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowercdn/flower/shared/security"
)

// runCmd runs the flower CLI in-process.
func runCmd(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// keygen runs `flower keygen --out file` and returns the printed public key.
func keygen(t *testing.T, file string) security.PublicKey {
	t.Helper()
	out, _, err := runCmd("keygen", "--out", file)
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	pub, err := security.ParsePublicKey(strings.TrimSuffix(out, "\n"))
	if err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	return pub
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "site.key")
	pub := keygen(t, file)

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key, err := security.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if key.Public() != pub {
		t.Fatalf("printed %s, file holds %s", pub, key.Public())
	}

	// --pub prints the same key.
	out, _, err := runCmd("keygen", "--pub", file)
	if err != nil || out != pub.String()+"\n" {
		t.Fatalf("keygen --pub: %q, %v", out, err)
	}

	// No overwrite without --force; the old key stays.
	_, _, err = runCmd("keygen", "--out", file)
	if err == nil || !strings.Contains(err.Error(), "exists") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second keygen: %v", err)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, data) {
		t.Fatal("refused keygen changed the key file")
	}

	// --force replaces it, with mode 0600 even over a looser file.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCmd("keygen", "--out", file, "--force")
	if err != nil {
		t.Fatal(err)
	}
	newPub, err := security.ParsePublicKey(strings.TrimSpace(out))
	if err != nil || newPub == pub {
		t.Fatalf("--force printed %q (%v), old key %s", out, err, pub)
	}
	fi, _ = os.Stat(file)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("forced key file mode %v", fi.Mode().Perm())
	}
	if out, _, _ := runCmd("keygen", "--pub", file); out != newPub.String()+"\n" {
		t.Fatalf("--pub after --force: %q", out)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d files in the key directory (temporary file left?)", len(ents))
	}
}

func TestKeygenErrors(t *testing.T) {
	dir := t.TempDir()
	notKey := filepath.Join(dir, "not.key")
	if err := os.WriteFile(notKey, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"keygen"}, "--out FILE or --pub FILE is required"},
		{[]string{"keygen", "--out", "a", "--pub", "b"}, "exclude each other"},
		{[]string{"keygen", "--pub", notKey, "--force"}, "--force goes with --out"},
		{[]string{"keygen", "--out", filepath.Join(dir, "k"), "extra"}, `unexpected argument "extra"`},
		{[]string{"keygen", "--pub", notKey}, "invalid key"},
		{[]string{"keygen", "--pub", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"keygen", "--out", filepath.Join(dir, "no", "such", "dir", "k")}, "no such file"},
	}
	for _, c := range cases {
		_, _, err := runCmd(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if _, stderr, err := runCmd("keygen", "--bogus"); err == nil || !strings.Contains(stderr, "flag provided but not defined") {
		t.Errorf("unknown flag: %v, stderr %q", err, stderr)
	}
	if _, _, err := runCmd("keygen", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/flowercdn/flower/shared/atomicfile"
	"github.com/flowercdn/flower/shared/security"
)

const keygenUsage = `usage: flower keygen --out FILE [--force]
       flower keygen --pub FILE

Makes a site's Ed25519 key pair: writes the private key to FILE (PEM, PKCS #8,
mode 0600; an existing file is kept unless --force) and prints the public key
(ed25519:...) on stdout. With --pub, prints the public key of an existing
private key file. docs/signing.md shows the key in use.

flags:
`

// maxKeyFile bounds the private key file read: a PEM Ed25519 key is 119 bytes.
const maxKeyFile = 64 << 10

// runKeygen is `flower keygen`.
func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, keygenUsage)
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "write the new private key to this `file` (mode 0600)")
	force := fs.Bool("force", false, "replace an existing --out file")
	pub := fs.String("pub", "", "print the public key of this private key `file` instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("keygen: unexpected argument %q", fs.Arg(0))
	case *out != "" && *pub != "":
		return errors.New("keygen: --out and --pub exclude each other")
	case *out == "" && *pub == "":
		fs.Usage()
		return errors.New("keygen: --out FILE or --pub FILE is required")
	case *pub != "" && *force:
		return errors.New("keygen: --force goes with --out")
	}
	if *pub != "" {
		key, err := readSiteKey(*pub)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		fmt.Fprintln(stdout, key.Public())
		return nil
	}
	key, err := security.GenerateSiteKey(nil)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pemData, err := security.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeKeyFile(*out, pemData, *force); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintln(stdout, key.Public())
	return nil
}

// writeKeyFile writes a private key with mode 0600, whole or not at all:
// only if the file does not exist, or, with force, replacing it.
func writeKeyFile(name string, data []byte, force bool) error {
	if force {
		return atomicfile.Write(name, data, 0o600, true)
	}
	err := atomicfile.Create(name, data, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; keep it, or replace it with --force (the old key then no longer signs for the site)", name)
	}
	return err
}

// readSiteKey reads and parses a private key file.
func readSiteKey(name string) (security.SiteKey, error) {
	f, err := os.Open(name)
	if err != nil {
		return security.SiteKey{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return security.SiteKey{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxKeyFile {
		return security.SiteKey{}, fmt.Errorf("%s: over %d bytes, not a key file", name, maxKeyFile)
	}
	key, err := security.ParsePrivateKey(data)
	if err != nil {
		return security.SiteKey{}, fmt.Errorf("%s: %w", name, err)
	}
	return key, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flowercdn/flower/shared/signer"
)

const signUsage = `usage: flower sign --key FILE --dir DIR --base URL [--share PATTERN]... [--ttl DUR] [--json]

Signs every file of the static site in DIR, served at the origin URL, and
writes DIR/.well-known/flower-cdn.json (the site, its public key and the share
patterns) and DIR/.well-known/flower-cdn-manifest.json (one signed statement
per object). Serve DIR as it is with any static web server. Dot files are left
out. docs/signing.md describes the formats.

flags:
`

// patterns is a repeatable string flag.
type patterns []string

func (p *patterns) String() string { return strings.Join(*p, ",") }

func (p *patterns) Set(v string) error {
	*p = append(*p, v)
	return nil
}

// runSign is `flower sign`.
func runSign(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, signUsage)
		fs.PrintDefaults()
	}
	keyFile := fs.String("key", "", "private key `file` written by flower keygen")
	dir := fs.String("dir", "", "the site's `directory`")
	base := fs.String("base", "", "the site's origin `URL`, such as https://example.org")
	var share patterns
	fs.Var(&share, "share", "URL path `pattern` peers may share, * matching any run of bytes; repeatable (default /*)")
	ttl := fs.Duration("ttl", 0, "statements expire this long after signing (0: never; else at least 1s)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the summary line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, val string }{{"--key", *keyFile}, {"--dir", *dir}, {"--base", *base}} {
		if f.val == "" {
			missing = append(missing, f.name)
		}
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("sign: unexpected argument %q", fs.Arg(0))
	case len(missing) > 0:
		fs.Usage()
		return fmt.Errorf("sign: %s required", strings.Join(missing, ", "))
	case *ttl < 0:
		return fmt.Errorf("sign: --ttl %v is negative", *ttl)
	}
	key, err := readSiteKey(*keyFile)
	if err != nil {
		return fmt.Errorf("sign: --key: %w", err)
	}
	if fi, err := os.Stat(*keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "flower sign: warning: %s is readable by others (mode %v); chmod 600 it\n", *keyFile, fi.Mode().Perm())
	}
	res, err := signer.SignDir(key, *dir, *base, signer.Options{Share: share, TTL: *ttl})
	if err != nil {
		if errors.Is(err, signer.ErrBadBase) {
			return fmt.Errorf("sign: --base: %w", err)
		}
		return fmt.Errorf("sign: %w", err)
	}
	if *asJSON {
		if res.Skipped == nil {
			res.Skipped = []signer.Skipped{}
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "signed %d objects (%d files, %d bytes) for %s with %s; %d skipped; wrote %s and %s\n",
		res.Objects, res.Files, res.Bytes, res.Site, res.PublicKey, len(res.Skipped), res.WellKnownFile, res.ManifestFile)
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "flower sign: skipped %s: %s\n", s.Path, s.Reason)
	}
	return nil
}

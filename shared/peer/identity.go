//go:build !js

package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flowercdn/flower/shared/atomicfile"
)

const identityPEM = "FLOWER PEER KEY"

// LoadIdentity reads the peer identity kept in dir (identity.pem, mode
// 0600), creating it on first use: a restarted peer keeps its id, which its
// petal's views and directory know it by.
func LoadIdentity(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "identity.pem")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		// Whole or not at all, and a peer that raced us keeps its own.
		err = atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: identityPEM, Bytes: key.Seed()}), 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadIdentity(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != identityPEM || len(blk.Bytes) != ed25519.SeedSize || len(rest) != 0 {
		return nil, fmt.Errorf("identity %s: not a %s PEM file", path, identityPEM)
	}
	return ed25519.NewKeyFromSeed(blk.Bytes), nil
}

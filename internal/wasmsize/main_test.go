package main

import "testing"

func TestPkgOf(t *testing.T) {
	for sym, want := range map[string]string{
		"runtime.mallocgc":                                       "runtime",
		"fmt.__pp_.printValue":                                   "fmt",
		"crypto_tls.__Conn_.Read":                                "crypto_tls",
		"github.com_pion_ice_v4.__Agent_.Close":                  "github.com_pion_ice_v4",
		"github.com_flowercdn_flower_shared_wire.appendMsg":      "github.com_flowercdn_flower_shared_wire",
		"vendor_golang.org_x_net_idna.ToASCII":                   "vendor_golang.org_x_net_idna",
		"type_.eq.github.com_flowercdn_flower_shared_ids.Member": "github.com_flowercdn_flower_shared_ids",
		"slices.pdqsortCmpFunc_go.shape.int_":                    "slices",
		"memchr":                                                 "runtime",
	} {
		if got := pkgOf(sym); got != want {
			t.Errorf("pkgOf(%q) = %q, want %q", sym, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	paths := map[string]pkgInfo{
		"unique":                             {path: "unique", module: "std"},
		"github.com_pion_ice_v4":             {path: "github.com/pion/ice/v4", module: "github.com/pion/ice/v4"},
		"github.com_pion_ice_v4_internal_ab": {path: "github.com/pion/ice/v4/internal/ab", module: "github.com/pion/ice/v4"},
	}
	for sym, want := range map[string]string{
		"unique.entry_go.shape.string_.x":                 "unique",
		"github.com_pion_ice_v4.__Agent_.Close":           "github.com/pion/ice/v4",
		"github.com_pion_ice_v4_internal_ab.F":            "github.com/pion/ice/v4/internal/ab",
		"type_.eq._2_github.com_pion_ice_v4.Candidate":    "github.com/pion/ice/v4",
		"github.com_pion_ice_v4_internal_ab.T.String.fm":  "github.com/pion/ice/v4/internal/ab",
		"github.com_flowercdn_flower_shared_core.__Node_": "github.com_flowercdn_flower_shared_core",
	} {
		if got := resolve(sym, paths); got != want {
			t.Errorf("resolve(%q) = %q, want %q", sym, got, want)
		}
	}
	if got := modOf("github.com/pion/ice/v4/internal/ab", paths); got != "github.com/pion/ice/v4" {
		t.Errorf("modOf = %q", got)
	}
	if got := mangle("github.com/pion/ice/v4"); got != "github.com_pion_ice_v4" {
		t.Errorf("mangle = %q", got)
	}
}

func TestParseRejects(t *testing.T) {
	if _, err := parse([]byte("not wasm")); err == nil {
		t.Error("parse accepted a non-wasm file")
	}
	// Magic, version 1, then a code section claiming more bytes than exist.
	if _, err := parse([]byte("\x00asm\x01\x00\x00\x00\x0a\x05\x01")); err == nil {
		t.Error("parse accepted a truncated section")
	}
}

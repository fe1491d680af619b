package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPeerGetBenchErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"peer", "--site", "https://a.example", "--cache-dir", "x"}, "--bootstrap is required"},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--cache-dir", "x"}, "--site is required"},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--site", "https://a.example"}, "--cache-dir is required"},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--site", "ftp://a.example", "--cache-dir", "x"}, "scheme must be http or https"},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--site", "https://a.example", "--cache-dir", t.TempDir(), "--quota", "lots"}, "--quota"},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--site", "https://a.example", "--cache-dir", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"peer", "--bootstrap", "http://127.0.0.1:1", "--site", "https://a.example", "--cache-dir", t.TempDir(), "--report-period", "0s"}, "--report-period"},
		{[]string{"get"}, "want exactly one URL"},
		{[]string{"get", "https://a.example/x", "https://a.example/y"}, "want exactly one URL"},
		{[]string{"get", "a.example/x", "--bootstrap", "http://127.0.0.1:1"}, "not an absolute http(s) URL"},
		{[]string{"get", "https://a.example/x"}, "--bootstrap is required"},
		{[]string{"get", "https://user@a.example/x", "--bootstrap", "http://127.0.0.1:1"}, "has user info"},
		{[]string{"get", "https://a.example/x", "--bootstrap", "http://127.0.0.1:1", "--log-level", "loud"}, "--log-level"},
		{[]string{"bench-transfer", "--size", "0"}, "want 1 B to 1 GiB"},
		{[]string{"bench-transfer", "--size", "2GiB"}, "want 1 B to 1 GiB"},
		{[]string{"bench-transfer", "--runs", "0"}, "--runs 0"},
		{[]string{"bench-transfer", "--size", "16 MiBs"}, "--size"},
	}
	for _, c := range cases {
		_, _, err := runCmd(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "16MiB": 16 << 20, "1 KiB": 1024, "2GB": 2e9, "3MB": 3e6, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1TiB", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// TestBenchTransfer runs the benchmark command at a small size: it must
// move every object peer to peer and report every figure (no timing is
// asserted: figures are read from `make bench-transfer`).
func TestBenchTransfer(t *testing.T) {
	out, stderr, err := runCmd("bench-transfer", "--size", "256KiB", "--runs", "3", "--new-conns", "1", "--json")
	if err != nil {
		t.Fatalf("bench-transfer: %v\n%s", err, stderr)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if res.Size != 256<<10 || len(res.RunsMBs) != 3 || res.MedianMBs <= 0 || res.MinMBs > res.MedianMBs || res.MaxMBs < res.MedianMBs ||
		res.TTFBOpenMs <= 0 || res.TTFBNewConnMs <= 0 || res.OriginTTFBMs <= 0 {
		t.Fatalf("result %+v", res)
	}
}

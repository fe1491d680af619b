package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/site/origin"
)

func TestOriginFlags(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"origin"}, "--dir is required"},
		{[]string{"origin", "--dir", dir, "extra"}, "unexpected argument"},
		{[]string{"origin", "--dir", dir, "--listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"origin", "--dir", dir, "--listen", ":8080"}, "not a loopback address"},
		{[]string{"origin", "--dir", dir, "--log-level", "loud"}, "--log-level"},
		{[]string{"demo-assets"}, "--out is required"},
		{[]string{"demo-assets", "--out", dir, "x"}, "unexpected argument"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		err := run(context.Background(), c.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	err := run(context.Background(), []string{"origin", "--dir", dir, "--listen", "0.0.0.0:0"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, origin.ErrNotLoopback) {
		t.Errorf("non-loopback: %v, want ErrNotLoopback", err)
	}
}

func TestOriginRuns(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"origin", "--dir", dir, "--listen", "127.0.0.1:0"}, &out, &errOut) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("origin: %v; stderr %s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("origin did not stop")
	}
	if !strings.Contains(out.String(), "origin serving "+dir+" on http://127.0.0.1:") {
		t.Errorf("stdout %q", out.String())
	}
}

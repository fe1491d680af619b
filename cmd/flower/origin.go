package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/flowercdn/flower/site/origin"
)

const originUsage = `usage: flower origin --dir DIR [--listen ADDR] [--log FILE] [--allow-public]

Serves the demo site in DIR (scripts/build-site.sh builds it) on a loopback
address until interrupted: content types as flower sign signs them, Range
requests, precompressed NAME.br / NAME.gz variants chosen by Accept-Encoding,
Cache-Control by kind of file, one log line per request, and the private
endpoints /me/login, /me/badge.jpg (with the session cookie) and
/live/now.json. docs/site-operator.md describes it.

flags:
`

// runOrigin is `flower origin`: the demo origin server.
func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, originUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "the site `directory` to serve")
	listen := fs.String("listen", origin.DefaultListen, "`host:port` to listen on (loopback only unless --allow-public; port 0 picks one)")
	allowPublic := fs.Bool("allow-public", false, "allow a --listen address other than loopback")
	logFile := fs.String("log", "", "append every request to this `file` as JSON lines")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("origin: unexpected argument %q", fs.Arg(0))
	case *dir == "":
		fs.Usage()
		return errors.New("origin: --dir is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("origin: --log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := origin.CheckListen(*listen, *allowPublic); err != nil {
		return fmt.Errorf("origin: --listen: %w", err)
	}
	srv, err := origin.New(origin.Config{Dir: *dir, Listen: *listen, AllowPublic: *allowPublic, LogFile: *logFile, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	fmt.Fprintf(stdout, "origin serving %s on %s (Ctrl-C stops)\n", *dir, srv.URL())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srv.Done():
	}
	if err := srv.Close(); err != nil {
		return err
	}
	if serveErr != nil {
		return fmt.Errorf("origin: %w", serveErr)
	}
	return nil
}

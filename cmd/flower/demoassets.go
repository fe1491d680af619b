package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/flowercdn/flower/site/demogen"
)

const demoAssetsUsage = `usage: flower demo-assets --out DIR [--seed N] [--no-video] [--ffmpeg PATH] [--json]

Writes the demo site's media under DIR: flower pictures (img/*.jpg, 50 KB to
2 MB each), the anonymous visitor badge (me/badge.jpg) and a 10 s WebM video
(video/garden-tour.webm, made with ffmpeg). The same seed gives the same
bytes.

flags:
`

// runDemoAssets is `flower demo-assets`.
func runDemoAssets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flower demo-assets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, demoAssetsUsage)
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "output `directory`")
	seed := fs.Uint64("seed", demogen.DefaultSeed, "random `seed`")
	noVideo := fs.Bool("no-video", false, "skip the video (no ffmpeg needed)")
	ffmpeg := fs.String("ffmpeg", "", "ffmpeg `binary` (default: from PATH)")
	asJSON := fs.Bool("json", false, "print the files as one JSON array")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("demo-assets: unexpected argument %q", fs.Arg(0))
	case *out == "":
		fs.Usage()
		return errors.New("demo-assets: --out is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	files, err := demogen.Generate(ctx, *out, demogen.Options{Seed: *seed, FFmpeg: *ffmpeg, NoVideo: *noVideo, Logger: log})
	if err != nil {
		return fmt.Errorf("demo-assets: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(files)
	}
	var total int64
	for _, f := range files {
		fmt.Fprintf(stdout, "%9d  %s\n", f.Size, f.Path)
		total += f.Size
	}
	fmt.Fprintf(stdout, "%9d  total, %d files in %s\n", total, len(files), *out)
	return nil
}

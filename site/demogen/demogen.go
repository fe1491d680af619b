// Package demogen generates the demo site's media: a dozen flower pictures
// (real baseline JPEGs, 50 KB to 2 MB, about 9 MB in all), the anonymous
// visitor badge, and a short WebM video (made with ffmpeg). Everything is
// deterministic: the same seed gives the same bytes, so a signed build of the
// demo site is reproducible. `flower demo-assets` runs it;
// scripts/build-site.sh copies the result into the site next to site/demo/.
package demogen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/flowercdn/flower/shared/atomicfile"
)

// DefaultSeed is the seed the demo site is built with.
const DefaultSeed = 7

// Image is one generated picture.
type Image struct {
	Path    string  // relative to the site root, slash-separated
	W, H    int     // pixels
	Quality int     // JPEG quality
	Grain   float64 // film grain amplitude; with the size, it sets the file size
}

// Images are the demo site's pictures, smallest first. The HTML pages of
// site/demo refer to them with these sizes (a test checks it).
var Images = []Image{
	{"img/daisy-meadow.jpg", 960, 640, 80, 6},
	{"img/rose-arch.jpg", 1200, 750, 80, 6},
	{"img/tulip-rows.jpg", 1000, 750, 80, 14},
	{"img/lavender-field.jpg", 1050, 700, 90, 14},
	{"img/peony-bloom.jpg", 1400, 850, 90, 14},
	{"img/water-lily.jpg", 1600, 800, 90, 24},
	{"img/sunflower-wall.jpg", 1600, 1020, 90, 24},
	{"img/orchid-house.jpg", 1720, 1150, 90, 24},
	{"img/cherry-blossom.jpg", 1870, 1250, 90, 24},
	{"img/wild-poppies.jpg", 2130, 1420, 90, 24},
	{"img/botanic-panorama.jpg", 3000, 1240, 90, 24},
	{"img/summer-border.jpg", 2580, 1720, 90, 24},
}

// BadgePath is the anonymous visitor badge, a static and shareable file; the
// demo origin answers the same URL with a personal, private badge to a
// visitor with a session cookie.
const BadgePath = "me/badge.jpg"

// BadgeSize is the badge's width and height in pixels.
const BadgeSize = 160

// VideoPath is the demo video, WebM (VP8), 640x360, 10 s, about 1.9 MB.
const VideoPath = "video/garden-tour.webm"

// Video size, for the HTML.
const VideoW, VideoH = 640, 360

// Options configure Generate.
type Options struct {
	Seed uint64
	// FFmpeg is the ffmpeg binary; empty looks it up in PATH.
	FFmpeg string
	// NoVideo skips the video (no ffmpeg needed).
	NoVideo bool
	Logger  *slog.Logger
}

// File is one generated file.
type File struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// Generate writes every asset under dir, replacing existing files, and
// returns them in the order of Images, then the badge, then the video.
func Generate(ctx context.Context, dir string, opt Options) ([]File, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	var files []File
	for i, im := range Images {
		if err := ctx.Err(); err != nil {
			return files, err
		}
		f, err := writeJPEG(dir, im.Path, im.Quality, func() image.Image {
			return Flowers(im.W, im.H, opt.Seed*1000+uint64(i), im.Grain)
		})
		if err != nil {
			return files, err
		}
		log.Debug("image", "path", f.Path, "bytes", f.Size)
		files = append(files, f)
	}
	f, err := writeJPEG(dir, BadgePath, 85, func() image.Image { return Badge(BadgeSize, opt.Seed) })
	if err != nil {
		return files, err
	}
	files = append(files, f)
	if opt.NoVideo {
		return files, nil
	}
	f, err = Video(ctx, dir, opt)
	if err != nil {
		return files, err
	}
	return append(files, f), nil
}

// writeJPEG renders one picture and writes it under dir, whole or not at all.
func writeJPEG(dir, rel string, quality int, render func() image.Image) (File, error) {
	var b bytes.Buffer
	if err := EncodeJPEG(&b, render(), quality); err != nil {
		return File{}, fmt.Errorf("%s: %w", rel, err)
	}
	name := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return File{}, fmt.Errorf("%s: %w", rel, err)
	}
	if err := atomicfile.Write(name, b.Bytes(), 0o644, true); err != nil {
		return File{}, fmt.Errorf("%s: %w", rel, err)
	}
	return File{Path: rel, Size: int64(b.Len())}, nil
}

// ErrNoFFmpeg is returned by Video when no ffmpeg binary is found.
var ErrNoFFmpeg = errors.New("ffmpeg not found (scripts/build-site.sh installs it; or pass --no-video)")

// Video writes VideoPath under dir with ffmpeg: moving colour gradients
// under a faint Game of Life pattern, VP8 at about 1.5 Mbit/s, single
// threaded and bit-exact so the same ffmpeg build gives the same bytes.
func Video(ctx context.Context, dir string, opt Options) (File, error) {
	bin := opt.FFmpeg
	if bin == "" {
		p, err := exec.LookPath("ffmpeg")
		if err != nil {
			return File{}, ErrNoFFmpeg
		}
		bin = p
	}
	out := filepath.Join(dir, filepath.FromSlash(VideoPath))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return File{}, fmt.Errorf("video: %w", err)
	}
	seed := opt.Seed % (1 << 31)
	graph := fmt.Sprintf("gradients=s=%dx%d:r=24:d=10:speed=0.03:c0=0xff6fa5:c1=0x2e8b57:c2=0xffd700:c3=0x6a5acd:nb_colors=4:seed=%d[g];"+
		"life=s=%dx%d:r=24:seed=%d:ratio=0.2:mold=8:life_color=0xfff0f5:death_color=0x000000:mold_color=0x204020,"+
		"format=rgba,colorchannelmixer=aa=0.35[l];[g][l]overlay=shortest=1,format=yuv420p",
		VideoW, VideoH, seed, VideoW, VideoH, seed)
	tmp := out + ".tmp.webm"
	cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", graph, "-t", "10",
		"-c:v", "libvpx", "-b:v", "1500k", "-maxrate", "1600k", "-bufsize", "3200k",
		"-threads", "1", "-deadline", "good", "-cpu-used", "4",
		"-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1", tmp)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return File{}, fmt.Errorf("video: %s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp, out); err != nil {
		return File{}, fmt.Errorf("video: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return File{}, fmt.Errorf("video: %w", err)
	}
	return File{Path: VideoPath, Size: fi.Size()}, nil
}

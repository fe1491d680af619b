package demogen

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestFlowersDeterministic(t *testing.T) {
	a, b, c := Flowers(96, 64, 3, 10), Flowers(96, 64, 3, 10), Flowers(96, 64, 4, 10)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("same seed, different pictures")
	}
	if bytes.Equal(a.Pix, c.Pix) {
		t.Error("different seeds, same picture")
	}
	if x, y := Badge(32, 1), Badge(32, 1); !bytes.Equal(x.Pix, y.Pix) {
		t.Error("same seed, different badges")
	}
}

// TestSmallestImages encodes the two smallest pictures as Generate does: real
// JPEGs of the table's size, at least 50 KB, the same bytes every time.
func TestSmallestImages(t *testing.T) {
	dir := t.TempDir()
	for i, im := range Images[:2] {
		var first []byte
		for run := 0; run < 2; run++ {
			f, err := writeJPEG(dir, im.Path, im.Quality, func() image.Image { return Flowers(im.W, im.H, DefaultSeed*1000+uint64(i), im.Grain) })
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, im.Path))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(data)) != f.Size || f.Size < 50_000 || f.Size > 2_000_000 {
				t.Errorf("%s: %d bytes (file %d), want 50 KB to 2 MB", im.Path, f.Size, len(data))
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
			if err != nil || cfg.Width != im.W || cfg.Height != im.H {
				t.Errorf("%s: %dx%d, %v; want %dx%d", im.Path, cfg.Width, cfg.Height, err, im.W, im.H)
			}
			if run == 0 {
				first = data
			} else if !bytes.Equal(first, data) {
				t.Errorf("%s: not deterministic", im.Path)
			}
		}
	}
}

func TestImagesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, im := range Images {
		if seen[im.Path] || !strings.HasPrefix(im.Path, "img/") || !strings.HasSuffix(im.Path, ".jpg") {
			t.Errorf("bad or repeated path %q", im.Path)
		}
		seen[im.Path] = true
		if im.W < 64 || im.H < 64 || im.Quality < 50 || im.Quality > 95 {
			t.Errorf("%s: %dx%d q%d", im.Path, im.W, im.H, im.Quality)
		}
	}
	if len(Images) < 10 {
		t.Errorf("%d images, want about a dozen", len(Images))
	}
}

var (
	imgRE    = regexp.MustCompile(`<img [^>]*>`)
	videoRE  = regexp.MustCompile(`<video [^>]*>`)
	attrRE   = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
	hrefRE   = regexp.MustCompile(`(?:href|src|data-flower-src)="(/[^"]*)"`)
	embedTag = `<script src="/flower/flower.js" data-bootstrap="BOOTSTRAP_URL" data-site-key="SITE_KEY" async></script>`
)

func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = a[2]
	}
	return m
}

// TestPages checks site/demo against the generator: every picture is on a
// page once, with its size and loading="lazy"; the video loads nothing before
// play; every page ends with the embed script tag; the front page has no
// heavy media; every local link resolves.
func TestPages(t *testing.T) {
	demo := filepath.Join("..", "demo")
	pages, err := filepath.Glob(filepath.Join(demo, "*.html"))
	if err != nil || len(pages) < 5 {
		t.Fatalf("pages %v: %v", pages, err)
	}
	sizes := map[string][2]int{"/" + BadgePath: {BadgeSize, BadgeSize}}
	for _, im := range Images {
		sizes["/"+im.Path] = [2]int{im.W, im.H}
	}
	generated := map[string]bool{"/" + VideoPath: true, "/flower/flower.js": true}
	for p := range sizes {
		generated[p] = true
	}
	dynamic := map[string]bool{"/me/login": true, "/me/logout": true}
	used := map[string]int{}
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(data)
		name := filepath.Base(page)
		if strings.Count(doc, embedTag) != 1 || !strings.HasSuffix(strings.TrimSpace(doc), embedTag+"\n</body>\n</html>") {
			t.Errorf("%s: the embed script tag is not once, just before </body>", name)
		}
		for _, tag := range imgRE.FindAllString(doc, -1) {
			a := attrs(tag)
			src := a["src"]
			if d, ok := a["data-flower-src"]; ok {
				// Loaded by flower.js once the page-side peer runs.
				src = d
			}
			if src == "/img/logo.svg" {
				continue
			}
			want, ok := sizes[src]
			if !ok {
				t.Errorf("%s: %s is not generated", name, src)
				continue
			}
			used[src]++
			if name == "index.html" {
				t.Errorf("index.html shows %s; the front page stays light", src)
			}
			if a["loading"] != "lazy" || a["width"] != strconv.Itoa(want[0]) || a["height"] != strconv.Itoa(want[1]) {
				t.Errorf("%s: %s", name, tag)
			}
		}
		for _, tag := range videoRE.FindAllString(doc, -1) {
			if a := attrs(tag); a["preload"] != "none" || a["data-flower-src"] != "/"+VideoPath || !strings.Contains(tag, " controls") {
				t.Errorf("%s: %s", name, tag)
			}
			if name == "index.html" {
				t.Error("index.html has a video")
			}
		}
		for _, m := range hrefRE.FindAllStringSubmatch(doc, -1) {
			p := m[1]
			if generated[p] || dynamic[p] {
				continue
			}
			if strings.HasPrefix(p, "/flower/") {
				// The browser peer's own pages (the visitor dashboard),
				// copied from site/flower by scripts/build-site.sh.
				if _, err := os.Stat(filepath.Join(demo, "..", filepath.FromSlash(p))); err != nil {
					t.Errorf("%s: link %s resolves to nothing in site/flower", name, p)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(demo, filepath.FromSlash(strings.TrimPrefix(p, "/")))); err != nil {
				t.Errorf("%s: link %s resolves to nothing", name, p)
			}
		}
	}
	for _, im := range Images {
		if used["/"+im.Path] != 1 {
			t.Errorf("%s is on %d pages, want 1", im.Path, used["/"+im.Path])
		}
	}
}

// TestVideo makes the video with ffmpeg (make browser-deps installs it).
func TestVideo(t *testing.T) {
	if testing.Short() {
		t.Skip("ffmpeg takes a few seconds")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("no ffmpeg: scripts/install-browser.sh (make browser-deps) installs it")
	}
	dir := t.TempDir()
	f, err := Video(context.Background(), dir, Options{Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, VideoPath))
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != int64(len(data)) || f.Size < 1_000_000 || f.Size > 3_000_000 {
		t.Errorf("video: %d bytes (file %d), want about 2 MB", f.Size, len(data))
	}
	if !bytes.HasPrefix(data, []byte{0x1a, 0x45, 0xdf, 0xa3}) || !bytes.Contains(data[:64], []byte("webm")) {
		t.Errorf("video: not WebM: % x", data[:16])
	}
	if _, err := Video(context.Background(), dir, Options{FFmpeg: filepath.Join(dir, "no-ffmpeg")}); err == nil {
		t.Error("a missing ffmpeg binary succeeded")
	}
}

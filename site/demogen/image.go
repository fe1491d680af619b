package demogen

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
)

// palette holds petal colours, flower hearts and backgrounds.
var (
	petals = []color.RGBA{
		{0xe9, 0x4f, 0x8a, 255}, {0xf2, 0xa1, 0xc0, 255}, {0xff, 0xd3, 0x3d, 255}, {0xf7, 0xf3, 0xe8, 255},
		{0x8e, 0x5c, 0xd9, 255}, {0xff, 0x7f, 0x50, 255}, {0xc2, 0x1e, 0x56, 255}, {0x6a, 0x8c, 0xf0, 255},
	}
	hearts = []color.RGBA{{0xff, 0xc1, 0x07, 255}, {0x7a, 0x4a, 0x1e, 255}, {0xf5, 0xe0, 0x50, 255}}
	skies  = [][2]color.RGBA{
		{{0x9c, 0xd3, 0xf0, 255}, {0x3d, 0x7a, 0x3a, 255}},
		{{0xf6, 0xd5, 0xa8, 255}, {0x2f, 0x5d, 0x3a, 255}},
		{{0x23, 0x3d, 0x2b, 255}, {0x6f, 0x9e, 0x55, 255}},
		{{0xdc, 0xe8, 0xd5, 255}, {0x55, 0x7a, 0x46, 255}},
	}
)

// flower is one flower of a picture.
type flower struct {
	cx, cy, r  float64
	k          float64 // petals
	turn       float64 // rotation
	petal      color.RGBA
	heart      color.RGBA
	inner, cup float64 // heart radius (fraction of r), petal depth
}

// Flowers draws a deterministic flower picture: a gradient background, soft
// out-of-focus spots, a few flowers with 5 to 9 petals, and film grain of
// amplitude grain (0 to about 40; more grain makes a larger JPEG).
func Flowers(w, h int, seed uint64, grain float64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x666c6f776572))
	sky := skies[rng.IntN(len(skies))]
	type spot struct{ x, y, r, a float64 }
	spots := make([]spot, 6+rng.IntN(8))
	for i := range spots {
		spots[i] = spot{rng.Float64() * float64(w), rng.Float64() * float64(h), (0.03 + 0.08*rng.Float64()) * float64(min(w, h)), 0.08 + 0.12*rng.Float64()}
	}
	fl := make([]flower, 2+rng.IntN(4))
	for i := range fl {
		fl[i] = flower{
			cx: (0.1 + 0.8*rng.Float64()) * float64(w), cy: (0.15 + 0.75*rng.Float64()) * float64(h),
			r: (0.12 + 0.22*rng.Float64()) * float64(min(w, h)), k: float64(5 + rng.IntN(5)),
			turn: rng.Float64() * math.Pi, petal: petals[rng.IntN(len(petals))], heart: hearts[rng.IntN(len(hearts))],
			inner: 0.14 + 0.08*rng.Float64(), cup: 0.3 + 0.35*rng.Float64(),
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	noise := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, 1))
	for y := 0; y < h; y++ {
		t := float64(y) / float64(max(h-1, 1))
		for x := 0; x < w; x++ {
			c := mix(sky[0], sky[1], t)
			fx, fy := float64(x), float64(y)
			for _, s := range spots {
				dx, dy := fx-s.x, fy-s.y
				if d := dx*dx + dy*dy; d < s.r*s.r {
					c = mix(c, color.RGBA{255, 255, 240, 255}, s.a*(1-d/(s.r*s.r)))
				}
			}
			for i := range fl {
				c = fl[i].paint(c, fx, fy)
			}
			if grain > 0 {
				n := (noise.Float64() - 0.5) * 2 * grain
				c = color.RGBA{clamp(float64(c.R) + n), clamp(float64(c.G) + n), clamp(float64(c.B) + n), 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// paint draws the flower over c at (x, y).
func (f *flower) paint(c color.RGBA, x, y float64) color.RGBA {
	dx, dy := x-f.cx, y-f.cy
	if math.Abs(dx) > f.r || math.Abs(dy) > f.r {
		return c
	}
	d := math.Hypot(dx, dy) / f.r
	if d > 1 {
		return c
	}
	if d < f.inner {
		// The heart, darker towards its rim, with a little texture.
		return mix(f.heart, color.RGBA{0x40, 0x28, 0x10, 255}, 0.6*d/f.inner+0.1*math.Sin(40*d))
	}
	a := math.Atan2(dy, dx) + f.turn
	edge := 1 - f.cup*(1-math.Abs(math.Cos(f.k*a/2)))
	if d > edge {
		return c
	}
	// Petals lighter at the tip, with a vein down the middle.
	shade := mix(f.petal, color.RGBA{255, 255, 255, 255}, 0.35*d/edge)
	vein := math.Abs(math.Sin(f.k * a / 2))
	if vein < 0.04 {
		shade = mix(shade, color.RGBA{0, 0, 0, 255}, 0.15)
	}
	// Soften the rim against the background.
	if rim := (edge - d) / 0.02; rim < 1 {
		return mix(c, shade, rim)
	}
	return shade
}

// Badge draws a small round visitor badge whose colours follow seed.
func Badge(size int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x6261646765))
	bg := skies[rng.IntN(len(skies))][0]
	ring := petals[rng.IntN(len(petals))]
	heart := hearts[rng.IntN(len(hearts))]
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	c := float64(size-1) / 2
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			d := math.Hypot(float64(x)-c, float64(y)-c) / c
			px := bg
			switch {
			case d < 0.35:
				px = heart
			case d < 0.8:
				a := math.Atan2(float64(y)-c, float64(x)-c)
				if d < 0.8-0.3*(1-math.Abs(math.Cos(3*a))) {
					px = ring
				}
			}
			img.SetRGBA(x, y, px)
		}
	}
	return img
}

// EncodeJPEG writes img as a baseline JPEG of the given quality (1..100).
func EncodeJPEG(w io.Writer, img image.Image, quality int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := jpeg.Encode(bw, img, &jpeg.Options{Quality: quality}); err != nil {
		return fmt.Errorf("encode jpeg: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode jpeg: %w", err)
	}
	return nil
}

func mix(a, b color.RGBA, t float64) color.RGBA {
	t = math.Max(0, math.Min(1, t))
	return color.RGBA{
		clamp(float64(a.R)*(1-t) + float64(b.R)*t), clamp(float64(a.G)*(1-t) + float64(b.G)*t),
		clamp(float64(a.B)*(1-t) + float64(b.B)*t), 255,
	}
}

func clamp(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

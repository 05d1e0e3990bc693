package testmodel

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"path/filepath"
)

// SampleImage draws a deterministic test picture: a two-colour diagonal
// gradient background with 3-6 saturated, non-overlapping-ish objects
// (discs, rectangles and triangles), so token pruning has "objects" to find.
func SampleImage(w, h int, seed uint64) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, max(w, 1), max(h, 1)))
	w, h = img.Rect.Dx(), img.Rect.Dy()
	r := rand.New(rand.NewPCG(seed, 0x1a6e))

	c0 := color.RGBA{uint8(40 + r.IntN(80)), uint8(60 + r.IntN(80)), uint8(90 + r.IntN(100)), 255}
	c1 := color.RGBA{uint8(150 + r.IntN(100)), uint8(150 + r.IntN(100)), uint8(120 + r.IntN(100)), 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			t := (float64(x)/float64(w) + float64(y)/float64(h)) / 2
			img.SetRGBA(x, y, color.RGBA{lerp8(c0.R, c1.R, t), lerp8(c0.G, c1.G, t), lerp8(c0.B, c1.B, t), 255})
		}
	}

	palette := []color.RGBA{
		{220, 30, 30, 255}, {30, 170, 40, 255}, {30, 60, 220, 255}, {240, 200, 20, 255},
		{200, 40, 200, 255}, {20, 200, 210, 255}, {250, 120, 10, 255}, {20, 20, 20, 255},
	}
	n := 3 + r.IntN(4)
	minDim := float64(min(w, h))
	for i := 0; i < n; i++ {
		col := palette[r.IntN(len(palette))]
		size := minDim * (0.12 + 0.16*r.Float64())
		cx := size/2 + r.Float64()*(float64(w)-size)
		cy := size/2 + r.Float64()*(float64(h)-size)
		var inside func(x, y float64) bool
		switch r.IntN(3) {
		case 0: // disc
			rad := size / 2
			inside = func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= rad*rad }
		case 1: // axis-aligned rectangle with a random aspect ratio
			hw, hh := size/2, size/2*(0.5+r.Float64())
			inside = func(x, y float64) bool { return math.Abs(x-cx) <= hw && math.Abs(y-cy) <= hh }
		default: // upward triangle
			half := size / 2
			inside = func(x, y float64) bool {
				if y < cy-half || y > cy+half {
					return false
				}
				frac := (y - (cy - half)) / size // 0 at the apex, 1 at the base
				return math.Abs(x-cx) <= frac*half
			}
		}
		x0, x1 := max(0, int(cx-size)), min(w, int(cx+size)+1)
		y0, y1 := max(0, int(cy-size)), min(h, int(cy+size)+1)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if inside(float64(x)+0.5, float64(y)+0.5) {
					img.SetRGBA(x, y, col)
				}
			}
		}
	}
	return img
}

func lerp8(a, b uint8, t float64) uint8 {
	return uint8(math.Round(float64(a) + (float64(b)-float64(a))*t))
}

// EncodePNG returns img as PNG bytes.
func EncodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	err := png.Encode(&b, img)
	return b.Bytes(), err
}

// EncodeJPEG returns img as JPEG bytes (quality <= 0 means 90).
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	if quality <= 0 {
		quality = 90
	}
	var b bytes.Buffer
	err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality})
	return b.Bytes(), err
}

// WritePNG writes img to path as PNG (atomically).
func WritePNG(path string, img image.Image) error {
	b, err := EncodePNG(img)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Clean(path), b)
}

// WriteJPEG writes img to path as JPEG (atomically; quality <= 0 means 90).
func WriteJPEG(path string, img image.Image, quality int) error {
	b, err := EncodeJPEG(img, quality)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Clean(path), b)
}

package imageprep

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzLimits keep a fuzzed header from asking for a large decode.
var fuzzLimits = Limits{MaxPixels: 1 << 20, MaxBytes: 1 << 20}

// fuzzSeeds are small valid images of every supported kind and layout the
// decoder branches on: PNG 8/16-bit, grey, paletted, interlaced-free; JPEG
// colour and grey; GIF; lossless WebP.
func fuzzSeeds(t testing.TB) [][]byte {
	rgba := noise(9, 7, 1)
	gray := image.NewGray16(image.Rect(0, 0, 5, 3))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i * 37)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 6, 4), color.Palette{color.Black, color.White, color.RGBA{200, 20, 10, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	var g bytes.Buffer
	require.NoError(t, gif.Encode(&g, pal, nil))
	var p16 bytes.Buffer
	n64 := image.NewNRGBA64(image.Rect(0, 0, 3, 2))
	for i := range n64.Pix {
		n64.Pix[i] = byte(i * 11)
	}
	require.NoError(t, png.Encode(&p16, n64))
	grayJ := image.NewGray(image.Rect(0, 0, 16, 8))
	return [][]byte{
		encodePNG(t, rgba), encodePNG(t, gray), encodePNG(t, pal), p16.Bytes(),
		encodeJPEG(t, rgba, 90), encodeJPEG(t, noise(17, 9, 2), 50), encodeJPEG(t, grayJ, 75),
		g.Bytes(),
		tinyWebP([4][4]uint8{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 0}, {255, 255, 255, 255}}),
	}
}

// FuzzDecode feeds arbitrary bytes to Decode. It must return a well-formed
// image within the limits or an error wrapping one of the package's
// sentinels, and never panic.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Decode(bytes.NewReader(b), fuzzLimits)
		if err != nil {
			require.True(t, errors.Is(err, ErrFormat) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) ||
				errors.Is(err, ErrEmpty), "error wraps no sentinel: %v", err)
			return
		}
		require.NoError(t, img.validate())
		require.LessOrEqual(t, int64(img.W)*int64(img.H), fuzzLimits.MaxPixels)
	})
}

func TestFuzzSeedsDecode(t *testing.T) {
	for i, b := range fuzzSeeds(t) {
		_, err := Decode(bytes.NewReader(b), fuzzLimits)
		require.NoError(t, err, "seed %d", i)
	}
}

package imageprep

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func uniform(w, h int, c [3]uint8) *RGB {
	m := NewRGB(w, h)
	for i := 0; i < len(m.Pix); i += 3 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = c[0], c[1], c[2]
	}
	return m
}

// norm is the expected normalised value, written out independently.
func norm(v uint8, c int, p Params) float32 {
	return (float32(v)/255 - p.Mean[c]) / p.Std[c]
}

func fpx(f *Float, x, y int) [3]float32 {
	i := 3 * (y*f.W + x)
	return [3]float32{f.Pix[i], f.Pix[i+1], f.Pix[i+2]}
}

func normPx(c [3]uint8, p Params) [3]float32 {
	return [3]float32{norm(c[0], 0, p), norm(c[1], 1, p), norm(c[2], 2, p)}
}

func TestPreprocessUniformSquare(t *testing.T) {
	p := LLaVA15Params
	col := [3]uint8{30, 160, 220}
	for _, n := range []int{1, 100, 336, 1000} {
		f, err := Preprocess(uniform(n, n, col), p)
		require.NoError(t, err)
		require.Equal(t, 336, f.W)
		require.Equal(t, 336, f.H)
		require.Len(t, f.Pix, 3*336*336)
		want := normPx(col, p)
		for y := 0; y < 336; y++ {
			for x := 0; x < 336; x++ {
				require.Equal(t, want, fpx(f, x, y), "n=%d (%d,%d)", n, x, y)
			}
		}
	}
	// hand check of one value: (30/255 - 0.48145466)/0.26862954
	assert.InDelta(t, -1.3544, float64(normPx(col, p)[0]), 1e-4)
}

// 672x336: scale 0.5 -> 336x168, centred at y = (336-168)/2 = 84: rows
// 0..83 and 252..335 are padding RGB(122,116,104).
func TestPreprocessPadsLandscape(t *testing.T) {
	p := LLaVA15Params
	col := [3]uint8{250, 5, 60}
	f, err := Preprocess(uniform(672, 336, col), p)
	require.NoError(t, err)
	pad, img := normPx(PadColor, p), normPx(col, p)
	for y := 0; y < 336; y++ {
		want := pad
		if y >= 84 && y < 252 {
			want = img
		}
		for x := 0; x < 336; x++ {
			require.Equal(t, want, fpx(f, x, y), "(%d,%d)", x, y)
		}
	}
}

// 101x336 (portrait, already 336 high): scale 1, width 101 stays, offset
// (336-101)/2 = 117: columns 0..116 padding, 117..217 image, 218..335
// padding (118 columns: the odd remainder goes right).
func TestPreprocessPadsPortraitOddRemainder(t *testing.T) {
	p := LLaVA15Params
	col := [3]uint8{0, 255, 17}
	u8, err := Letterbox(uniform(101, 336, col), 336)
	require.NoError(t, err)
	for x := 0; x < 336; x++ {
		want := PadColor
		if x >= 117 && x < 218 {
			want = col
		}
		for _, y := range []int{0, 1, 200, 335} {
			require.Equal(t, want, px(u8, x, y), "(%d,%d)", x, y)
		}
	}
	f, err := Preprocess(uniform(101, 336, col), p)
	require.NoError(t, err)
	assert.Equal(t, normPx(PadColor, p), fpx(f, 116, 10))
	assert.Equal(t, normPx(col, p), fpx(f, 117, 10))
	assert.Equal(t, normPx(col, p), fpx(f, 217, 10))
	assert.Equal(t, normPx(PadColor, p), fpx(f, 218, 10))
}

// An ImageSize x ImageSize input is copied, not resampled.
func TestPreprocessIdentityAtModelSize(t *testing.T) {
	p := LLaVA15Params
	m := NewRGB(336, 336)
	for i := range m.Pix {
		m.Pix[i] = uint8((i*7 + i/1000) % 256)
	}
	u8, err := Letterbox(m, 336)
	require.NoError(t, err)
	assert.Equal(t, m.Pix, u8.Pix)

	f, err := Preprocess(m, p)
	require.NoError(t, err)
	for i, v := range m.Pix {
		require.Equal(t, norm(v, i%3, p), f.Pix[i], "index %d", i)
	}
	// layout: interleaved HWC, Pix[3*(y*W+x)+c]
	m.Set(5, 7, 255, 0, 128)
	f, err = Preprocess(m, p)
	require.NoError(t, err)
	assert.Equal(t, normPx([3]uint8{255, 0, 128}, p), fpx(f, 5, 7))
	assert.Equal(t, norm(0, 1, p), f.Pix[3*(7*336+5)+1])
}

// llama.cpp's bilinear filter samples x*(W-1)/newW, so it never reaches the
// last source column when upscaling and truncates. A 3x1 image with red
// 0, 90, 255 at target 6: scale 2 -> 6x2 at y offset 2; source positions
// 0, 1/3, 2/3, 1, 4/3, 5/3 -> 0, 30, 60, 90, 90+165/3=145, 90+165*2/3=200.
func TestLetterboxBilinearLikeLlamaCpp(t *testing.T) {
	src := NewRGB(3, 1)
	src.Set(0, 0, 0, 10, 20)
	src.Set(1, 0, 90, 10, 20)
	src.Set(2, 0, 255, 10, 20)
	got, err := Letterbox(src, 6)
	require.NoError(t, err)
	for y := 0; y < 6; y++ {
		for x := 0; x < 6; x++ {
			if y < 2 || y >= 4 {
				require.Equal(t, PadColor, px(got, x, y), "(%d,%d)", x, y)
				continue
			}
			r, g, b := got.At(x, y)
			assert.Equal(t, []uint8{0, 30, 60, 90, 145, 200}[x], r, "(%d,%d)", x, y)
			assert.Equal(t, uint8(10), g)
			assert.Equal(t, uint8(20), b)
		}
	}

	// Same-size but not ImageSize: 336x200 is "resized" to 336x200 and
	// this is not the identity: column x samples x*335/336.
	m := NewRGB(336, 200)
	for y := 0; y < 200; y++ {
		for x := 0; x < 336; x++ {
			m.Set(x, y, uint8(x/2), 0, 0)
		}
	}
	lb, err := Letterbox(m, 336)
	require.NoError(t, err)
	r, _, _ := lb.At(335, 68) // content starts at y = (336-200)/2 = 68
	// source x = 335*335/336 = 334.003 -> lerp(167, 167) = 167
	assert.Equal(t, uint8(167), r)
	r, _, _ = lb.At(3, 68) // 3*335/336 = 2.991 -> lerp(1, 1, .991) = 1
	assert.Equal(t, uint8(1), r)
	r, _, _ = lb.At(2, 68) // 2*335/336 = 1.994 -> lerp(0, 1, .994) = 0.994 -> 0 (truncation)
	assert.Equal(t, uint8(0), r)
}

func TestPreprocessErrors(t *testing.T) {
	good := uniform(4, 4, [3]uint8{1, 2, 3})
	p := LLaVA15Params

	bad := p
	bad.ImageSize = 0
	_, err := Preprocess(good, bad)
	assert.ErrorIs(t, err, ErrParams)
	assert.Contains(t, err.Error(), "ImageSize 0")

	bad = p
	bad.Std[1] = 0
	_, err = Preprocess(good, bad)
	assert.ErrorIs(t, err, ErrParams)
	assert.Contains(t, err.Error(), "Std[1]")

	bad = p
	bad.Std[2] = float32(math.NaN())
	_, err = Preprocess(good, bad)
	assert.ErrorIs(t, err, ErrParams)

	_, err = Preprocess(&RGB{W: 0, H: 3}, p)
	assert.ErrorIs(t, err, ErrEmpty)
	_, err = Preprocess(nil, p)
	assert.ErrorIs(t, err, ErrParams)
	_, err = Preprocess(&RGB{W: 2, H: 2, Pix: make([]uint8, 5)}, p)
	assert.ErrorIs(t, err, ErrParams)
	_, err = Letterbox(good, 0)
	assert.ErrorIs(t, err, ErrParams)
}

func BenchmarkPreprocess1024x768(b *testing.B) {
	m := NewRGB(1024, 768)
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 31 / 7)
	}
	b.SetBytes(int64(len(m.Pix)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preprocess(m, LLaVA15Params); err != nil {
			b.Fatal(err)
		}
	}
}

package imageprep

import (
	"bytes"
	"image"
	"image/png"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gradient(w, h int) *RGB {
	m := NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, uint8(x), uint8(y), uint8(x+y))
		}
	}
	return m
}

func rgbaAt(m *image.RGBA, x, y int) [3]uint8 {
	c := m.RGBAAt(x, y)
	return [3]uint8{c.R, c.G, c.B}
}

func TestDrawMask(t *testing.T) {
	img := gradient(672, 336)
	// Patch (3, 10) of the 24x24 grid = source x 84..111, y (10-6)*28 = 112..139.
	kept := []int{10*24 + 3}
	m, err := DrawMask(img, LLaVA15Params, 24, 24, kept)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 672, 336), m.Bounds())

	r := Geometry(672, 336, LLaVA15Params).PatchRect(3, 10, 14)
	require.Equal(t, image.Rect(84, 112, 112, 140), r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			border := x == r.Min.X || x == r.Max.X-1 || y == r.Min.Y || y == r.Max.Y-1
			if border {
				require.Equal(t, OutlineColor, rgbaAt(m, x, y), "(%d,%d)", x, y)
			} else {
				require.Equal(t, px(img, x, y), rgbaAt(m, x, y), "(%d,%d)", x, y)
			}
		}
	}
	// Pruned pixel: 35% brightness, rounded: (v*35+50)/100.
	x, y := 200, 300 // colour (200, 44, 244)
	assert.Equal(t, [3]uint8{70, 15, 85}, rgbaAt(m, x, y))
	assert.Equal(t, uint8(255), m.RGBAAt(x, y).A)
	// Just outside the kept patch.
	assert.Equal(t, [3]uint8{29, 39, 68}, rgbaAt(m, 83, 112)) // (83, 112, 195)
}

func TestDrawMaskAllKeptAndNoneKept(t *testing.T) {
	img := gradient(40, 30)
	all := make([]int, 24*24)
	for i := range all {
		all[i] = i
	}
	m, err := DrawMask(img, LLaVA15Params, 24, 24, all)
	require.NoError(t, err)
	// every pixel is either unchanged or outline
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			c := rgbaAt(m, x, y)
			require.True(t, c == px(img, x, y) || c == OutlineColor, "(%d,%d)", x, y)
		}
	}
	m, err = DrawMask(img, LLaVA15Params, 24, 24, nil)
	require.NoError(t, err)
	o := px(img, 20, 20)
	assert.Equal(t, [3]uint8{dim(o[0]), dim(o[1]), dim(o[2])}, rgbaAt(m, 20, 20))
}

func TestDrawMaskErrors(t *testing.T) {
	img := gradient(10, 10)
	_, err := DrawMask(img, LLaVA15Params, 25, 25, nil)
	assert.ErrorIs(t, err, ErrParams)
	_, err = DrawMask(img, LLaVA15Params, 24, 12, nil)
	assert.ErrorIs(t, err, ErrParams)
	_, err = DrawMask(img, LLaVA15Params, 24, 24, []int{576})
	assert.ErrorIs(t, err, ErrParams)
	assert.Contains(t, err.Error(), "576")
	_, err = DrawMask(img, Params{}, 24, 24, nil)
	assert.ErrorIs(t, err, ErrParams)
	_, err = DrawMask(&RGB{}, LLaVA15Params, 24, 24, nil)
	assert.ErrorIs(t, err, ErrEmpty)
}

func TestWriteMaskPNG(t *testing.T) {
	img := gradient(50, 20)
	var buf bytes.Buffer
	require.NoError(t, WriteMaskPNG(&buf, img, LLaVA15Params, 24, 24, []int{300}))
	back, err := png.Decode(&buf)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 50, 20), back.Bounds())
	assert.Error(t, WriteMaskPNG(&buf, img, LLaVA15Params, 0, 24, nil))
}

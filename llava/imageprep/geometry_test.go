package imageprep

import (
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGeometrySquare(t *testing.T) {
	l := Geometry(336, 336, LLaVA15Params)
	assert.Equal(t, image.Rect(0, 0, 336, 336), l.Content)
	assert.Equal(t, 1.0, l.ScaleX)
	assert.Equal(t, image.Rect(0, 0, 14, 14), l.PatchRect(0, 0, 14))
	assert.Equal(t, image.Rect(322, 322, 336, 336), l.PatchRect(23, 23, 14))
	assert.True(t, l.PatchRect(24, 0, 14).Empty(), "beyond the grid")

	l = Geometry(672, 672, LLaVA15Params) // scale 0.5: a patch is 28 source pixels
	assert.Equal(t, image.Rect(0, 0, 336, 336), l.Content)
	assert.Equal(t, 0.5, l.ScaleX)
	assert.Equal(t, image.Rect(28, 56, 56, 84), l.PatchRect(1, 2, 14))
	px, py, ok := l.PatchAt(55, 83, 14)
	assert.True(t, ok)
	assert.Equal(t, [2]int{1, 2}, [2]int{px, py})
}

// 672x336 -> 336x168 at y offset 84: patch rows 0..5 (model y 0..83) and
// 18..23 are padding; row 6 starts the image.
func TestGeometryLandscape(t *testing.T) {
	l := Geometry(672, 336, LLaVA15Params)
	assert.Equal(t, image.Rect(0, 84, 336, 252), l.Content)
	assert.Equal(t, 0.5, l.ScaleX)
	assert.Equal(t, 0.5, l.ScaleY)
	for py := 0; py < 6; py++ {
		assert.True(t, l.PatchRect(3, py, 14).Empty(), "row %d is padding", py)
	}
	assert.Equal(t, image.Rect(0, 0, 28, 28), l.PatchRect(0, 6, 14))
	assert.Equal(t, image.Rect(644, 308, 672, 336), l.PatchRect(23, 17, 14))
	assert.True(t, l.PatchRect(0, 18, 14).Empty())
	px, py, ok := l.PatchAt(0, 0, 14)
	assert.True(t, ok)
	assert.Equal(t, [2]int{0, 6}, [2]int{px, py})
	_, _, ok = l.PatchAt(672, 0, 14)
	assert.False(t, ok)
}

// The patch rectangles tile each image exactly and agree with PatchAt.
func TestGeometryTiling(t *testing.T) {
	for _, s := range [][2]int{{672, 336}, {101, 336}, {1024, 768}, {333, 251}, {7, 5}, {1, 900}, {3000, 100}} {
		l := Geometry(s[0], s[1], LLaVA15Params)
		cover := make([]int, s[0]*s[1])
		for py := 0; py < 24; py++ {
			for px := 0; px < 24; px++ {
				r := l.PatchRect(px, py, 14)
				for y := r.Min.Y; y < r.Max.Y; y++ {
					for x := r.Min.X; x < r.Max.X; x++ {
						cover[y*s[0]+x]++
						gx, gy, ok := l.PatchAt(x, y, 14)
						require.True(t, ok)
						require.Equal(t, [2]int{px, py}, [2]int{gx, gy}, "%v (%d,%d)", s, x, y)
					}
				}
			}
		}
		for i, c := range cover {
			require.Equal(t, 1, c, "%v pixel %d covered %d times", s, i, c)
		}
	}
}

func TestGeometryInvalid(t *testing.T) {
	for _, l := range []Layout{Geometry(0, 5, LLaVA15Params), Geometry(5, 5, Params{})} {
		assert.True(t, l.Content.Empty())
		assert.True(t, l.PatchRect(0, 0, 14).Empty())
		_, _, ok := l.PatchAt(0, 0, 14)
		assert.False(t, ok)
	}
	assert.True(t, Geometry(10, 10, LLaVA15Params).PatchRect(0, 0, 0).Empty())
}
